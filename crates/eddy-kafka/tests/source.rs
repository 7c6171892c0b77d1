//! The Kafka source against a real broker (noida-db; tansu where said): partitions as
//! splits, offsets through checkpoints and restores at other parallelisms, bounded reads,
//! per-partition watermarks, dead letters, and clear errors for bad settings.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{create_topic, produce, Service};
use eddy_kafka::{KafkaSource, StartingOffsets};
use eddy_stream::prelude::*;

fn lines(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("line {i}").into_bytes()).collect()
}

#[test]
fn bounded_source_reads_every_partition_once_at_any_parallelism() {
    let Some(kafka) = Service::kafka() else { return };
    create_topic(&kafka.address(), "lines", 4);
    produce(&kafka.address(), "lines", &lines(1_000), Some(4));
    for parallelism in [1, 3] {
        let env = StreamEnvironment::new();
        env.set_parallelism(parallelism);
        let source = KafkaSource::builder().brokers(kafka.address()).topics(["lines"]).bounded().build().unwrap();
        let out = env.from_source(source, WatermarkStrategy::no_watermarks(), "lines").collect();
        let result = env.execute("bounded").unwrap().wait().unwrap();
        let mut got = out.take();
        got.sort();
        let mut expected: Vec<String> = (0..1_000).map(|i| format!("line {i}")).collect();
        expected.sort();
        assert_eq!(got, expected, "parallelism {parallelism}");
        let per_partition: u64 =
            (0..4).map(|p| result.metrics.total("Source: lines", &format!("lines-{p}.records_in"))).sum();
        assert_eq!(per_partition, 1_000);
    }
}

#[test]
fn unknown_brokers_and_topics_fail_with_a_clear_error() {
    let env = StreamEnvironment::new();
    let source = KafkaSource::builder()
        .brokers("127.0.0.1:1")
        .topics(["t"])
        .request_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let _ = env.from_source(source, WatermarkStrategy::no_watermarks(), "orders").collect();
    let error = env.execute("no broker").err().expect("no broker at port 1").to_string();
    assert!(error.contains("Source: orders") && error.contains("127.0.0.1:1"), "{error}");

    let Some(kafka) = Service::kafka() else { return };
    let env = StreamEnvironment::new();
    let source = KafkaSource::builder().brokers(kafka.address()).topics(["no-such-topic"]).build().unwrap();
    let _ = env.from_source(source, WatermarkStrategy::no_watermarks(), "orders").collect();
    let error = env.execute("no topic").err().expect("the topic does not exist").to_string();
    assert!(error.contains("'no-such-topic' does not exist"), "{error}");
}

#[test]
fn builder_refuses_settings_that_cannot_work() {
    let missing = KafkaSource::builder().topics(["t"]).build::<String>().err().unwrap().to_string();
    assert!(missing.contains(".brokers("), "{missing}");
    let no_topic = KafkaSource::builder().brokers("b:1").build::<String>().err().unwrap().to_string();
    assert!(no_topic.contains(".topics("), "{no_topic}");
    let committed = KafkaSource::builder()
        .brokers("b:1")
        .topics(["t"])
        .starting_offsets(StartingOffsets::Committed { fallback: Default::default() })
        .build::<String>()
        .err()
        .unwrap()
        .to_string();
    assert!(committed.contains(".group_id("), "{committed}");
}

#[test]
fn undeserialisable_records_are_dead_letters_with_topic_partition_offset() {
    let Some(kafka) = Service::kafka() else { return };
    create_topic(&kafka.address(), "numbers", 2);
    let mut values: Vec<Vec<u8>> = (0..100).map(|i| format!("{i}").into_bytes()).collect();
    values[7] = b"seven".to_vec();
    values[50] = vec![0xff, 0xfe];
    produce(&kafka.address(), "numbers", &values, Some(2));
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let source = KafkaSource::builder()
        .brokers(kafka.address())
        .topics(["numbers"])
        .bounded()
        .deserializer(|r: &eddy_kafka::KafkaRecord<'_>| -> Result<u32, BoxError> {
            Ok(std::str::from_utf8(r.payload().unwrap_or_default())?.parse()?)
        })
        .build()
        .unwrap();
    let numbers = env.from_source(source, WatermarkStrategy::no_watermarks(), "numbers");
    let dead = numbers.dead_letters::<RawRecord>().collect();
    let good = numbers.collect();
    env.execute("dead letters").unwrap().wait().unwrap();
    let mut good = good.take();
    good.sort();
    assert_eq!(good, (0..100).filter(|i| *i != 7 && *i != 50).collect::<Vec<u32>>());
    let mut dead: Vec<_> =
        dead.take().into_iter().map(|d| (d.input.split, d.input.position, d.input.payload)).collect();
    dead.sort();
    // Value i went to partition i % 2 as its (i / 2)-th record.
    assert_eq!(
        dead,
        vec![("numbers-0".into(), "25".into(), vec![0xff, 0xfe]), ("numbers-1".into(), "3".into(), b"seven".to_vec())]
    );
}

