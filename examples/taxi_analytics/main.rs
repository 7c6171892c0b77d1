//! NYC taxi analytics, the Flink reference job: pickup hot spots per area and hour, and
//! average trip duration to JFK and LaGuardia per pickup area and hour, in event time.
//!
//! ```text
//! cargo run --release --example taxi_analytics            # bundled real sample + a generated day
//! cargo run --release --example taxi_analytics -- --input trips.jsonl --output out/ --report out/report.html
//! cargo run --release --example taxi_replay -- --generate --trips 100000 --speedup 3600 \
//!     | cargo run --release --example taxi_analytics -- --input -
//! cargo run --release --example taxi_analytics -- --es http://127.0.0.1:9200   # also into Elasticsearch
//! ```

mod elasticsearch;
#[path = "../common/flags.rs"]
mod flags;
mod generate;
mod job;
mod report;
mod sink;
mod tlc;
mod trip;

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use eddy::prelude::*;

use crate::job::{Format, Options, Tally};
use crate::trip::{format_time, parse_time, Event, PickupCount, TripDuration};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/nyc-taxi");
const DEFAULT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/taxi");

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum InputFormat {
    Json,
    TlcCsv,
}

#[derive(Parser, Debug)]
#[command(about = "NYC taxi analytics: pickup hot spots and trip durations to the airports, per hour of event time")]
struct Args {
    /// Input file, or `-` for stdin. Default: the bundled real sample plus a generated day.
    #[arg(long)]
    input: Option<String>,
    /// Input format: JSON events, or TLC CSV rows (yellow or green column names).
    #[arg(long, value_enum, default_value_t = InputFormat::Json)]
    format: InputFormat,
    /// Window length in milliseconds (1 to 9223372036854775807).
    #[arg(long, default_value_t = 3_600_000, value_parser = clap::value_parser!(u64).range(1..=i64::MAX as u64))]
    window_ms: u64,
    /// Geohash precision of hot-spot cells (1 to 12 characters).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=12))]
    hotspot_precision: u64,
    /// Geohash precision of airport-trip pickup cells (1 to 12 characters).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..=12))]
    airport_precision: u64,
    /// Emit an airport window only with at least this many trips.
    #[arg(long, default_value_t = 2)]
    min_airport_trips: u64,
    /// Bounded out-of-orderness instead of the input's watermark events (default for
    /// tlc-csv, whose rows are unsorted: 31 days).
    #[arg(long, value_parser = clap::value_parser!(u64).range(..=i64::MAX as u64))]
    out_of_orderness_ms: Option<u64>,
    /// Watermark alignment: a subtask reading more than this far ahead in event time of the
    /// slowest pauses until it catches up, which bounds the windows held waiting for it.
    #[arg(long, default_value_t = 2 * 3_600_000, value_parser = clap::value_parser!(u64).range(..=i64::MAX as u64))]
    max_drift_ms: u64,
    /// Parallelism, 1 to 128 (the max parallelism; default: number of cores).
    #[arg(long, value_parser = flags::parallelism)]
    parallelism: Option<usize>,
    /// Directory for pickup_count.jsonl and trip_duration.jsonl (default: target/taxi).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Where unusable lines go, as JSON lines with the raw line and the reason
    /// (default: <output>/dead_letters.jsonl). Late trips go to late_trips.jsonl next to it.
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    /// Also write a self-contained HTML report here (default in bundled mode:
    /// <output>/report.html).
    #[arg(long)]
    report: Option<PathBuf>,
    #[command(flatten)]
    es: elasticsearch::EsArgs,
}

