//! Generates a timestamped word count input: `gen_words OUT BYTES [SEED] [DISORDER_MS]`.
//!
//! ```text
//! cargo run --release --example gen_words -- /tmp/wc_100m.tsv 100000000
//! cargo run --release --example word_count -- --input /tmp/wc_100m.tsv --timestamped --output /tmp/out.csv
//! ```

#[path = "word_count/generate.rs"]
mod generate;

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: gen_words OUT BYTES [SEED] [DISORDER_MS]";
    let out = args.first().context(usage)?;
    let number = |i: usize, default: u64| -> anyhow::Result<u64> {
        args.get(i).map_or(Ok(default), |s| s.parse::<f64>().map(|v| v as u64).context(usage))
    };
    let spec =
        generate::Spec { target_bytes: number(1, 0)?, seed: number(2, 42)?, disorder_ms: number(3, 0)?, start_ms: 0 };
    let (lines, bytes) = generate::generate(out.as_ref(), spec)?;
    eprintln!("wrote {lines} lines, {bytes} bytes to {out}");
    Ok(())
}
