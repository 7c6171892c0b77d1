//! Streaming word count: tokenize → key_by word → 5 s tumbling window → count → CSV lines
//! `window_start_ms,window_end_ms,word,count`.
//!
//! ```text
//! cargo run --release --example word_count                      # bundled corpus
//! cargo run --release --example word_count -- --input words.tsv --timestamped --parallelism 2
//! ```
//!
//! Fault tolerance (none of it is on unless asked for):
//!
//! - `--checkpoint-dir DIR` takes a checkpoint every `--checkpoint-interval-ms N` (default
//!   1000) under `DIR/chk-<id>`, so a later run can pick up where a killed one stopped.
//! - `--restore PATH` starts from a savepoint or a checkpoint directory (its newest complete
//!   checkpoint or recorded savepoint) instead of from the beginning of the input; a run
//!   killed before its first checkpoint completed left nothing to restore, so start that one
//!   afresh. What the restore skipped or rolled back is printed as `word count: warning: …`.
//! - `--savepoint-dir DIR` makes SIGTERM / Ctrl-C stop the job with a savepoint in
//!   `DIR/savepoint-<unix ms>`; its path is printed as `savepoint: <path>` and the exit is 0.
//! - `--exactly-once-output DIR` writes the results as part files under `DIR` that become
//!   visible only when their checkpoint completes (without checkpointing: when the input
//!   ends). Read every file whose name does not start with `.` or `_`: a run killed and
//!   restored shows each result exactly once.
//!
//! State: `--state-backend sled --state-dir DIR` keeps the windows' state in sled databases
//! under `DIR` instead of memory (each keyed subtask caches `--state-cache-mb` of its
//! database, default 64), for windows larger than memory; the results are the same.
//!
//! `--restore` and `--savepoint-dir` turn checkpointing on by themselves (kept in memory unless
//! `--checkpoint-dir` is given). Checkpointing needs an input that can be read again, so it
//! refuses `--input -` (stdin).
//!
//! Kafka (see `kafka.rs`): `--kafka-brokers B --input-topic T [--bounded]` reads each record
//! value as one line; `--output-topic O` writes each row as one record value, exactly-once
//! with `--checkpoint-dir` (read it with `isolation.level=read_committed`).
//!
//! Distributed (see `distributed.rs` and docs/scale-out.md): `--application-id A
//! --checkpoint-store URL` with `--kafka-brokers`, `--input-topic` and `--output-topic` runs
//! this process's share of a job spread over every process started with the same `A`.
//!
//! ```text
//! cargo run --release --example word_count -- --input words.tsv --timestamped \
//!     --checkpoint-dir /tmp/chk --exactly-once-output /tmp/out      # kill it mid-way, then:
//! cargo run --release --example word_count -- --input words.tsv --timestamped \
//!     --checkpoint-dir /tmp/chk --exactly-once-output /tmp/out --restore /tmp/chk
//! ```

mod distributed;
#[path = "../common/flags.rs"]
mod flags;
mod job;
mod kafka;
#[path = "../common/logs.rs"]
mod logs;
#[path = "../common/membership.rs"]
mod membership;
#[path = "../common/progress.rs"]
mod progress;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{CommandFactory, Parser, ValueEnum};
use eddy::prelude::*;

#[path = "../common/allocator.rs"]
mod allocator;

/// The bundled corpus: timestamped lines, so it runs in event time.
const BUNDLED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/corpus.tsv");

