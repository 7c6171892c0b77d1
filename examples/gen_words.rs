//! Generates a timestamped word count input: `gen_words OUT BYTES [SEED] [DISORDER_MS]`.
//!
//! ```text
//! cargo run --release --example gen_words -- /tmp/wc_100m.tsv 100000000
//! cargo run --release --example gen_words -- /tmp/wc_1g.tsv 1e9 42 3000
//! cargo run --release --example word_count -- --input /tmp/wc_100m.tsv --timestamped --output /tmp/out.csv
//! ```

#[path = "word_count/generate.rs"]
mod generate;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Writes a timestamped word count input: `<epoch_ms>\\t<words>` lines of Zipf-distributed words")]
struct Args {
    /// The file to write (created or replaced).
    out: PathBuf,
    /// How many bytes to write, at least (whole lines; `1e9` works too).
    #[arg(value_parser = byte_count)]
    bytes: u64,
    /// Seed of the generator: the same seed gives the same file.
    #[arg(default_value_t = 42)]
    seed: u64,
    /// Each line's timestamp is its index minus up to this many ms of random disorder.
    #[arg(default_value_t = 0, value_parser = clap::value_parser!(u64).range(..=i64::MAX as u64))]
    disorder_ms: u64,
}

/// A byte count written plainly or in float notation (`1e9`).
fn byte_count(text: &str) -> Result<u64, String> {
    match text.parse::<f64>() {
        Ok(bytes) if bytes.is_finite() && bytes >= 0.0 && bytes <= u64::MAX as f64 => Ok(bytes as u64),
        _ => Err("use a number of bytes such as 100000000 or 1e8".into()),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let spec = generate::Spec { target_bytes: args.bytes, seed: args.seed, disorder_ms: args.disorder_ms, start_ms: 0 };
    let (lines, bytes) =
        generate::generate(&args.out, spec).with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!("wrote {lines} lines, {bytes} bytes to {}", args.out.display());
    Ok(())
}
