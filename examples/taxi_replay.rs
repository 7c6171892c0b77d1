//! Replays taxi trips as the job's JSON events in event-time (drop-off) order, paced like a
//! live feed and with watermark events, from a file or from the calibrated generator.
//!
//! ```text
//! cargo run --release --example taxi_replay -- --generate --trips 100000 --speedup 3600 \
//!     | cargo run --release --example taxi_analytics -- --input -
//! cargo run --release --example taxi_replay -- --input examples/data/nyc-taxi/azureml_greenTaxiData.csv \
//!     --format tlc-csv --speedup 0 --output /tmp/green.jsonl
//! ```
//!
//! Files are read whole and sorted by drop-off first (the TLC's are not sorted). Lines that
//! are not a trip with a readable drop-off (bad CSV rows, malformed JSON, lines that are not
//! UTF-8) are written as they are, byte for byte, at their input position, so the job's
//! dead-letter output sees them; the first few lines that are not UTF-8 are also named on
//! stderr by file and line. Watermark events in a JSON input are dropped, as the replayer
//! makes its own.
//!
//! Pacing: an event with drop-off `t` is sent at `start + (t - first drop-off) / speedup`.
//! With `--kafka-brokers B --topic T` the lines go to Kafka topic `T` (which must exist)
//! instead: one record per line, trips round robin over the partitions, and each watermark
//! event to every partition, so the job's per-partition watermarks all move.
//!
//! A watermark event (latest drop-off sent − `--disorder-ms` − 1 ms) follows once a second of
//! wall time, whenever event time has advanced `--watermark-every-ms` (so an unpaced replay
//! has them too), and at the end. A progress line goes to stderr once a second.

#[path = "common/flags.rs"]
mod flags;
#[path = "taxi_analytics/generate.rs"]
mod generate;
#[path = "taxi_analytics/kafka_lines.rs"]
mod kafka_lines;
#[path = "taxi_analytics/tlc.rs"]
mod tlc;
#[path = "taxi_analytics/trip.rs"]
mod trip;

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};

use crate::generate::{generate_timed, Calibration, Spec};
use crate::tlc::TlcSchema;
use crate::trip::{format_time, parse_time, Event};

#[path = "common/allocator.rs"]
mod allocator;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/nyc-taxi");
const TICK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum InputFormat {
    Json,
    TlcCsv,
}

#[derive(Parser, Debug)]
#[command(about = "Replays NYC taxi trips as JSON events in drop-off order, paced, with watermark events")]
struct Args {
    /// Input file, or `-` for stdin.
    #[arg(long, required_unless_present = "generate", conflicts_with = "generate")]
    input: Option<String>,
    /// Input format: JSON events, or TLC CSV rows (yellow or green column names).
    #[arg(long, value_enum, default_value_t = InputFormat::Json)]
    format: InputFormat,
    /// Generate trips calibrated on the bundled real samples instead of reading them.
    #[arg(long)]
    generate: bool,
    /// Trips to generate.
    #[arg(long, default_value_t = 1_000_000)]
    trips: u64,
    /// Seed of the generator: the same seed gives the same trips.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Drop-off time of the first generated trip (ISO-8601).
    #[arg(long, default_value = "2016-01-01T00:00:00Z")]
    start: String,
    /// How far a generated trip's drop-off may lag the latest one; watermarks trail the
    /// latest drop-off by this much (plus 1 ms).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(..=i64::MAX as u64))]
    disorder_ms: u64,
    /// Generated lines out of a million that are malformed (0 to 1000000).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(..=1_000_000))]
    malformed_per_million: u32,
    /// Output file (default: stdout).
    #[arg(long, conflicts_with = "kafka_brokers")]
    output: Option<PathBuf>,
    /// Write to Kafka at these bootstrap servers (`host:port[,…]`) instead, into --topic.
    #[arg(long, requires = "topic")]
    kafka_brokers: Option<String>,
    /// The Kafka topic to write to (created beforehand).
    #[arg(long, requires = "kafka_brokers")]
    topic: Option<String>,
    /// Event time per wall time: 1 is real time, 3600 an hour a second; 0 or inf is as fast
    /// as possible.
    #[arg(long, default_value_t = 600.0)]
    speedup: f64,
    /// Also send a watermark whenever event time has advanced this much (0: only once a second
    /// of wall time).
    #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(i64).range(0..))]
    watermark_every_ms: i64,
}

