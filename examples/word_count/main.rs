//! Streaming word count: tokenize → key_by word → 5 s tumbling window → count → CSV lines
//! `window_start_ms,window_end_ms,word,count`.
//!
//! ```text
//! cargo run --release --example word_count                      # bundled corpus
//! cargo run --release --example word_count -- --input words.tsv --timestamped --parallelism 2
//! ```

mod job;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use eddy::prelude::*;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Window length in milliseconds.
    #[arg(long, default_value_t = 5000)]
    window_ms: u64,
    /// Bounded out-of-orderness of event time, in milliseconds.
    #[arg(long, default_value_t = 0)]
    out_of_orderness_ms: u64,
    /// Parallelism of the job (default: number of cores).
    #[arg(long)]
    parallelism: Option<usize>,
    /// Output file (default: stdout).
    #[arg(long)]
    output: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let env = StreamEnvironment::new();
    if let Some(p) = args.parallelism {
        env.set_parallelism(p);
    }
    let (lines, timestamped) = match args.input.as_deref() {
        None => (env.read_text_file(BUNDLED), true),
        Some("-") => (env.stdin_lines(), args.timestamped),
        Some(path) => (env.read_text_file(path), args.timestamped),
    };
    let options =
        job::Options { timestamped, window_ms: args.window_ms, out_of_orderness_ms: args.out_of_orderness_ms };
    let malformed = Arc::new(AtomicU64::new(0));
    let counts = job::word_counts(&lines, &options, malformed.clone());
    // One writer keeps the output a single file (or an unprefixed stdout).
    match &args.output {
        Some(path) => counts.write_text(path).set_parallelism(1),
        None => counts.print().set_parallelism(1),
    };
    let result = env.execute("word count")?.wait().context("word count failed")?;
    let late = result.metrics.total_all("late_records_dropped");
    eprintln!(
        "word count: {} windowed counts in {:.2} s; {} late words dropped; {} malformed lines skipped",
        result.metrics.total_all("records_written"),
        result.duration.as_secs_f64(),
        late,
        malformed.load(Ordering::Relaxed),
    );
    Ok(())
}
