//! Embedding throughput, in one run: records through a job fed and drained by tokio channels
//! (`from_channel` → map → `into_channel`) next to the same pipeline as plain tokio tasks; and
//! `map_async` with 1 ms simulated latency at capacity 100, whose ceiling is
//! capacity / latency = 100 k records/s per subtask.
//!
//! ```text
//! cargo bench --bench embedding                       # 2 M records, 100 k async lookups
//! EMBED_RECORDS=1e7 EMBED_LOOKUPS=1e6 cargo bench --bench embedding
//! ```

#[path = "common/machine.rs"]
mod machine;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy::prelude::*;
use tokio::sync::mpsc;

#[path = "../examples/common/allocator.rs"]
mod allocator;

/// Capacity of every channel, in and out.
const CAPACITY: usize = 1024;

fn number(name: &str, default: f64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(default) as u64
}

/// Sends `0..n` into `sender`, then drops it.
async fn produce(sender: mpsc::Sender<u64>, n: u64) {
    for i in 0..n {
        sender.send(i).await.unwrap();
    }
}

/// Receives until the channel closes; returns the count and the checksum.
async fn consume(mut receiver: mpsc::Receiver<u64>) -> (u64, u64) {
    let (mut count, mut sum) = (0u64, 0u64);
    while let Some(x) = receiver.recv().await {
        count += 1;
        sum = sum.wrapping_add(x);
    }
    (count, sum)
}

/// The pipeline as an eddy job at parallelism 1.
async fn eddy_pipeline(n: u64) -> (f64, (u64, u64)) {
    let (sender, input) = mpsc::channel(CAPACITY);
    let (output, receiver) = mpsc::channel(CAPACITY);
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    env.from_channel(input).map(|x: u64| x * 2 + 1).into_channel(output);
    let start = Instant::now();
    let job = env.execute("channels").unwrap();
    let consumer = tokio::spawn(consume(receiver));
    produce(sender, n).await;
    let got = consumer.await.unwrap();
    job.await.unwrap();
    (start.elapsed().as_secs_f64(), got)
}

/// The same pipeline as plain tokio tasks: producer → map task → consumer.
async fn tokio_pipeline(n: u64) -> (f64, (u64, u64)) {
    let (sender, mut input) = mpsc::channel::<u64>(CAPACITY);
    let (output, receiver) = mpsc::channel(CAPACITY);
    let start = Instant::now();
    let mapper = tokio::spawn(async move {
        while let Some(x) = input.recv().await {
            output.send(x * 2 + 1).await.unwrap();
        }
    });
    let consumer = tokio::spawn(consume(receiver));
    produce(sender, n).await;
    mapper.await.unwrap();
    let got = consumer.await.unwrap();
    (start.elapsed().as_secs_f64(), got)
}

/// A wait that ends `duration` after it starts, to the precision of a thread's sleep: one
/// timer thread keeps the deadlines and wakes each future when its time has come. (tokio's
/// timer rounds a 1 ms sleep up to its next millisecond tick: 1 to 2 ms.)
fn precise_delay(duration: Duration) -> impl std::future::Future<Output = ()> {
    use std::sync::OnceLock;
    use std::task::{Poll, Waker};
    static TIMER: OnceLock<crossbeam_channel::Sender<(Instant, Waker)>> = OnceLock::new();
    let timer = TIMER.get_or_init(|| {
        let (sender, requests) = crossbeam_channel::unbounded::<(Instant, Waker)>();
        std::thread::spawn(move || {
            let mut due: Vec<(Instant, Waker)> = Vec::new();
            loop {
                let next = due.iter().map(|(at, _)| *at).min();
                let request = match next {
                    Some(at) => requests.recv_deadline(at).ok(),
                    None => requests.recv().ok(),
                };
                due.extend(request);
                let now = Instant::now();
                due.retain(|(at, waker)| {
                    let waiting = *at > now;
                    if !waiting {
                        waker.wake_by_ref();
                    }
                    waiting
                });
            }
        });
        sender
    });
    let until = Instant::now() + duration;
    let mut registered = false;
    std::future::poll_fn(move |cx| {
        if Instant::now() >= until {
            return Poll::Ready(());
        }
        if !registered {
            registered = true;
            let _ = timer.send((until, cx.waker().clone()));
        }
        Poll::Pending
    })
}