#[derive(Parser, Debug)]
#[command(about = "Streaming word count over tumbling windows, printed as CSV")]
struct Args {
    /// Input file, or `-` for stdin. Default: the bundled corpus (timestamped).
    #[arg(long)]
    input: Option<String>,
    /// Lines are `<epoch_ms>\t<text>` and windows use event time (else processing time).
    #[arg(long)]
    timestamped: bool,
    /// Window length in milliseconds (1 to 9223372036854775807).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=i64::MAX as u64))]
    window_ms: u64,
    /// Bounded out-of-orderness of event time, in milliseconds (up to 9223372036854775807).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(..=i64::MAX as u64))]
    out_of_orderness_ms: u64,
    /// Watermark alignment: a subtask reading more than this far ahead in event time of the
    /// slowest pauses until it catches up, which bounds the windows held waiting for it. The
    /// default is about two of a generated input's 4 MiB splits (a line a millisecond), so
    /// subtasks reading neighbouring splits at the same speed never wait.
    #[arg(long, default_value_t = 120_000, value_parser = clap::value_parser!(u64).range(..=i64::MAX as u64))]
    max_drift_ms: u64,
    /// Parallelism of the job, 1 to 128 (the max parallelism; default: number of cores).
    #[arg(long, value_parser = flags::parallelism)]
    parallelism: Option<usize>,
    /// Lines longer than this many bytes are skipped (and reported), never held in memory.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..=usize::MAX as u64))]
    max_line_length: u64,
    /// Output file (default: stdout).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Write exactly-once part files into this directory instead of stdout or `--output`.
    #[arg(long, conflicts_with = "output")]
    exactly_once_output: Option<PathBuf>,
    /// Take checkpoints under this directory (`chk-<id>`), so a later run can `--restore`.
    #[arg(long)]
    checkpoint_dir: Option<PathBuf>,
    /// Time between checkpoints, in milliseconds (at least 1).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_interval_ms: u64,
    /// Start from this savepoint, or from the newest complete checkpoint in this directory.
    #[arg(long)]
    restore: Option<PathBuf>,
    /// On SIGTERM or Ctrl-C, stop with a savepoint in a new directory here and print its path.
    #[arg(long)]
    savepoint_dir: Option<PathBuf>,
    /// Print the job's plan (chains, parallelism, ship strategies) instead of running it:
    /// `text` (the default), `dot` (Graphviz) or `mermaid`.
    #[arg(long, value_enum, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "text")]
    explain: Option<Explain>,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics and the job's JSON at /jobs while it runs.
    #[arg(long, value_name = "HOST:PORT", value_parser = flags::metrics_addr)]
    metrics_addr: Option<std::net::SocketAddr>,
    /// No progress line on stderr (there is none anyway when stderr is not a terminal).
    #[arg(long)]
    quiet: bool,
    /// Where the windows' state lives: in memory, or in sled databases under `--state-dir`.
    #[arg(long, value_enum, default_value_t = Backend::Heap)]
    state_backend: Backend,
    /// The directory the sled backend keeps state in (needed with `--state-backend sled`).
    #[arg(long, required_if_eq("state_backend", "sled"))]
    state_dir: Option<PathBuf>,
    /// What each keyed subtask's sled database caches in memory, in MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    state_cache_mb: u64,
    #[command(flatten)]
    kafka: kafka::KafkaArgs,
    #[command(flatten)]
    cluster: distributed::ClusterArgs,
}

/// How `--explain` prints the plan.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Explain {
    Text,
    Dot,
    Mermaid,
}

/// A state backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// In memory (fastest).
    Heap,
    /// In sled, on disk (for state larger than memory).
    Sled,
}