/// `i64::MIN` and `i64::MAX` are markers, not event times: a record stamped with one is a dead
/// letter that keeps its bytes and says why, and the others go on.
#[test]
fn records_stamped_with_a_reserved_time_are_dead_letters_with_their_bytes() {
    let Some(kafka) = Service::kafka() else { return };
    create_topic(&kafka.address(), "stamps", 1);
    let stamps = [1_000, i64::MIN, 2_000, i64::MAX, 3_000];
    let values: Vec<Vec<u8>> = stamps.iter().map(|t| t.to_string().into_bytes()).collect();
    produce(&kafka.address(), "stamps", &values, Some(1));
    let env = StreamEnvironment::new();
    let source = KafkaSource::builder()
        .brokers(kafka.address())
        .topics(["stamps"])
        .bounded()
        .build()
        .unwrap()
        .timestamps(|v: &String| v.parse().unwrap_or(0))
        .unwrap();
    let stamped = env.from_source(source, WatermarkStrategy::bounded_out_of_orderness(Duration::ZERO), "stamps");
    let dead = stamped.dead_letters::<RawRecord>().collect();
    let good = stamped.collect();
    env.execute("reserved times").unwrap().wait().unwrap();
    assert_eq!(good.take(), vec!["1000", "2000", "3000"]);
    let dead: Vec<_> = dead.take().into_iter().map(|d| (d.input.position, d.input.payload, d.error)).collect();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!((dead[0].0.as_str(), dead[0].1.as_slice()), ("1", values[1].as_slice()));
    assert!(dead[0].2.contains("reserved for \"no timestamp\""), "{}", dead[0].2);
    assert_eq!((dead[1].0.as_str(), dead[1].1.as_slice()), ("3", values[3].as_slice()));
    assert!(dead[1].2.contains("reserved for the end-of-input watermark"), "{}", dead[1].2);
}

#[test]
fn per_partition_watermarks_fire_windows_without_late_records() {
    // Partition 0 holds an hour of events, partition 1 the same hour; the reader gets them
    // in big per-partition bursts, so a subtask-wide watermark would run ahead.
    let Some(kafka) = Service::kafka() else { return };
    create_topic(&kafka.address(), "events", 2);
    let values: Vec<Vec<u8>> = (0..2_000).map(|i| format!("{}", (i / 2) * 1_000).into_bytes()).collect();
    produce(&kafka.address(), "events", &values, Some(2));
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let source = KafkaSource::builder()
        .brokers(kafka.address())
        .topics(["events"])
        .bounded()
        .deserializer(|r: &eddy_kafka::KafkaRecord<'_>| -> Result<i64, BoxError> {
            Ok(std::str::from_utf8(r.payload().unwrap_or_default())?.parse()?)
        })
        .build()
        .unwrap()
        .timestamps(|t: &i64| *t)
        .unwrap();
    let counts = env
        .from_source(source, WatermarkStrategy::monotonous(), "events")
        .key_by(|_: &i64| 0u8)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(60)))
        .aggregate_with(Count, |_, w, n| (w.start, n))
        .collect();
    let result = env.execute("watermarks").unwrap().wait().unwrap();
    assert_eq!(result.metrics.total_all("late_records_dropped"), 0);
    let mut counts = counts.take();
    counts.sort();
    let expected: Vec<(i64, u64)> = (0..17).map(|m| (m * 60_000, if m < 16 { 120 } else { 80 })).collect();
    assert_eq!(counts, expected);
}

