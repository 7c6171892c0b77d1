//! The Kafka sink against real brokers: at-least-once (noida-db and tansu), exactly-once
//! with a panic in a map and with the broker restarted mid-run (noida-db, whose transactions
//! hide aborted records from read_committed consumers), a restore from a savepoint older than
//! what the sink committed (refused, or let through with duplicates), and offsets committed
//! back to a consumer group.

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

/// The job of the savepoint test: `value 0..n` written exactly-once at parallelism 2 (subtask
/// `s` of the generator emits `s, s + 2, …`), slowly enough for a savepoint and checkpoints.
fn slow_exactly_once_job(env: &StreamEnvironment, brokers: &str, topic: &str, checkpoints: &std::path::Path, n: u64) {
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(100)).dir(checkpoints));
    let sink = KafkaSink::builder()
        .brokers(brokers)
        .topic(topic)
        .delivery(DeliveryGuarantee::ExactlyOnce)
        .transactional_id_prefix(format!("test-{topic}"))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    env.generate(Some(n), |i| i)
        .uid("numbers")
        .map(|i| {
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(4));
            }
            format!("value {i}")
        })
        .uid("format")
        .sink_to_kafka(sink)
        .uid("kafka");
}

/// Committed Kafka transactions cannot be taken back: a restore from a savepoint older than
/// what the sink committed since is refused before anything is written, naming the sink's
/// commits; with `allow_duplicate_output` it goes on, warns, and the output then holds what
/// came after the savepoint twice (and what it covers once).
#[test]
fn a_restore_from_an_older_savepoint_is_refused_after_newer_commits() {
    let Some(kafka) = Service::kafka() else { return };
    let brokers = kafka.address();
    create_topic(&brokers, "older", 2);
    let dir = tempfile::tempdir().unwrap();
    let (checkpoints, savepoint) = (dir.path().join("chk"), dir.path().join("savepoint"));
    let n = 3_000;

    let env = StreamEnvironment::new();
    slow_exactly_once_job(&env, &brokers, "older", &checkpoints, n);
    let job = env.execute("first run").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while job.metrics().total("Sink: Kafka", "records_written") < 600 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let savepoint = job.savepoint(&savepoint).expect("a savepoint while the job runs");
    let first = job.wait().unwrap();
    assert!(first.checkpoints >= 2, "checkpoints after the savepoint committed more ({})", first.checkpoints);
    let once = read_committed(&brokers, "older", n as usize + 1, Duration::from_secs(3));
    assert_eq!(once.len(), n as usize);
    assert!(once.into_iter().collect::<BTreeSet<_>>() == expected(n), "every value once");

    let env = StreamEnvironment::new();
    slow_exactly_once_job(&env, &brokers, "older", &checkpoints, n);
    env.restore_from(&savepoint);
    let error = env.execute("refused").err().expect("the restore is refused").to_string();
    for needed in ["refusing to restore", "sink 'kafka'", "Kafka transactions committed", "'test-older'"] {
        assert!(error.contains(needed), "{needed:?} in {error}");
    }
    assert!(error.contains("allow_duplicate_output"), "says how to go on anyway: {error}");
    let unchanged = read_committed(&brokers, "older", n as usize + 1, Duration::from_secs(3));
    assert_eq!(unchanged.len(), n as usize, "refused before anything was written");

    let env = StreamEnvironment::new();
    slow_exactly_once_job(&env, &brokers, "older", &checkpoints, n);
    env.restore_from(&savepoint);
    env.allow_duplicate_output();
    let job = env.execute("allowed").unwrap();
    let warnings = job.warnings();
    let again = job.wait().unwrap().metrics.total("Sink: Kafka", "records_written");
    assert!(warnings.iter().any(|w| w.contains("sink 'kafka'") && w.contains("duplicates allowed")), "{warnings:?}");
    // Each subtask of the generator resumes where the savepoint left it, so the values it
    // writes again are a suffix of its own: value i is there twice exactly from some k(i % 2).
    let mut times = std::collections::BTreeMap::<u64, u32>::new();
    for value in read_committed(&brokers, "older", 2 * n as usize, Duration::from_secs(3)) {
        *times.entry(value["value ".len()..].parse().unwrap()).or_default() += 1;
    }
    assert_eq!(times.len(), n as usize, "every value is there");
    for subtask in 0..2 {
        let counts: Vec<u32> = (subtask..n).step_by(2).map(|i| times[&i]).collect();
        let resumed = counts.iter().position(|&c| c == 2).unwrap_or(counts.len());
        assert!(counts[..resumed].iter().all(|&c| c == 1), "subtask {subtask}: {counts:?}");
        assert!(counts[resumed..].iter().all(|&c| c == 2), "subtask {subtask}: {counts:?}");
    }
    let twice = times.values().filter(|&&c| c == 2).count();
    let before = times.values().filter(|&&c| c == 1).count();
    assert!(twice > 0, "the restored job wrote again what came after the savepoint");
    // Only that: the savepoint's own transactions, which the first run committed, are not
    // written a second time when the restore commits them again.
    assert_eq!(twice as u64, again, "twice exactly what the restored job wrote");
    assert!(before >= 600, "what the savepoint covers is there once ({before} values)");
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