fn main() -> ExitCode {
    allocator::return_freed_memory_promptly();
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`taxi_replay | head`): nothing left to do, and nothing wrong.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "taxi_replay: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let speedup = pace(args.speedup)?;
    let output: Box<dyn Write> = match (&args.output, &args.kafka_brokers, &args.topic) {
        (_, Some(brokers), Some(topic)) => Box::new(kafka_lines::KafkaLines::open(brokers, topic)?),
        (Some(path), _, _) => {
            Box::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
        }
        _ => Box::new(io::stdout().lock()),
    };
    let mut replay = Replay::new(BufWriter::with_capacity(1 << 16, output), speedup, args);
    if args.generate {
        let calibration = Calibration::from_samples(Path::new(SAMPLES)).context("cannot calibrate on the samples")?;
        let start_ms = parse_time(&args.start).with_context(|| format!("--start {:?} is not a time", args.start))?;
        let spec = Spec {
            seed: args.seed,
            trips: args.trips,
            start_ms,
            disorder_ms: args.disorder_ms,
            malformed_per_million: args.malformed_per_million,
            watermark_every_ms: None, // the replayer sends its own
        };
        replay.send_all(generate_timed(&calibration, spec))?;
    } else {
        let name = args.input.as_deref().unwrap_or("-");
        let text = read_input(name)?;
        let mut rows = Rows::new(&text, if name == "-" { "stdin" } else { name });
        let lines = match args.format {
            InputFormat::Json => json_lines(&mut rows),
            InputFormat::TlcCsv => csv_lines(&mut rows)?,
        };
        replay.not_utf8 = rows.not_utf8;
        replay.send_all(in_event_time_order(lines))?;
    }
    replay.finish()
}

/// The speedup, `None` for as fast as possible; rejects values that cannot pace.
fn pace(speedup: f64) -> anyhow::Result<Option<f64>> {
    match speedup {
        s if s == 0.0 || s == f64::INFINITY => Ok(None),
        s if s >= 1e-3 && s.is_finite() => Ok(Some(s)),
        s => bail!("--speedup {s}: use 0 or inf for as fast as possible, or at least 0.001"),
    }
}

/// Whether `error` comes from writing to a closed pipe.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe))
}

fn read_input(input: &str) -> anyhow::Result<Vec<u8>> {
    let mut text = Vec::new();
    if input == "-" {
        io::stdin().read_to_end(&mut text).context("cannot read stdin")?;
    } else {
        text = std::fs::read(input).with_context(|| format!("cannot read {input}"))?;
    }
    Ok(text)
}

/// How many lines that are not UTF-8 are named on stderr.
const NOT_UTF8_SHOWN: u64 = 10;

/// The pieces of a text between line feeds.
type Pieces<'a> = std::slice::Split<'a, u8, fn(&u8) -> bool>;

/// The input's lines (without `\n` or `\r\n`), as text where they are UTF-8; counts those
/// that are not and names the first few by line number.
struct Rows<'a> {
    pieces: Pieces<'a>,
    /// How many lines the input has.
    lines: usize,
    /// How many have been taken.
    taken: usize,
    name: &'a str,
    not_utf8: u64,
}

impl<'a> Rows<'a> {
    fn new(text: &'a [u8], name: &'a str) -> Self {
        let newline: fn(&u8) -> bool = |&b| b == b'\n';
        // A final line ending ends the last line; it does not start an empty one.
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let lines = if text.is_empty() { 0 } else { line_feeds(text) + 1 };
        Rows { pieces: text.split(newline), lines, taken: 0, name, not_utf8: 0 }
    }
}

/// How many line feeds `text` holds.
fn line_feeds(text: &[u8]) -> usize {
    text.iter().filter(|&&b| b == b'\n').count()
}

