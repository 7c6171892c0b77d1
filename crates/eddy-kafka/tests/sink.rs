//! The Kafka sink against real brokers: at-least-once (noida-db and tansu), exactly-once
//! with a panic in a map and with the broker restarted mid-run (noida-db, whose transactions
//! hide aborted records from read_committed consumers), and offsets committed back to a
//! consumer group.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{create_topic, produce, read_committed, Service};
use eddy_kafka::{DeliveryGuarantee, KafkaSink, KafkaSinkExt, KafkaSource, StartingOffsets};
use eddy_stream::prelude::*;

fn expected(n: u64) -> BTreeSet<String> {
    (0..n).map(|i| format!("value {i}")).collect()
}

fn at_least_once_writes_everything(broker: &Service) {
    create_topic(&broker.address(), "out", 3);
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let sink = KafkaSink::builder().brokers(broker.address()).topic("out").build().unwrap();
    env.generate(Some(1_000), |i| format!("value {i}")).sink_to_kafka(sink);
    env.execute("at least once").unwrap().wait().unwrap();
    let got = read_committed(&broker.address(), "out", 1_000, Duration::from_secs(10));
    assert_eq!(got.len(), 1_000);
    assert!(got.into_iter().collect::<BTreeSet<_>>() == expected(1_000), "every value once");
}

#[test]
fn at_least_once_sink_on_noida() {
    let Some(kafka) = Service::kafka() else { return };
    at_least_once_writes_everything(&kafka);
}

#[test]
fn at_least_once_sink_on_tansu() {
    let Some(tansu) = Service::tansu() else { return };
    at_least_once_writes_everything(&tansu);
}

/// A job that writes `value 0..n` exactly-once, slowly enough for checkpoints to happen, and
/// calls `fault(i)` for each value (to panic or to stop a broker).
fn exactly_once_job(brokers: &str, topic: &str, n: u64, fault: impl Fn(u64) + Send + Sync + 'static) -> JobResult {
    let fault = Arc::new(fault);
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(50)));
    env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 5, delay: Duration::from_millis(200) });
    let sink = KafkaSink::builder()
        .brokers(brokers)
        .topic(topic)
        .delivery(DeliveryGuarantee::ExactlyOnce)
        .transactional_id_prefix(format!("test-{topic}"))
        .key(|v: &String| Some(v.clone().into_bytes()))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    env.generate(Some(n), |i| i)
        .uid("numbers")
        .map(move |i| {
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            fault(i);
            format!("value {i}")
        })
        .sink_to_kafka(sink)
        .uid("kafka");
    env.execute("exactly once").unwrap().wait().unwrap()
}

#[test]
fn exactly_once_survives_a_panic_in_a_map() {
    let Some(kafka) = Service::kafka() else { return };
    create_topic(&kafka.address(), "exact", 3);
    let fired = Arc::new(AtomicBool::new(false));
    let flag = fired.clone();
    let result = exactly_once_job(&kafka.address(), "exact", 3_000, move |i| {
        if i == 2_001 && !flag.swap(true, Ordering::SeqCst) {
            panic!("injected failure at value {i}");
        }
    });
    assert!(fired.load(Ordering::SeqCst));
    assert!(result.restarts >= 1, "the job restarted");
    let got = read_committed(&kafka.address(), "exact", 3_000, Duration::from_secs(10));
    assert_eq!(got.len(), 3_000, "a read_committed consumer sees every value exactly once");
    assert!(got.into_iter().collect::<BTreeSet<_>>() == expected(3_000), "every value once");
}

