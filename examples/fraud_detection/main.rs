//! Fraud detection: a small card transaction followed by a large one on the same account
//! within a minute raises an alert (keyed state and event-time timers).
//!
//! ```text
//! cargo run --release --example fraud_detection -- --transactions 100000 --parallelism 2
//! ```
//! Prints `account,small_at_ms,large_at_ms,amount` per alert.

#[path = "../common/flags.rs"]
mod flags;
mod job;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use eddy::prelude::*;

#[derive(Parser, Debug)]
#[command(about = "Alerts on a small transaction followed by a large one within a minute")]
struct Args {
    /// How many transactions to generate.
    #[arg(long, default_value_t = 20_000)]
    transactions: usize,
    /// Accounts they are spread over (at least 1).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    accounts: u32,
    /// Seed of the generator.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Parallelism of the detector, 1 to 128 (the max parallelism; default: number of cores).
    #[arg(long, value_parser = flags::parallelism)]
    parallelism: Option<usize>,
    /// Keep the detector's state in sled databases here instead of memory.
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let env = StreamEnvironment::new();
    if let Some(p) = args.parallelism {
        env.set_parallelism(p);
    }
    if let Some(dir) = &args.state_dir {
        env.set_state_dir(dir);
    }
    // One reader keeps each account's transactions in order on the way to the detector.
    let transactions = env.from_iter(job::transactions(args.seed, args.transactions, args.accounts));
    job::alerts(&transactions).print().set_parallelism(1);
    let result = env.execute("fraud detection")?.wait().context("fraud detection failed")?;
    eprintln!(
        "fraud detection: {} transactions, {} alerts in {:.2} s",
        args.transactions,
        result.metrics.total_all("records_written"),
        result.duration.as_secs_f64()
    );
    Ok(())
}