impl<'a> Iterator for Rows<'a> {
    /// The line's text, or its bytes if it is not UTF-8.
    type Item = Result<&'a str, &'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.taken == self.lines {
            return None;
        }
        let line = self.pieces.next()?;
        self.taken += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = std::str::from_utf8(line).map_err(|e| {
            if self.not_utf8 < NOT_UTF8_SHOWN {
                let _ = writeln!(
                    io::stderr(),
                    "taxi_replay: {}, line {}: not UTF-8 ({e}); passed on as it is, for the job's dead-letter output",
                    self.name,
                    self.taken
                );
            }
            self.not_utf8 += 1;
            line
        });
        Some(text)
    }
}

/// A line to send and its drop-off time, `None` for a line the job cannot read a trip from.
type Line = (Option<i64>, Vec<u8>);

/// JSON events as they are; trips that do not parse or lack a readable drop-off stay raw,
/// watermark events and blank lines are dropped.
fn json_lines(rows: &mut Rows<'_>) -> Vec<Line> {
    rows.filter_map(|line| match line {
        Err(raw) => Some((None, raw.to_vec())),
        Ok(line) if line.trim().is_empty() => None,
        Ok(line) => match serde_json::from_str::<Event>(line) {
            Ok(Event::Watermark { .. }) => None,
            Ok(Event::Trip(trip)) => Some((parse_time(&trip.dropoff_datetime), line.into())),
            Err(_) => Some((None, line.into())),
        },
    })
    .collect()
}

/// TLC rows as JSON trip events (`trip_id` = row index), or raw where they do not parse;
/// blank lines and headers are dropped. The first line is the header.
fn csv_lines(rows: &mut Rows<'_>) -> anyhow::Result<Vec<Line>> {
    let name = rows.name;
    let header = match rows.next() {
        None => "",
        Some(Ok(header)) => header,
        Some(Err(raw)) => {
            let e = std::str::from_utf8(raw).unwrap_err();
            bail!("{name}, line 1: the CSV header is not UTF-8 ({e})")
        }
    };
    let schema = TlcSchema::from_header(header).map_err(|e| anyhow::anyhow!("{name}, line 1: {e}"))?;
    let rows = rows.filter(|row| row.map_or(true, |row| !row.trim().is_empty() && !schema.is_header(row)));
    Ok(rows
        .enumerate()
        .map(|(id, row)| match row {
            Err(raw) => (None, raw.to_vec()),
            Ok(row) => match schema.parse(row, id as u64) {
                Ok(trip) => (parse_time(&trip.dropoff_datetime), Event::Trip(trip).to_json().into_bytes()),
                Err(_) => (None, row.into()),
            },
        })
        .collect())
}

/// The lines with drop-off times stably sorted by it, the others kept at their input position
/// (the n-th line out is the n-th line in if that one has no time).
fn in_event_time_order(lines: Vec<Line>) -> impl Iterator<Item = Line> {
    let mut timed = Vec::new();
    let mut slots = Vec::with_capacity(lines.len());
    for (time, text) in lines {
        match time {
            Some(time) => {
                timed.push((time, text));
                slots.push(None);
            }
            None => slots.push(Some(text)),
        }
    }
    timed.sort_by_key(|(time, _)| *time);
    let mut timed = timed.into_iter();
    slots.into_iter().filter_map(move |slot| match slot {
        Some(raw) => Some((None, raw)),
        None => timed.next().map(|(time, text)| (Some(time), text)),
    })
}

/// Sends lines on schedule, with watermarks and progress reports.
struct Replay<W: Write> {
    out: W,
    speedup: Option<f64>,
    disorder_ms: i64,
    watermark_every_ms: i64,
    /// The first timed line's drop-off and when it was sent: the schedule's origin.
    origin: Option<(i64, Instant)>,
    max_sent_ms: Option<i64>,
    last_watermark_ms: Option<i64>,
    /// The latest drop-off when the last watermark went out.
    watermark_base_ms: i64,
    /// How late the last timed line went out, against its schedule.
    lag: Option<Duration>,
    /// Input lines that were not UTF-8 (passed on raw).
    not_utf8: u64,
    sent: u64,
    sent_at_tick: u64,
    last_tick: Instant,
}