/// Unsorted TLC files: a month of disorder.
const CSV_OUT_OF_ORDERNESS_MS: u64 = 31 * 24 * 3_600_000;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let output = args.output.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    std::fs::create_dir_all(&output).with_context(|| format!("cannot create {}", output.display()))?;
    let bundled = args.input.is_none();
    // The report is written after the job: find out now, not after the whole run, if it cannot be.
    let report_path = args.report.clone().or(bundled.then(|| output.join("report.html")));
    if let Some(path) = &report_path {
        flags::writable(path, "--report")?;
    }
    let input = match &args.input {
        Some(input) => input.clone(),
        None => bundled_input(&output)?.to_string_lossy().into_owned(),
    };
    let format = match args.format {
        InputFormat::Json => Format::Json,
        InputFormat::TlcCsv if input == "-" => bail!("--format tlc-csv needs a file (its header names the columns)"),
        InputFormat::TlcCsv => Format::TlcCsv(
            tlc::TlcSchema::from_header(&first_line(&input)?).map_err(|e| anyhow::anyhow!("{input}, line 1: {e}"))?,
        ),
    };
    let csv = matches!(format, Format::TlcCsv(_));
    let options = Options {
        window_ms: args.window_ms,
        hotspot_precision: args.hotspot_precision as usize,
        airport_precision: args.airport_precision as usize,
        min_airport_trips: args.min_airport_trips,
        out_of_orderness_ms: args.out_of_orderness_ms.or(csv.then_some(CSV_OUT_OF_ORDERNESS_MS)),
        max_drift_ms: Some(args.max_drift_ms),
    };
    let env = StreamEnvironment::new();
    if let Some(p) = args.parallelism {
        env.set_parallelism(p);
    }
    let (lines, source_parallelism) =
        if input == "-" { (env.stdin_lines(), 1) } else { (env.read_text_file(&input), env.parallelism()) };
    let tally = Arc::new(Tally::default());
    let outputs = job::build(&lines, source_parallelism, format, &options, tally.clone());
    let (pickups_path, durations_path) = (output.join("pickup_count.jsonl"), output.join("trip_duration.jsonl"));
    let dead_path = args.dead_letter.clone().unwrap_or_else(|| output.join("dead_letters.jsonl"));
    let late_path = dead_path.with_file_name("late_trips.jsonl");
    sink::write_json_lines(&outputs.pickups, &pickups_path);
    sink::write_json_lines(&outputs.durations, &durations_path);
    sink::write_json_lines(&outputs.dead_letters, &dead_path);
    sink::write_json_lines(&outputs.late, &late_path);
    let es_failed = elasticsearch::add_sinks(&outputs, &args.es, &output)?;
    let result = env.execute("taxi analytics")?.wait().context("taxi analytics failed")?;

    let written = |name: &str| result.metrics.total(&format!("Sink: {name}"), "records_written");
    let dead = written(&file_name(&dead_path));
    eprintln!(
        "taxi analytics: {} trips ({} outside NYC, {} late), {} dead letters, {} hot-spot windows, {} airport windows in {:.2} s",
        tally.trips.load(Ordering::Relaxed),
        tally.outside_nyc.load(Ordering::Relaxed),
        written("late_trips.jsonl"),
        dead,
        written("pickup_count.jsonl"),
        written("trip_duration.jsonl"),
        result.duration.as_secs_f64()
    );
    let paths = [&pickups_path, &durations_path, &dead_path, &late_path].map(|p| p.display().to_string());
    eprintln!("outputs: {}", paths.join(", "));
    if let (Some(url), Some(failed)) = (&args.es.es, es_failed) {
        let refused = written(&file_name(&failed));
        eprintln!("elasticsearch: {url}, {refused} documents refused (see {})", failed.display());
    }
    if let Some(path) = report_path {
        let pickups: Vec<PickupCount> = read_json_lines(&pickups_path)?;
        let durations: Vec<TripDuration> = read_json_lines(&durations_path)?;
        report::write_report(&path, &pickups, &durations)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("report: {}", path.display());
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// The header line of a CSV file; the error names the file and line when it is not text.
fn first_line(path: &str) -> anyhow::Result<String> {
    let mut line = Vec::new();
    let file = File::open(path).with_context(|| format!("cannot open {path}"))?;
    // A header is short: read no more than a text source would keep of a line.
    BufReader::new(file).take(1 << 20).read_until(b'\n', &mut line).with_context(|| format!("cannot read {path}"))?;
    let line = String::from_utf8(line)
        .map_err(|e| anyhow::anyhow!("{path}, line 1: the CSV header is not UTF-8 ({})", e.utf8_error()))?;
    Ok(line.trim_end().to_string())
}

fn read_json_lines<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let reader = BufReader::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?);
    reader.lines().map(|line| Ok(serde_json::from_str(&line?)?)).collect()
}

/// The bundled run's input: both real samples (converted to JSON events, sorted by
/// drop-off; rows that do not parse are kept raw for the dead-letter output) followed by a
/// generated day, with a watermark event every hour of event time.
fn bundled_input(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut events: Vec<(i64, String)> = Vec::new();
    for sample in ["azureml_yellowTaxiData_2016-01.csv", "azureml_greenTaxiData.csv"] {
        let path = Path::new(SAMPLES).join(sample);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut rows = text.lines();
        let schema = tlc::TlcSchema::from_header(rows.next().unwrap_or_default()).map_err(anyhow::Error::msg)?;
        for (id, row) in rows.enumerate() {
            events.push(match schema.parse(row, id as u64) {
                Ok(trip) => (parse_time(&trip.dropoff_datetime).unwrap_or(0), Event::Trip(trip).to_json()),
                Err(_) => (0, row.to_string()),
            });
        }
    }
    events.sort_by_key(|(time, _)| *time);
    let path = dir.join("input.jsonl");
    let mut out = BufWriter::new(File::create(&path).with_context(|| format!("cannot create {}", path.display()))?);
    let mut next_mark = i64::MIN;
    for (time, line) in &events {
        if *time >= next_mark {
            writeln!(out, "{}", Event::Watermark { watermark: format_time(time - 1) }.to_json())?;
            next_mark = time - time.rem_euclid(3_600_000) + 3_600_000;
        }
        writeln!(out, "{line}")?;
    }
    let calibration = generate::Calibration::from_samples(Path::new(SAMPLES))?;
    let day = generate::Spec {
        seed: 42,
        trips: 200_000,
        start_ms: parse_time("2016-02-01T00:00:00Z").unwrap_or(0),
        disorder_ms: 60_000,
        malformed_per_million: 500,
        watermark_every_ms: Some(60_000),
    };
    for line in generate::generate(&calibration, day) {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(path)
}