fn main() -> anyhow::Result<()> {
    allocator::return_freed_memory_promptly();
    let args = Args::parse();
    logs::init("word count");
    args.kafka.validate()?;
    if args.cluster.application_id.is_some() {
        return distributed::run(distributed::Settings {
            cluster: &args.cluster,
            kafka: &args.kafka,
            timestamped: args.timestamped,
            window_ms: args.window_ms,
            out_of_orderness_ms: args.out_of_orderness_ms,
            parallelism: args.parallelism,
            checkpoint_interval_ms: args.checkpoint_interval_ms,
        });
    }
    if args.state_dir.is_some() && args.state_backend == Backend::Heap {
        let message =
            "--state-dir is where the sled backend keeps state: add --state-backend sled, or drop --state-dir";
        Args::command().error(clap::error::ErrorKind::ArgumentConflict, message).exit();
    }
    let env = StreamEnvironment::new();
    if let Some(dir) = &args.state_dir {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("cannot create the state directory {} (--state-dir); choose a writable path", dir.display())
        })?;
        env.set_state_dir(dir).set_state_cache_size(args.state_cache_mb << 20);
    }
    let _metrics = flags::serve_metrics(&env, args.metrics_addr, "word count")?;
    if let Some(p) = args.parallelism {
        env.set_parallelism(p);
    }
    env.set_max_line_length(args.max_line_length as usize);
    // Savepoints and restores need checkpointing on; without `--checkpoint-dir` the periodic
    // checkpoints stay in memory (a savepoint is written to its own directory regardless).
    if args.checkpoint_dir.is_some() || args.restore.is_some() || args.savepoint_dir.is_some() {
        let mut config = CheckpointConfig::every(Duration::from_millis(args.checkpoint_interval_ms));
        if let Some(dir) = &args.checkpoint_dir {
            config = config.dir(dir);
        }
        env.enable_checkpointing(config);
    }
    if let Some(path) = &args.restore {
        env.restore_from(path);
    }
    // The uids name the state in checkpoints and savepoints; they change nothing in a run
    // without checkpointing.
    let (lines, timestamped) = match (args.input.as_deref(), &args.kafka.input_topic) {
        (_, Some(topic)) => {
            let time = match args.timestamped {
                true => {
                    kafka::LineTime::Prefix(job::watermark_strategy(args.out_of_orderness_ms, Some(args.max_drift_ms)))
                }
                false => kafka::LineTime::Processing,
            };
            (kafka::lines(&env, &args.kafka, topic, time)?, args.timestamped)
        }
        (None, None) => (env.read_text_file(BUNDLED), true),
        (Some("-"), None) => (env.stdin_lines(), args.timestamped),
        (Some(path), None) => (env.read_text_file(path), args.timestamped),
    };
    let lines = lines.uid("lines");
    let options = job::Options {
        timestamped,
        window_ms: args.window_ms,
        out_of_orderness_ms: args.out_of_orderness_ms,
        max_drift_ms: Some(args.max_drift_ms),
        stamped_by_source: args.kafka.input_topic.is_some() && timestamped,
    };
    let malformed = Arc::new(AtomicU64::new(0));
    // Lines too long or not UTF-8 (the source's dead letters) are skipped like malformed ones.
    let unreadable = lines.dead_letters::<RawRecord>();
    let reasons =
        unreadable.map(|letter| format!("{}, {}: {}", letter.input.split, letter.input.position, letter.error));
    job::report_skipped(&reasons, malformed.clone());
    let counts = job::word_counts(&lines, &options, malformed.clone()).uid("counts");
    // One writer keeps the output a single file (or an unprefixed stdout, or one part file per
    // checkpoint).
    let sink = match (&args.exactly_once_output, &args.output, &args.kafka.output_topic) {
        (_, _, Some(topic)) => kafka::write(&counts, &args.kafka, topic, args.checkpoint_dir.is_some())?,
        (Some(dir), _, _) => counts.write_exactly_once(dir),
        (None, Some(path), _) => counts.write_text(path),
        (None, None, None) => counts.print(),
    };
    sink.set_parallelism(1).uid("output");
    if let Some(format) = args.explain {
        let plan = env.explain()?;
        match format {
            Explain::Text => print!("{plan}"),
            Explain::Dot => print!("{}", plan.to_dot()),
            Explain::Mermaid => print!("{}", plan.to_mermaid()),
        }
        return Ok(());
    }

    // Installed before the job starts, so that an early signal still ends in a savepoint
    // rather than killing the process.
    let signals = match &args.savepoint_dir {
        Some(_) => {
            let (sender, receiver) = mpsc::channel();
            ctrlc::set_handler(move || {
                // Only a send: the main thread does the work, outside the signal handler.
                let _ = sender.send(());
            })
            .context("cannot install the SIGTERM / Ctrl-C handler")?;
            Some(receiver)
        }
        None => None,
    };
    let handle = env.execute("word count")?;
    // What a restore skipped or rolled back, before anything else; restarts come at the end.
    let restore_warnings = handle.warnings();
    restore_warnings.iter().for_each(|warning| eprintln!("word count: warning: {warning}"));
    if let (Some(signals), Some(dir)) = (&signals, &args.savepoint_dir) {
        stop_with_savepoint_on_signal(&handle, signals, dir);
    }
    let progress = progress::Progress::show(&handle, args.quiet);
    let result = handle.wait().context("word count failed");
    drop(progress);
    let result = result?;
    result.warnings[restore_warnings.len()..].iter().for_each(|warning| eprintln!("word count: warning: {warning}"));
    if let Some(savepoint) = &result.savepoint {
        // Printed after the job ended, so it is never interleaved with CSV lines on stdout.
        println!("savepoint: {}", savepoint.display());
    }
    let late = result.metrics.total_all("late_records_dropped");
    eprintln!(
        "word count: {} windowed counts in {:.2} s; {} late words dropped; {} malformed lines skipped",
        // Every sink but the ones counting skipped lines.
        result.metrics.total_all("records_written") - result.metrics.total("Sink: Skipped", "records_written"),
        result.duration.as_secs_f64(),
        late,
        malformed.load(Ordering::Relaxed),
    );
    Ok(())
}

/// Waits until the job ends on its own, or a signal arrives and a savepoint stops it.
fn stop_with_savepoint_on_signal(handle: &JobHandle, signals: &mpsc::Receiver<()>, dir: &Path) {
    loop {
        if signals.try_recv().is_ok() {
            let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
            match handle.stop_with_savepoint(dir.join(format!("savepoint-{millis}")), false) {
                Ok(_) => return,
                // The job goes on after a failed savepoint (or has just ended on its own, which
                // the next check sees), so keep waiting: another signal tries again.
                Err(e) => eprintln!("word count: no savepoint taken: {e}"),
            }
        }
        if handle.is_finished() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