#[test]
fn exactly_once_survives_a_broker_restart() {
    let Some(kafka) = Service::kafka() else { return };
    let brokers = kafka.address();
    // One partition: noida-db forgets topics when it restarts and auto-creates them with one.
    create_topic(&brokers, "restart", 1);
    let broker = Arc::new(std::sync::Mutex::new(kafka));
    let handle = broker.clone();
    let stopped = Arc::new(AtomicBool::new(false));
    let flag = stopped.clone();
    let result = exactly_once_job(&brokers, "restart", 3_000, move |i| {
        if i == 1_500 && !flag.swap(true, Ordering::SeqCst) {
            // Down for a second, then back on the same port with the same data.
            let handle = handle.clone();
            std::thread::spawn(move || {
                let mut broker = handle.lock().unwrap();
                broker.stop();
                std::thread::sleep(Duration::from_secs(1));
                broker.restart();
            });
        }
    });
    assert!(stopped.load(Ordering::SeqCst));
    // noida-db keeps neither its log nor its transaction state across its own restart (a
    // Kafka broker keeps both), so what can be checked is that the job got through the
    // outage without hanging, wrote after it, and never wrote a value twice.
    let got = read_committed(&brokers, "restart", 3_000, Duration::from_secs(10));
    let distinct: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(distinct.len(), got.len(), "no value twice (restarts: {})", result.restarts);
    assert!(distinct.is_subset(&expected(3_000)));
    let after = distinct.iter().filter_map(|v| v[6..].parse::<u64>().ok()).filter(|i| *i > 2_500).count();
    assert!(
        after > 0,
        "values written after the restart are there ({} values, {} restarts)",
        got.len(),
        result.restarts
    );
}

#[test]
fn offsets_are_committed_to_the_group_and_a_new_job_starts_there() {
    // tansu: consumer groups (offset commits and fetches) on a second broker.
    let Some(tansu) = Service::tansu() else { return };
    let brokers = tansu.address();
    create_topic(&brokers, "grouped", 2);
    let values = |range: std::ops::Range<u64>| range.map(|i| format!("value {i}").into_bytes()).collect::<Vec<_>>();
    produce(&brokers, "grouped", &values(0..200), Some(2));
    let run = |starting: StartingOffsets, until: u64| {
        let env = StreamEnvironment::new();
        env.set_parallelism(2);
        env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(50)));
        let source = KafkaSource::builder()
            .brokers(brokers.clone())
            .topics(["grouped"])
            .group_id("eddy-test")
            .starting_offsets(starting)
            .commit_offsets_on_checkpoint(true)
            .property("session.timeout.ms", "6000")
            .build()
            .unwrap();
        let out = env.from_source(source, WatermarkStrategy::no_watermarks(), "grouped").uid("grouped").collect();
        let job = env.execute("grouped").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while job.metrics().total("Source: grouped", "records_in") < until && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Let a checkpoint complete and its offsets be committed.
        std::thread::sleep(Duration::from_millis(500));
        job.cancel();
        let _ = job.wait();
        out.take()
    };
    let first = run(StartingOffsets::Committed { fallback: Default::default() }, 200);
    assert_eq!(first.len(), 200, "no committed offsets yet: the fallback (earliest)");
    produce(&brokers, "grouped", &values(200..300), Some(2));
    let second = run(StartingOffsets::Committed { fallback: Default::default() }, 100);
    let second: BTreeSet<String> = second.into_iter().collect();
    assert_eq!(second, (200..300).map(|i| format!("value {i}")).collect(), "the group's offsets say where to go on");
}

#[test]
fn exactly_once_needs_a_transactional_prefix() {
    let error = KafkaSink::<String>::builder()
        .brokers("b:1")
        .topic("t")
        .delivery(DeliveryGuarantee::ExactlyOnce)
        .build()
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("transactional_id_prefix"), "{error}");
}

#[test]
fn an_unreachable_broker_fails_the_sink_with_a_clear_error() {
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let sink = KafkaSink::builder().brokers("127.0.0.1:1").topic("t").timeout(Duration::from_secs(3)).build().unwrap();
    env.generate(Some(10), |i| format!("value {i}")).sink_to_kafka(sink);
    let started = std::time::Instant::now();
    let error = env.execute("no broker").unwrap().wait().expect_err("nothing can be delivered").to_string();
    assert!(error.contains("Sink: Kafka") && error.contains("127.0.0.1:1"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}
