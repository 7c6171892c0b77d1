//! Fraud detection: a small card transaction followed by a large one on the same account
//! within a minute raises an alert (keyed state and event-time timers).
//!
//! ```text
//! cargo run --release --example fraud_detection -- --transactions 100000 --parallelism 2
//! cargo run --release --example fraud_detection -- --serve 127.0.0.1:8081 --rate 2000
//! curl 127.0.0.1:8081/accounts/42      # {"account":42,"alerts":1,"pending_small_at":null}
//! ```
//! Prints `account,small_at_ms,large_at_ms,amount` per alert. With `--serve`, transactions
//! are fed at `--rate` per second and each account's state is served over HTTP while the
//! job runs (from its queryable state); after the last transaction the job waits for more
//! until SIGINT or SIGTERM, then ends its input and exits.

#[path = "../common/flags.rs"]
mod flags;
mod job;
#[path = "../common/logs.rs"]
mod logs;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
    /// Serve each account's state over HTTP here while the job runs (port 0: any free port;
    /// the address is printed on stderr).
    #[arg(long)]
    serve: Option<SocketAddr>,
    /// With --serve: transactions fed per second.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    rate: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logs::init("fraud detection");
    let env = StreamEnvironment::new();
    if let Some(p) = args.parallelism {
        env.set_parallelism(p);
    }
    if let Some(dir) = &args.state_dir {
        env.set_state_dir(dir);
    }
    let transactions = job::transactions(args.seed, args.transactions, args.accounts);
    let result = match args.serve {
        None => {
            // One reader keeps each account's transactions in order on the way to the detector.
            job::alerts(&env.from_iter(transactions)).print().set_parallelism(1);
            env.execute("fraud detection")?.wait().context("fraud detection failed")?
        }
        Some(addr) => served(&env, transactions, addr, args.rate)?,
    };
    eprintln!(
        "fraud detection: {} transactions, {} alerts in {:.2} s",
        args.transactions,
        result.metrics.total_all("records_written"),
        result.duration.as_secs_f64()
    );
    Ok(())
}

/// Runs the job fed at `rate` transactions per second through a channel, serving each
/// account's state on `addr`, until SIGINT or SIGTERM.
fn served(
    env: &StreamEnvironment,
    transactions: Vec<job::Transaction>,
    addr: SocketAddr,
    rate: u64,
) -> anyhow::Result<JobResult> {
    let runtime = tokio::runtime::Runtime::new()?;
    // Installed first, so a signal that comes while the job starts is not the default (exit).
    #[cfg(unix)]
    let (mut interrupt, mut term) = {
        use tokio::signal::unix::{signal, SignalKind};
        let _context = runtime.enter();
        (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?)
    };
    let listener = runtime.block_on(serve::bind(addr))?;
    eprintln!("listening on {}", listener.local_addr()?);
    let (sender, receiver) = crossbeam_channel::bounded(1024);
    job::alerts(&env.from_channel(receiver)).print().set_parallelism(1);
    let job = env.execute("fraud detection")?;
    let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
    let feeder = std::thread::spawn(move || feed(transactions, &sender, rate, &stopped));
    runtime.block_on(async {
        let shutdown = async move {
            #[cfg(unix)]
            tokio::select! { _ = interrupt.recv() => {}, _ = term.recv() => {} }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
        };
        serve::serve(listener, &job, shutdown).await
    })?;
    // The feeder drops its sender: the source reads what is left and the input ends.
    let _ = stop.send(());
    feeder.join().map_err(|_| anyhow::anyhow!("the feeder thread panicked"))?;
    job.wait().context("fraud detection failed")
}

/// Sends `transactions` at `rate` per second, then keeps the channel open until `stop`.
fn feed(
    transactions: Vec<job::Transaction>,
    sender: &crossbeam_channel::Sender<job::Transaction>,
    rate: u64,
    stop: &crossbeam_channel::Receiver<()>,
) {
    let start = Instant::now();
    let count = transactions.len();
    for (sent, tx) in transactions.into_iter().enumerate() {
        let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
        if stop.recv_deadline(due).is_ok() || sender.send(tx).is_err() {
            return;
        }
    }
    eprintln!("fed {count} transactions");
    let _ = stop.recv();
}
