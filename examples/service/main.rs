//! An HTTP service with an eddy job inside: events posted as JSON lines are summed per key
//! in 1 s event-time windows; results go to a file and out as server-sent events; each
//! key's all-time total is read from the running job's state. SIGINT or SIGTERM drains the
//! job (every accepted event is read, every open window fires and is written) and exits 0.
//!
//! ```text
//! cargo run --release --example service -- --addr 127.0.0.1:8080 --results results.jsonl
//! curl -d '{"key": "a", "ts": 1700000000000, "value": 5}' 127.0.0.1:8080/events
//! curl -N 127.0.0.1:8080/results        # server-sent events, one per window result
//! curl 127.0.0.1:8080/state/a           # {"key":"a","total":5}
//! ```
//!
//! See docs/embedding.md for how it is built.

#[path = "../common/flags.rs"]
mod flags;
mod http;
mod job;
#[path = "../common/logs.rs"]
mod logs;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use eddy::prelude::*;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};

/// How long the shutdown waits for the job to read the events it accepted.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

#[derive(Parser, Debug)]
#[command(about = "Sums events per key in 1 s event-time windows, served over HTTP")]
struct Args {
    /// Where to listen (port 0: any free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The file window results are appended to, as JSON lines.
    #[arg(long)]
    results: PathBuf,
    /// Parallelism of the keyed operators, 1 to 128 (default: number of cores).
    #[arg(long, value_parser = flags::parallelism)]
    parallelism: Option<usize>,
    /// After this long without events, event time follows the wall clock so the last windows
    /// close (0: wait for the next event or the shutdown).
    #[arg(long, default_value_t = 1000)]
    advance_after_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logs::init("service");
    flags::writable(&args.results, "--results")?;
    // Listening for signals from the start: one that comes while the job starts is not the
    // default (exit at once) but a shutdown like any other.
    let terminated = terminated()?;
    let listener = TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {} (--addr); choose a free port, or 0 for any", args.addr))?;

    let (events, events_in) = mpsc::channel(1024);
    let (results, _) = broadcast::channel(1024);
    let env = StreamEnvironment::new();
    if let Some(parallelism) = args.parallelism {
        env.set_parallelism(parallelism);
    }
    let advance_after = (args.advance_after_ms > 0).then(|| Duration::from_millis(args.advance_after_ms));
    job::build(&env, events_in, advance_after, &args.results, results.clone());
    let job = env.execute("service")?;
    let totals = job.state::<String, i64>(job::TOTALS, job::TOTAL)?;

    let (shutdown, shutdown_seen) = watch::channel(false);
    let app = http::router(http::App { events, results, totals, shutdown: shutdown_seen.clone() });
    println!("listening on {}", listener.local_addr()?);
    let mut until_shutdown = shutdown_seen;
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = until_shutdown.wait_for(|down| *down).await;
            })
            .into_future(),
    );

    tokio::select! {
        signal = terminated => {
            signal?;
            eprintln!("draining: every accepted event is read, every open window fires and is written");
        }
        // The job only ends by itself when it fails: reported below.
        _ = job.join() => {}
    }
    // Stop taking requests and end the result streams; requests in flight finish, so every
    // event a POST accepted is in the channel. Then every sender is gone: the source reads
    // what is left and the input ends, which fires every window and flushes the sink (a
    // drain that loses nothing; `job.stop()` would leave what the source had not read yet).
    let _ = shutdown.send(true);
    server.await.context("the HTTP server panicked")?.context("the HTTP server failed")?;
    let outcome = match tokio::time::timeout(DRAIN_LIMIT, job.join()).await {
        Ok(outcome) => outcome,
        Err(_) => {
            eprintln!("the input did not end within {DRAIN_LIMIT:?}; stopping the job where it is");
            job.stop();
            job.join().await
        }
    };
    let result = outcome.context("the job failed")?;
    eprintln!(
        "service: {} events, {} window results written to {} in {:.1} s",
        result.metrics.counter("events", "records_in")?,
        result.metrics.counter("Sink: results", "records_written")?,
        args.results.display(),
        result.duration.as_secs_f64()
    );
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM; both are listened for from the call on.
#[cfg(unix)]
fn terminated() -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut interrupt, mut term) = (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?);
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
        Ok(())
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn terminated() -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>>> {
    Ok(async { Ok(tokio::signal::ctrl_c().await?) })
}