/// How a lookup waits its 1 ms.
#[derive(Debug, Clone, Copy)]
enum Latency {
    /// `tokio::time::sleep(1 ms)`.
    TokioSleep,
    /// [`precise_delay`] of 1 ms.
    Precise,
}

/// `n` lookups of 1 ms each through `map_async` at capacity 100, at `parallelism`; returns
/// the seconds taken, the results counted, and the lookups' mean latency as measured inside
/// them.
fn async_lookups(n: u64, parallelism: usize, order: ResultOrder, latency: Latency) -> (f64, u64, Duration) {
    let env = StreamEnvironment::new();
    env.set_parallelism(parallelism);
    let done = Arc::new(AtomicU64::new(0));
    let count = done.clone();
    let slept_us = Arc::new(AtomicU64::new(0));
    let slept = slept_us.clone();
    env.generate(Some(n), |i| i)
        .map_async(100, Duration::from_secs(10), order, move |x| {
            let slept = slept.clone();
            async move {
                let start = Instant::now();
                match latency {
                    Latency::TokioSleep => tokio::time::sleep(Duration::from_millis(1)).await,
                    Latency::Precise => precise_delay(Duration::from_millis(1)).await,
                }
                slept.fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
                Ok::<_, String>(x)
            }
        })
        .for_each(move |_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
    let start = Instant::now();
    env.execute("lookups").unwrap().wait().unwrap();
    let latency = Duration::from_micros(slept_us.load(Ordering::Relaxed) / n.max(1));
    (start.elapsed().as_secs_f64(), done.load(Ordering::Relaxed), latency)
}

fn main() {
    allocator::return_freed_memory_promptly();
    let records = number("EMBED_RECORDS", 2e6);
    let lookups = number("EMBED_LOOKUPS", 1e5);
    println!("machine: {}", machine::machine());
    println!("command: EMBED_RECORDS={records} EMBED_LOOKUPS={lookups} cargo bench --bench embedding");

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let want = (records, (0..records).map(|x| x * 2 + 1).fold(0u64, u64::wrapping_add));
    println!(
        "\nchannel pipeline, {records} records (from_channel -> map -> into_channel, p=1; channels of {CAPACITY})"
    );
    println!("| pipeline | s | M records/s | vs tokio |");
    println!("|---|---|---|---|");
    let (tokio_s, got) = runtime.block_on(tokio_pipeline(records));
    assert_eq!(got, want, "the tokio pipeline lost records");
    let (eddy_s, got) = runtime.block_on(eddy_pipeline(records));
    assert_eq!(got, want, "the eddy pipeline lost records");
    let rate = |s: f64| records as f64 / s / 1e6;
    println!("| plain tokio tasks | {tokio_s:.2} | {:.2} | 1.00 |", rate(tokio_s));
    println!("| eddy job | {eddy_s:.2} | {:.2} | {:.2} |", rate(eddy_s), tokio_s / eddy_s);

    println!("\nmap_async, {lookups} lookups of 1 ms at capacity 100 (ceiling 100 k/s per subtask)");
    println!("| latency | order | p | s | k lookups/s | per subtask | of 100 k/s | measured latency | of capacity / latency |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let configs = [
        (Latency::TokioSleep, ResultOrder::Unordered, 1),
        (Latency::TokioSleep, ResultOrder::Ordered, 1),
        (Latency::TokioSleep, ResultOrder::Unordered, 2),
        (Latency::Precise, ResultOrder::Unordered, 1),
        (Latency::Precise, ResultOrder::Ordered, 1),
    ];
    for (how, order, parallelism) in configs {
        let (s, seen, latency) = async_lookups(lookups, parallelism, order, how);
        assert_eq!(seen, lookups, "lookups lost");
        let per_subtask = lookups as f64 / s / parallelism as f64;
        let ceiling = 100.0 / latency.as_secs_f64();
        println!(
            "| {how:?} | {order:?} | {parallelism} | {s:.2} | {:.1} | {:.1} | {:.0}% | {:.2} ms | {:.0}% |",
            lookups as f64 / s / 1e3,
            per_subtask / 1e3,
            per_subtask / 1e5 * 100.0,
            latency.as_secs_f64() * 1e3,
            per_subtask / ceiling * 100.0
        );
    }
}