/// Runs an unbounded job over `topic` at `parallelism` (from `restore`) for a while, then
/// stops it with a savepoint at `savepoint`; returns what it read.
fn run_until(
    kafka: &Service,
    topic: &str,
    parallelism: usize,
    restore: Option<&std::path::Path>,
    savepoint: &std::path::Path,
) -> Vec<String> {
    let env = StreamEnvironment::new();
    env.set_parallelism(parallelism);
    env.enable_checkpointing(CheckpointConfig::on_request());
    if let Some(path) = restore {
        env.restore_from(path);
    }
    let source = KafkaSource::builder().brokers(kafka.address()).topics([topic]).build().unwrap();
    let out = env.from_source(source, WatermarkStrategy::no_watermarks(), "lines").uid("lines").collect();
    let job = env.execute("rescale").unwrap();
    std::thread::sleep(Duration::from_millis(1_500));
    job.stop_with_savepoint(savepoint, false).unwrap();
    job.wait().unwrap();
    out.take()
}

#[test]
fn offsets_go_through_savepoints_and_restores_at_2_3_and_1() {
    let Some(kafka) = Service::kafka() else { return };
    create_topic(&kafka.address(), "rescale", 5);
    let dir = tempfile::tempdir().unwrap();
    produce(&kafka.address(), "rescale", &lines(500), Some(5));
    let first = run_until(&kafka, "rescale", 2, None, &dir.path().join("a"));
    produce(
        &kafka.address(),
        "rescale",
        &(500..900).map(|i| format!("line {i}").into_bytes()).collect::<Vec<_>>(),
        Some(5),
    );
    let second = run_until(&kafka, "rescale", 3, Some(&dir.path().join("a")), &dir.path().join("b"));
    produce(
        &kafka.address(),
        "rescale",
        &(900..1_200).map(|i| format!("line {i}").into_bytes()).collect::<Vec<_>>(),
        Some(5),
    );
    let third = run_until(&kafka, "rescale", 1, Some(&dir.path().join("b")), &dir.path().join("c"));
    assert_eq!(first.len(), 500, "the first run reads what was there");
    assert_eq!(second.len(), 400, "the second run reads only what came after the savepoint");
    assert_eq!(third.len(), 300);
    let all: BTreeSet<String> = first.into_iter().chain(second).chain(third).collect();
    assert_eq!(all, (0..1_200).map(|i| format!("line {i}")).collect());
}

#[test]
fn tansu_serves_the_source_too() {
    let Some(tansu) = Service::tansu() else { return };
    create_topic(&tansu.address(), "lines", 3);
    produce(&tansu.address(), "lines", &lines(300), Some(3));
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let source = KafkaSource::builder().brokers(tansu.address()).topics(["lines"]).build().unwrap();
    let out = env.from_source(source, WatermarkStrategy::no_watermarks(), "lines").collect();
    let job = env.execute("tansu").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while job.metrics().total("Source: lines", "records_in") < 300 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    job.cancel();
    let _ = job.wait();
    let got: BTreeSet<String> = out.take().into_iter().collect();
    assert_eq!(got, (0..300).map(|i| format!("line {i}")).collect());
}

