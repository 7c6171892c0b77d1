//! An application's channels and streams as a job's sources and sinks, as a service uses
//! them: records in through tokio and crossbeam channels and `futures::Stream`s, results out
//! through channels, a `futures::Sink`, a callback and a `futures::Stream`. Each test compares
//! what came out with the plain computation over what went in, and a slow consumer at the
//! end of a job holds the producer at its start back (backpressure), so what is buffered in
//! between stays bounded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eddy::prelude::*;
use futures::{SinkExt, StreamExt};

const LIMIT: Duration = Duration::from_secs(60);

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

#[test]
fn a_crossbeam_channel_feeds_a_job_until_its_senders_are_gone() {
    let (sender, receiver) = crossbeam_channel::bounded(8);
    let env = StreamEnvironment::new();
    env.set_parallelism(3);
    let out = env.from_channel(receiver).map(|x: u64| x * 3 + 1).collect();
    let job = env.execute("crossbeam in").unwrap();
    let producers: Vec<_> = (0..2u64)
        .map(|p| {
            let sender = sender.clone();
            std::thread::spawn(move || (0..5_000u64).for_each(|i| sender.send(p * 10_000 + i).unwrap()))
        })
        .collect();
    drop(sender);
    producers.into_iter().for_each(|p| p.join().unwrap());
    job.wait().unwrap();
    let want: Vec<u64> = (0..2u64).flat_map(|p| (0..5_000).map(move |i| (p * 10_000 + i) * 3 + 1)).collect();
    assert_eq!(sorted(out.take()), sorted(want));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokio_channel_in_and_a_result_stream_out() {
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let results = env.from_channel(receiver).key_by(|x: &u64| x % 10).sum(|x| x).collect_stream();
    let job = env.execute("tokio in, stream out").unwrap();
    tokio::spawn(async move {
        for i in 0..2_000u64 {
            sender.send(i).await.unwrap();
        }
    });
    let got: Vec<u64> = tokio::time::timeout(LIMIT, results.collect()).await.expect("the stream never ended");
    job.await.unwrap();
    // The rolling sums of each key, ending at the key's total.
    let mut want = Vec::new();
    let mut sums = [0u64; 10];
    for i in 0..2_000u64 {
        sums[(i % 10) as usize] += i;
        want.push(sums[(i % 10) as usize]);
    }
    assert_eq!(sorted(got), sorted(want));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_futures_stream_that_needs_tokio_timers_is_read_to_its_end() {
    // Each item waits on a tokio timer: the stream only works in a runtime's context.
    let ticks = futures::stream::unfold(0u32, |i| async move {
        if i == 50 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        Some((i, i + 1))
    });
    let env = StreamEnvironment::new();
    let out = env.from_stream(ticks).map(|i| i * 2).collect();
    tokio::time::timeout(LIMIT, env.execute("ticks").unwrap()).await.unwrap().unwrap();
    assert_eq!(sorted(out.take()), (0..50).map(|i| i * 2).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_go_into_a_tokio_channel_a_futures_sink_and_a_callback() {
    let env = StreamEnvironment::new();
    env.set_parallelism(3);
    let numbers = env.from_collection((0..3_000u64).collect());
    let (sender, mut receiver) = tokio::sync::mpsc::channel(8);
    numbers.map(|x| x + 1).into_channel(sender);
    // A sink that needs a tokio timer per record, collecting into a shared list.
    let fed = Arc::new(Mutex::new(Vec::new()));
    let target = fed.clone();
    let sink = futures::sink::unfold((), move |(), x: u64| {
        let target = target.clone();
        async move {
            if x % 500 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            target.lock().unwrap().push(x);
            Ok::<_, std::io::Error>(())
        }
    });
    numbers.map(|x| x * 2).into_sink(sink);
    let total = Arc::new(AtomicU64::new(0));
    let sum = total.clone();
    numbers.for_each(move |x| {
        sum.fetch_add(x, Ordering::Relaxed);
    });
    let job = env.execute("three sinks").unwrap();
    let mut from_channel = Vec::new();
    while let Some(x) = tokio::time::timeout(LIMIT, receiver.recv()).await.expect("the channel never closed") {
        from_channel.push(x);
    }
    job.await.unwrap();
    assert_eq!(sorted(from_channel), (1..=3_000).collect::<Vec<_>>());
    assert_eq!(sorted(fed.lock().unwrap().clone()), (0..3_000).map(|x| x * 2).collect::<Vec<_>>());
    assert_eq!(total.load(Ordering::Relaxed), (0..3_000u64).sum::<u64>());
}

/// A producer that sends as fast as it can into a job whose consumer takes one record per
/// millisecond: after a while the producer can only be ahead of the consumer by what the
/// channels and the job's one batch in flight hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_holds_the_producer_back() {
    const IN: usize = 16;
    const OUT: usize = 4;
    const BATCH: usize = 32;
    let (sender, receiver) = tokio::sync::mpsc::channel(IN);
    let (results, mut consumer) = tokio::sync::mpsc::channel(OUT);
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    env.set_batch_size(BATCH);
    env.from_channel(receiver).map(|x: u64| x).into_channel(results);
    let job = env.execute("backpressure").unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let producer = tokio::spawn(async move {
        for i in 0.. {
            if sender.send(i).await.is_err() {
                break;
            }
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let mut consumed = 0u64;
    let mut furthest_ahead = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1_500) {
        let x = consumer.recv().await.unwrap();
        assert_eq!(x, consumed, "in order at parallelism 1");
        consumed += 1;
        // The producer counts a record after its send returns, so the consumer may have it
        // before it is counted.
        furthest_ahead = furthest_ahead.max(sent.load(Ordering::Relaxed).saturating_sub(consumed));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The input channel, one batch the source holds, the output channel, and the one value
    // each end holds while it waits for room.
    let bound = (IN + BATCH + OUT + 2) as u64;
    assert!(consumed > 100, "the consumer made progress ({consumed})");
    assert!(furthest_ahead <= bound, "the producer got {furthest_ahead} ahead of the consumer (bound {bound})");
    job.stop();
    // The stopped job drops its receiver: the producer's next send fails and it ends.
    while consumer.recv().await.is_some() {}
    job.await.unwrap();
    tokio::time::timeout(LIMIT, producer).await.unwrap().unwrap();
}

#[test]
fn a_slow_crossbeam_consumer_holds_a_crossbeam_producer_back() {
    const IN: usize = 8;
    const OUT: usize = 2;
    const BATCH: usize = 16;
    let (sender, receiver) = crossbeam_channel::bounded(IN);
    let (results, consumer) = crossbeam_channel::bounded(OUT);
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    env.set_batch_size(BATCH);
    env.from_channel(receiver).filter(|x: &u64| x % 2 == 0).into_channel(results);
    let job = env.execute("backpressure").unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let producer = std::thread::spawn(move || {
        for i in 0.. {
            if sender.send(i).is_err() {
                break;
            }
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let mut consumed = 0u64;
    let mut furthest_ahead = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1_000) {
        assert_eq!(consumer.recv().unwrap(), consumed * 2);
        consumed += 1;
        // Half of what is sent reaches the consumer.
        furthest_ahead = furthest_ahead.max(sent.load(Ordering::Relaxed) - 2 * consumed);
        std::thread::sleep(Duration::from_millis(1));
    }
    let bound = (IN + BATCH + 2 * OUT + 2) as u64;
    assert!(furthest_ahead <= bound, "the producer got {furthest_ahead} ahead (bound {bound})");
    job.stop();
    while consumer.recv().is_ok() {}
    job.wait().unwrap();
    producer.join().unwrap();
}

#[test]
fn stopping_a_job_fed_by_a_channel_keeps_every_record_it_received() {
    let (sender, receiver) = crossbeam_channel::bounded(64);
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let out = env.from_channel(receiver).map(|x: u64| x).collect();
    let job = env.execute("stopped").unwrap();
    let producer = std::thread::spawn(move || {
        let mut sent = 0u64;
        while sender.send(sent).is_ok() {
            sent += 1;
        }
        sent
    });
    std::thread::sleep(Duration::from_millis(200));
    job.stop();
    job.wait().unwrap();
    let sent = producer.join().unwrap();
    let got = sorted(out.take());
    // The source read a prefix of what was sent; the channel's unread rest was dropped with it.
    assert!(!got.is_empty());
    assert_eq!(got, (0..got.len() as u64).collect::<Vec<_>>());
    assert!(got.len() as u64 <= sent);
}

#[test]
fn a_checkpointed_job_refuses_a_channel_source() {
    let (_sender, receiver) = crossbeam_channel::bounded::<u8>(1);
    let env = StreamEnvironment::new();
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_secs(1)));
    env.from_channel(receiver).uid("requests").collect();
    let error = match env.execute("refused") {
        Err(error) => error.to_string(),
        Ok(job) => job.wait().map(|_| "the job ran".to_string()).unwrap_or_else(|e| e.to_string()),
    };
    assert!(error.contains("cannot rewind"), "{error}");
}

#[test]
fn a_dropped_result_receiver_fails_the_job_saying_what_to_do() {
    let (results, receiver) = crossbeam_channel::bounded(1);
    drop(receiver);
    let env = StreamEnvironment::new();
    env.from_collection(vec![1u8, 2, 3]).into_channel(results);
    let error = env.execute("nobody listens").unwrap().wait().unwrap_err().to_string();
    assert!(error.contains("receiver was dropped") && error.contains("stop the job"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_futures_sink_error_fails_the_job() {
    let env = StreamEnvironment::new();
    let sink = futures::sink::unfold(0u32, |seen, x: u32| async move {
        if x == 7 {
            Err(format!("cannot store {x} after {seen} records"))
        } else {
            Ok(seen + 1)
        }
    });
    env.from_iter(0..20u32).into_sink(sink);
    let error = env.execute("failing sink").unwrap().await.unwrap_err().to_string();
    assert!(error.contains("cannot store 7 after 7 records"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_into_a_tokio_channel_pair_forwards_through_sink_adapters() {
    // A futures::Sink built from a channel's sender, as services often have.
    let (sender, receiver) = futures::channel::mpsc::channel::<String>(4);
    let env = StreamEnvironment::new();
    env.set_parallelism(1); // in order
    env.from_iter(["a", "b", "c"]).map(|s| s.to_uppercase()).into_sink(sender.sink_map_err(|e| e.to_string()));
    let job = env.execute("adapters").unwrap();
    let got: Vec<String> = tokio::time::timeout(LIMIT, receiver.collect()).await.unwrap();
    job.await.unwrap();
    assert_eq!(got, vec!["A", "B", "C"]);
}
