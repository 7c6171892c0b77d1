//! NYC taxi analytics, the Flink reference job: pickup hot spots per area and hour, and
//! average trip duration to JFK and LaGuardia per pickup area and hour, in event time.
//!
//! ```text
//! cargo run --release --example taxi_analytics            # bundled real sample + a generated day
//! cargo run --release --example taxi_analytics -- --input trips.jsonl --output out/ --report out/report.html
//! cargo run --release --example taxi_replay -- --generate --trips 100000 --speedup 3600 \
//!     | cargo run --release --example taxi_analytics -- --input -
//! cargo run --release --example taxi_analytics -- --es http://127.0.0.1:9200   # also into Elasticsearch
//! cargo run --release --features parquet --example taxi_analytics -- --s3 s3://bucket/taxi --s3-format parquet
//! ```
//!
//! Over Kafka (`kafka.rs`): `--source kafka --kafka-brokers B --topic T [--bounded]` reads the
//! events `taxi_replay --kafka-brokers B --topic T` writes; `--sink kafka` writes both result
//! streams to the topics `pickup_count` and `trip_duration` (`--pickup-topic`,
//! `--duration-topic`), exactly-once with `--checkpoint-dir`. `--checkpoint-dir DIR`
//! (every `--checkpoint-interval-ms`) and `--restore PATH` work as in word_count.

mod distributed;
mod elasticsearch;
#[path = "../common/flags.rs"]
mod flags;
mod generate;
mod job;
mod kafka;
#[path = "../common/logs.rs"]
mod logs;
#[path = "../common/membership.rs"]
mod membership;
#[path = "../common/progress.rs"]
mod progress;
mod report;
mod s3;
mod sink;
mod tlc;
mod trip;

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use eddy::prelude::*;

use crate::job::{Format, Options, Tally};
use crate::trip::{format_time, parse_time, Event, PickupCount, TripDuration};

#[path = "../common/allocator.rs"]
mod allocator;

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
    /// Serve Prometheus metrics at http://HOST:PORT/metrics and the job's JSON at /jobs while it runs.
    #[arg(long, value_name = "HOST:PORT", value_parser = flags::metrics_addr)]
    metrics_addr: Option<std::net::SocketAddr>,
    /// No progress line on stderr (there is none anyway when stderr is not a terminal).
    #[arg(long)]
    quiet: bool,
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
    /// Also write both results and the dead letters to an object store, partitioned by hour:
    /// s3://BUCKET/PREFIX (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_REGION) or file:///DIR. Needs the `files` feature.
    #[arg(long)]
    s3: Option<String>,
    /// An S3-compatible server for --s3 or an s3:// --checkpoint-store, e.g.
    /// http://127.0.0.1:9000.
    #[arg(long)]
    s3_endpoint: Option<String>,
    /// The format of --s3 result parts (parquet needs the `parquet` feature).
    #[arg(long, value_enum, default_value_t = s3::S3Format::Json)]
    s3_format: s3::S3Format,
    /// Take checkpoints under this directory, so a later run can `--restore`.
    #[arg(long)]
    checkpoint_dir: Option<PathBuf>,
    /// Time between checkpoints, in milliseconds (at least 1).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_interval_ms: u64,
    /// Start from this savepoint, or from the newest complete checkpoint in this directory.
    #[arg(long)]
    restore: Option<PathBuf>,
    #[command(flatten)]
    kafka: kafka::KafkaArgs,
    #[command(flatten)]
    cluster: distributed::ClusterArgs,
}

/// Unsorted TLC files: a month of disorder.
const CSV_OUT_OF_ORDERNESS_MS: u64 = 31 * 24 * 3_600_000;