impl<W: Write> Replay<W> {
    fn new(out: W, speedup: Option<f64>, args: &Args) -> Self {
        Replay {
            out,
            speedup,
            disorder_ms: args.disorder_ms.min(i64::MAX as u64) as i64,
            watermark_every_ms: args.watermark_every_ms,
            origin: None,
            max_sent_ms: None,
            last_watermark_ms: None,
            watermark_base_ms: i64::MIN,
            lag: None,
            not_utf8: 0,
            sent: 0,
            sent_at_tick: 0,
            last_tick: Instant::now(),
        }
    }

    fn send_all<L: AsRef<[u8]>>(&mut self, lines: impl Iterator<Item = (Option<i64>, L)>) -> io::Result<()> {
        for (time, line) in lines {
            if let Some(time) = time {
                self.wait_for(time)?;
            }
            self.out.write_all(line.as_ref())?;
            self.out.write_all(b"\n")?;
            self.sent += 1;
            if let Some(time) = time {
                self.sent_event(time)?;
            }
            self.tick(Instant::now())?;
        }
        Ok(())
    }

    /// Waits until `time` is due, flushing first and keeping up watermarks and progress
    /// reports meanwhile.
    fn wait_for(&mut self, time: i64) -> io::Result<()> {
        let Some(speedup) = self.speedup else { return Ok(()) };
        let (first, start) = *self.origin.get_or_insert((time, Instant::now()));
        let offset = Duration::from_secs_f64((time - first).max(0) as f64 / speedup / 1000.0);
        let due = start.checked_add(offset).unwrap_or(start);
        loop {
            let now = Instant::now();
            if now >= due {
                self.lag = Some(now - due);
                return Ok(());
            }
            self.out.flush()?; // the reader gets what is due before we sleep
            self.tick(now)?;
            std::thread::sleep((due - now).min((self.last_tick + TICK).saturating_duration_since(now)));
        }
    }

    /// Notes a sent drop-off; a watermark is due if event time has advanced enough.
    fn sent_event(&mut self, time: i64) -> io::Result<()> {
        let max = self.max_sent_ms.map_or(time, |max| max.max(time));
        self.max_sent_ms = Some(max);
        if self.watermark_base_ms == i64::MIN {
            self.watermark_base_ms = max;
        } else if self.watermark_every_ms > 0 && max - self.watermark_base_ms >= self.watermark_every_ms {
            self.watermark(false)?;
        }
        Ok(())
    }

    /// Sends a watermark for the latest drop-off sent, unless it would not advance
    /// (`always` for the final one).
    fn watermark(&mut self, always: bool) -> io::Result<()> {
        let Some(max) = self.max_sent_ms else { return Ok(()) };
        let watermark = max.saturating_sub(self.disorder_ms).saturating_sub(1);
        if always || self.last_watermark_ms.is_none_or(|last| watermark > last) {
            let line = Event::Watermark { watermark: format_time(watermark) }.to_json();
            writeln!(self.out, "{line}")?;
            self.last_watermark_ms = Some(watermark);
            self.watermark_base_ms = max;
        }
        Ok(())
    }

    /// Once a second of wall time: a watermark, a flush and a progress line.
    fn tick(&mut self, now: Instant) -> io::Result<()> {
        let elapsed = now - self.last_tick;
        if elapsed < TICK {
            return Ok(());
        }
        self.watermark(false)?;
        self.out.flush()?;
        let rate = (self.sent - self.sent_at_tick) as f64 / elapsed.as_secs_f64();
        let lag = self.lag.map_or("-".to_string(), |lag| lag.as_millis().to_string());
        let _ = writeln!(io::stderr(), "taxi_replay: {} events sent, {rate:.0} events/s, lag {lag} ms", self.sent);
        (self.sent_at_tick, self.last_tick) = (self.sent, now);
        Ok(())
    }

    /// The final watermark and flush.
    fn finish(mut self) -> anyhow::Result<()> {
        self.watermark(true)?;
        self.out.flush()?;
        let _ = writeln!(
            io::stderr(),
            "taxi_replay: done, {} events sent ({} input lines not UTF-8, passed on raw)",
            self.sent,
            self.not_utf8
        );
        Ok(())
    }
}