/// Credentials the broker cannot accept (SCRAM, which noida-db does not offer).
#[test]
fn wrong_credentials_fail_with_a_clear_error() {
    let Some(kafka) = Service::kafka() else { return };
    create_topic(&kafka.address(), "secret", 1);
    let env = StreamEnvironment::new();
    let source = KafkaSource::builder()
        .brokers(kafka.address())
        .topics(["secret"])
        .property("security.protocol", "SASL_PLAINTEXT")
        .property("sasl.mechanisms", "SCRAM-SHA-512")
        .property("sasl.username", "eddy")
        .property("sasl.password", "wrong")
        .request_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let _ = env.from_source(source, WatermarkStrategy::no_watermarks(), "secret").collect();
    let started = std::time::Instant::now();
    let error = env.execute("credentials").err().expect("the broker refuses the client").to_string();
    assert!(error.contains("Source: secret") && error.contains(&kafka.address()), "{error}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

#[test]
fn a_broker_that_dies_mid_run_fails_the_source_instead_of_hanging() {
    let Some(mut kafka) = Service::kafka() else { return };
    create_topic(&kafka.address(), "fragile", 2);
    produce(&kafka.address(), "fragile", &lines(100), Some(2));
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let source = KafkaSource::builder()
        .brokers(kafka.address())
        .topics(["fragile"])
        .broker_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let _ = env.from_source(source, WatermarkStrategy::no_watermarks(), "fragile").collect();
    let job = env.execute("fragile").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while job.metrics().total("Source: fragile", "records_in") < 100 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    kafka.stop();
    let started = std::time::Instant::now();
    let error = job.wait().expect_err("the source fails once brokers are gone").to_string();
    assert!(error.contains("Source: fragile") && error.contains("no broker reachable"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
}

#[test]
fn a_short_outage_is_ridden_out_even_without_new_records() {
    // One partition: noida-db forgets topics when it restarts and auto-creates them with one.
    let Some(mut kafka) = Service::kafka() else { return };
    create_topic(&kafka.address(), "calm", 1);
    produce(&kafka.address(), "calm", &lines(10), None);
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let source = KafkaSource::builder()
        .brokers(kafka.address())
        .topics(["calm"])
        // Long enough for the restart itself on a loaded machine (noida-db starts in 1-3 s).
        .broker_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let _ = env.from_source(source, WatermarkStrategy::no_watermarks(), "calm").collect();
    let job = env.execute("calm").unwrap();
    std::thread::sleep(Duration::from_secs(1));
    kafka.restart(); // down, then up again on the same port
    std::thread::sleep(Duration::from_secs(10)); // twice the broker timeout, with nothing to read
    assert!(!job.is_finished(), "the source gave up although the broker came back: {:?}", job.wait().err());
    job.cancel();
    let _ = job.wait();
}

/// Waits until the job has read `n` records from source `name`.
fn wait_for(job: &JobHandle, name: &str, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while job.metrics().total(&format!("Source: {name}"), "records_in") < n {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {n} records read",
            job.metrics().total(&format!("Source: {name}"), "records_in")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn topics_matching_a_pattern_are_found_while_running() {
    let Some(kafka) = Service::kafka() else { return };
    create_topic(&kafka.address(), "events-a", 2);
    create_topic(&kafka.address(), "other", 1);
    produce(&kafka.address(), "events-a", &lines(50), Some(2));
    produce(&kafka.address(), "other", &lines(7), None);
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let source = KafkaSource::builder()
        .brokers(kafka.address())
        .topic_pattern("events-.*")
        .discovery_interval(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    let out = env.from_source(source, WatermarkStrategy::no_watermarks(), "events").collect();
    let job = env.execute("pattern").unwrap();
    wait_for(&job, "events", 50);
    create_topic(&kafka.address(), "events-b", 3);
    let later: Vec<Vec<u8>> = (50..80).map(|i| format!("line {i}").into_bytes()).collect();
    produce(&kafka.address(), "events-b", &later, Some(3));
    wait_for(&job, "events", 80);
    std::thread::sleep(Duration::from_millis(300));
    job.cancel();
    let _ = job.wait();
    let got: Vec<String> = out.take();
    assert_eq!(got.len(), 80, "'other' does not match, and nothing is read twice");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), (0..80).map(|i| format!("line {i}")).collect());
}

#[test]
fn latest_starts_after_what_is_there() {
    let Some(kafka) = Service::kafka() else { return };
    create_topic(&kafka.address(), "latest", 2);
    produce(&kafka.address(), "latest", &lines(20), Some(2));
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let source = KafkaSource::builder()
        .brokers(kafka.address())
        .topics(["latest"])
        .starting_offsets(StartingOffsets::Latest)
        .build()
        .unwrap();
    let out = env.from_source(source, WatermarkStrategy::no_watermarks(), "latest").collect();
    let job = env.execute("latest").unwrap();
    std::thread::sleep(Duration::from_millis(500)); // the reader has resolved its offsets
    let later: Vec<Vec<u8>> = (20..30).map(|i| format!("line {i}").into_bytes()).collect();
    produce(&kafka.address(), "latest", &later, Some(2));
    wait_for(&job, "latest", 10);
    std::thread::sleep(Duration::from_millis(300));
    job.cancel();
    let _ = job.wait();
    let got: BTreeSet<String> = out.take().into_iter().collect();
    assert_eq!(got, (20..30).map(|i| format!("line {i}")).collect());
}

#[test]
fn partitions_added_while_running_are_read_from_their_start() {
    use eddy_kafka::rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
    use eddy_kafka::rdkafka::client::DefaultClientContext;
    let Some(kafka) = Service::kafka() else { return };
    create_topic(&kafka.address(), "growing", 2);
    produce(&kafka.address(), "growing", &lines(40), Some(2));
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let source = KafkaSource::builder()
        .brokers(kafka.address())
        .topics(["growing"])
        .discovery_interval(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    let out = env.from_source(source, WatermarkStrategy::no_watermarks(), "growing").collect();
    let job = env.execute("growing").unwrap();
    wait_for(&job, "growing", 40);
    let admin: AdminClient<DefaultClientContext> =
        eddy_kafka::rdkafka::ClientConfig::new().set("bootstrap.servers", kafka.address()).create().unwrap();
    let grow = NewPartitions::new("growing", 4);
    let created = futures::executor::block_on(admin.create_partitions([&grow], &AdminOptions::new())).unwrap();
    created.into_iter().for_each(|r| r.map(drop).unwrap_or_else(|(t, e)| panic!("cannot grow {t}: {e}")));
    std::thread::sleep(Duration::from_millis(500));
    // Values 40.. go to partitions 2 and 3 only, which did not exist when the job started.
    let producer: eddy_kafka::rdkafka::producer::BaseProducer =
        eddy_kafka::rdkafka::ClientConfig::new().set("bootstrap.servers", kafka.address()).create().unwrap();
    for i in 40..60 {
        let value = format!("line {i}");
        let record =
            eddy_kafka::rdkafka::producer::BaseRecord::<(), str>::to("growing").payload(&value).partition(2 + i % 2);
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    eddy_kafka::rdkafka::producer::Producer::flush(&producer, Duration::from_secs(10)).unwrap();
    wait_for(&job, "growing", 60);
    std::thread::sleep(Duration::from_millis(300));
    job.cancel();
    let _ = job.wait();
    let got: Vec<String> = out.take();
    assert_eq!(got.len(), 60);
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), (0..60).map(|i| format!("line {i}")).collect());
}

#[test]
fn lag_per_partition_is_reported_and_drops_to_zero_when_caught_up() {
    let Some(kafka) = Service::kafka() else { return };
    create_topic(&kafka.address(), "lagging", 2);
    produce(&kafka.address(), "lagging", &lines(4_000), Some(2));
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let source = KafkaSource::builder().brokers(kafka.address()).topics(["lagging"]).build().unwrap();
    // A slow consumer (1 ms a record, chained to the source) keeps the reader behind.
    let _ = env
        .from_source(source, WatermarkStrategy::no_watermarks(), "lagging")
        .map(|line: String| {
            std::thread::sleep(Duration::from_millis(1));
            line
        })
        .collect();
    let job = env.execute("lag").unwrap();
    let lag = |metrics: &JobMetrics, partition: usize, name: &str| {
        metrics
            .subtasks
            .get(&("Source: lagging".to_string(), 0))
            .and_then(|c| c.get(&format!("lagging-{partition}.{name}")).copied())
    };
    let mut most_behind = 0;
    let mut typed_behind = Vec::new();
    while job.metrics().total("Source: lagging", "records_in") < 4_000 {
        let metrics = job.metrics();
        most_behind = most_behind.max((0..2).filter_map(|p| lag(&metrics, p, "lag_records")).max().unwrap_or(0));
        // The typed view of the same: records behind summed over the partitions, next to
        // what the source has read.
        let source = &metrics.operator("Source: lagging").expect("the source").subtasks[0];
        if let Some(behind) = source.lag_records {
            typed_behind.push((behind, source.records_in));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(most_behind > 0, "the reader was behind while it read, and said so");
    // Lag is reported about once a second, so it is at least what is left unread now and at
    // most that plus a second of reading (1 ms a record, with room for a slow machine).
    assert!(typed_behind.iter().any(|&(behind, _)| behind > 0), "{typed_behind:?}");
    for &(behind, read) in &typed_behind {
        let unread = 4_000 - read;
        assert!(behind >= unread && behind <= unread + 2_500, "{behind} behind with {read} read: {typed_behind:?}");
    }
    // librdkafka's statistics come every second, the reader reports lag every second.
    std::thread::sleep(Duration::from_millis(2_500));
    let metrics = job.metrics();
    job.cancel();
    let _ = job.wait();
    for partition in 0..2 {
        assert_eq!(lag(&metrics, partition, "records_in"), Some(2_000));
        let bytes: u64 = (0..4_000).filter(|i| i % 2 == partition).map(|i| format!("line {i}").len() as u64).sum();
        assert_eq!(lag(&metrics, partition, "bytes_in"), Some(bytes));
        assert_eq!(lag(&metrics, partition, "lag_records"), Some(0), "caught up");
        assert_eq!(lag(&metrics, partition, "lag_ms"), Some(0), "caught up");
    }
    let source = &metrics.operator("Source: lagging").unwrap().subtasks[0];
    assert_eq!((source.lag_records, source.lag_ms), (Some(0), Some(0)), "the typed view caught up too");
}