fn main() -> anyhow::Result<()> {
    allocator::return_freed_memory_promptly();
    let args = Args::parse();
    logs::init("taxi analytics");
    if args.s3_endpoint.is_some() && args.s3.is_none() && args.cluster.membership.checkpoint_store.is_none() {
        bail!("--s3-endpoint is the server of --s3 or of an s3:// --checkpoint-store: give one of them");
    }
    if args.cluster.application_id.is_some() {
        if args.format == InputFormat::TlcCsv {
            bail!(
                "the distributed mode reads JSON events from --topic (taxi_replay writes them); drop --format tlc-csv"
            );
        }
        return distributed::run(distributed::Settings {
            cluster: &args.cluster,
            kafka: &args.kafka,
            options: options(&args, false),
            s3_endpoint: args.s3_endpoint.clone(),
            parallelism: args.parallelism,
            checkpoint_interval_ms: args.checkpoint_interval_ms,
        });
    }
    args.kafka.validate(args.input.as_deref(), args.format == InputFormat::TlcCsv, args.report.is_some())?;
    let from_kafka = args.kafka.source == kafka::Endpoint::Kafka;
    if args.input.as_deref() == Some("-") && (args.checkpoint_dir.is_some() || args.restore.is_some()) {
        bail!("checkpoints need an input that can be read again: --input - (stdin) cannot; use a file or Kafka");
    }
    let output = args.output.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    std::fs::create_dir_all(&output).with_context(|| format!("cannot create {}", output.display()))?;
    let bundled = args.input.is_none() && !from_kafka;
    // The report is written after the job: find out now, not after the whole run, if it cannot be.
    let to_files = args.kafka.sink == kafka::Endpoint::File;
    let report_path = args.report.clone().or((bundled && to_files).then(|| output.join("report.html")));
    if let Some(path) = &report_path {
        flags::writable(path, "--report")?;
    }
    let input = match &args.input {
        Some(input) => input.clone(),
        None if from_kafka => String::new(),
        None => bundled_input(&output)?.to_string_lossy().into_owned(),
    };
    let format = match args.format {
        InputFormat::Json => Format::Json,
        InputFormat::TlcCsv if input == "-" => bail!("--format tlc-csv needs a file (its header names the columns)"),
        InputFormat::TlcCsv => Format::TlcCsv(
            tlc::TlcSchema::from_header(&first_line(&input)?).map_err(|e| anyhow::anyhow!("{input}, line 1: {e}"))?,
        ),
    };
    let options = options(&args, matches!(format, Format::TlcCsv(_)));
    let env = StreamEnvironment::new();
    let _metrics = flags::serve_metrics(&env, args.metrics_addr, "taxi analytics")?;
    if let Some(p) = args.parallelism {
        env.set_parallelism(p);
    }
    if let Some(dir) = &args.checkpoint_dir {
        let interval = Duration::from_millis(args.checkpoint_interval_ms);
        env.enable_checkpointing(CheckpointConfig::every(interval).dir(dir));
    } else if args.restore.is_some() {
        env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(args.checkpoint_interval_ms)));
    }
    if let Some(path) = &args.restore {
        env.restore_from(path);
    }
    let tally = Arc::new(Tally::default());
    let outputs = if from_kafka {
        kafka::build(&env, &args.kafka, &options, env.parallelism(), tally.clone())?
    } else {
        let (lines, source_parallelism) =
            if input == "-" { (env.stdin_lines(), 1) } else { (env.read_text_file(&input), env.parallelism()) };
        job::build(&lines.uid("lines"), source_parallelism, format, &options, tally.clone())
    };
    let (pickups_path, durations_path) = (output.join("pickup_count.jsonl"), output.join("trip_duration.jsonl"));
    let dead_path = args.dead_letter.clone().unwrap_or_else(|| output.join("dead_letters.jsonl"));
    let late_path = dead_path.with_file_name("late_trips.jsonl");
    if to_files {
        sink::write_json_lines(&outputs.pickups, &pickups_path);
        sink::write_json_lines(&outputs.durations, &durations_path);
    } else {
        kafka::write(&outputs, &args.kafka, args.checkpoint_dir.is_some())?;
    }
    sink::write_json_lines(&outputs.dead_letters, &dead_path);
    sink::write_json_lines(&outputs.late, &late_path);
    let es_failed = elasticsearch::add_sinks(&outputs, &args.es, &output)?;
    if let Some(url) = &args.s3 {
        let target = s3::S3Output { url: url.clone(), endpoint: args.s3_endpoint.clone(), format: args.s3_format };
        s3::add_sinks(&outputs, &target).with_context(|| format!("cannot write to {url}"))?;
    }
    let job = env.execute("taxi analytics")?;
    let progress = progress::Progress::show(&job, args.quiet);
    let result = job.wait().context("taxi analytics failed");
    drop(progress);
    let result = result?;

    let written = |name: &str| result.metrics.total(&format!("Sink: {name}"), "records_written");
    // A result's count: from its file's sink, or from its topic's.
    let results = |file: &str, topic: &str| match to_files {
        true => written(file),
        false => result.metrics.total(&kafka::sink_name(topic), "records_written"),
    };
    let dead = written(&file_name(&dead_path));
    eprintln!(
        "taxi analytics: {} trips ({} outside NYC, {} late), {} dead letters, {} hot-spot windows, {} airport windows in {:.2} s",
        tally.trips.load(Ordering::Relaxed),
        tally.outside_nyc.load(Ordering::Relaxed),
        written("late_trips.jsonl"),
        dead,
        results("pickup_count.jsonl", &args.kafka.pickup_topic),
        results("trip_duration.jsonl", &args.kafka.duration_topic),
        result.duration.as_secs_f64()
    );
    let results_at = match to_files {
        true => [&pickups_path, &durations_path].map(|p| p.display().to_string()),
        false => [&args.kafka.pickup_topic, &args.kafka.duration_topic].map(|t| format!("topic {t}")),
    };
    let paths = [&dead_path, &late_path].map(|p| p.display().to_string());
    eprintln!("outputs: {}, {}", results_at.join(", "), paths.join(", "));
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

/// The job's knobs from the flags (`csv`: the input is TLC CSV rows).
fn options(args: &Args, csv: bool) -> Options {
    Options {
        window_ms: args.window_ms,
        hotspot_precision: args.hotspot_precision as usize,
        airport_precision: args.airport_precision as usize,
        min_airport_trips: args.min_airport_trips,
        out_of_orderness_ms: args.out_of_orderness_ms.or(csv.then_some(CSV_OUT_OF_ORDERNESS_MS)),
        max_drift_ms: Some(args.max_drift_ms),
    }
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
