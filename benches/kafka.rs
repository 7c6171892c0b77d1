//! Kafka throughput: records/s of `source → key_by → 10 s tumbling window count → Kafka sink`
//! with a Kafka source at parallelism 1 and 2, the same job on a file source (same lines), and
//! a plain rdkafka consume loop over the same topic (the client's own limit), in one run
//! against a local broker (noida-db from `scripts/install-services.sh`).
//!
//! ```text
//! cargo bench --bench kafka                      # 10 M records of "<ts>\t<word>"
//! KAFKA_RECORDS=2e6 cargo bench --bench kafka
//! KAFKA_BROKERS=host:9092 cargo bench --bench kafka   # a real cluster instead of noida-db
//! ```

#[path = "common/machine.rs"]
mod machine;

use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use eddy::prelude::*;
use eddy_kafka::rdkafka::config::ClientConfig;
use eddy_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use eddy_kafka::rdkafka::message::Message;
use eddy_kafka::rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use eddy_kafka::rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use eddy_kafka::{KafkaRecord, KafkaSink, KafkaSinkExt, KafkaSource};

#[path = "../examples/common/allocator.rs"]
mod allocator;

/// Partitions of the input topic.
const PARTITIONS: i32 = 4;
/// Distinct words.
const WORDS: u64 = 100;

/// Record `i`: `<ts>\t<word>`, one millisecond of event time per record.
fn line(i: u64) -> String {
    format!("{}\tw{}", 1_700_000_000_000 + i, (i * 7_919) % WORDS)
}

fn parse(line: &str) -> Option<(i64, String)> {
    let (ts, word) = line.split_once('\t')?;
    Some((ts.parse().ok()?, word.to_string()))
}

/// The job on `lines` (already stamped with event time and watermarks); returns nothing, the
/// counts go to the `counts` topic.
fn job(lines: DataStream<(i64, String)>, brokers: &str) {
    let sink = KafkaSink::builder().brokers(brokers).topic("counts").build().expect("sink");
    lines
        .key_by(|l: &(i64, String)| l.1.clone())
        .window(TumblingEventTimeWindows::of(Duration::from_secs(10)))
        .aggregate_with(Count, |word, window, n| format!("{},{word},{n}", window.start))
        .sink_to_kafka(sink);
}

fn kafka_run(brokers: &str, parallelism: usize, records: u64) -> f64 {
    let env = StreamEnvironment::new();
    env.set_parallelism(parallelism);
    let source = KafkaSource::builder()
        .brokers(brokers)
        .topics(["words"])
        .bounded()
        .deserializer(|r: &KafkaRecord<'_>| -> Result<(i64, String), BoxError> {
            parse(std::str::from_utf8(r.payload().unwrap_or_default())?).ok_or_else(|| "not <ts>\\t<word>".into())
        })
        .build()
        .expect("source")
        .timestamps(|l: &(i64, String)| l.0)
        .expect("timestamps");
    job(env.from_source(source, WatermarkStrategy::monotonous(), "words"), brokers);
    let started = Instant::now();
    let result = env.execute("kafka bench").expect("start").wait().expect("run");
    assert_eq!(result.metrics.total("Source: words", "records_in"), records);
    records as f64 / started.elapsed().as_secs_f64()
}

fn file_run(path: &std::path::Path, brokers: &str, parallelism: usize, records: u64) -> f64 {
    let env = StreamEnvironment::new();
    env.set_parallelism(parallelism);
    let lines = env
        .read_text_file(path)
        .flat_map(|l: String| parse(&l))
        .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |l: &(i64, String)| l.0);
    job(lines, brokers);
    let started = Instant::now();
    let result = env.execute("file bench").expect("start").wait().expect("run");
    assert_eq!(result.metrics.total("Source: TextFile", "records_in"), records);
    records as f64 / started.elapsed().as_secs_f64()
}

/// rdkafka alone: every record of the topic read once, its bytes touched.
fn consume_loop(brokers: &str, records: u64) -> f64 {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", "bench").create().expect("consumer");
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset("words", p, Offset::Beginning).unwrap();
    }
    consumer.assign(&list).unwrap();
    let started = Instant::now();
    let (mut seen, mut bytes) = (0u64, 0usize);
    let mut last = Instant::now();
    while seen < records {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            bytes += m.payload().map_or(0, <[u8]>::len);
            seen += 1;
            last = Instant::now();
        }
        assert!(last.elapsed() < Duration::from_secs(60), "the broker stopped serving after {seen} records");
    }
    assert!(bytes > 0);
    records as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    allocator::return_freed_memory_promptly();
    let records = std::env::var("KAFKA_RECORDS").ok().and_then(|n| n.parse::<f64>().ok()).unwrap_or(1e7) as u64;
    let local = match std::env::var("KAFKA_BROKERS") {
        Ok(_) => None,
        Err(_) => Some(eddy_test_services::Service::kafka().expect("noida-db: run scripts/install-services.sh")),
    };
    let brokers = std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| local.as_ref().expect("started").address());
    let admin = ClientConfig::new().set("bootstrap.servers", &brokers).clone();
    create_topics(&admin, &[("words", PARTITIONS), ("counts", 1)]);

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("words.tsv");
    let started = Instant::now();
    let producer: ThreadedProducer<_> =
        admin.clone().set("linger.ms", "50").set("batch.num.messages", "100000").create().expect("producer");
    let mut out = BufWriter::new(std::fs::File::create(&file).expect("file"));
    for i in 0..records {
        let text = line(i);
        writeln!(out, "{text}").expect("write");
        let partition = (i % PARTITIONS as u64) as i32;
        let mut record = BaseRecord::<(), str>::to("words").payload(text.as_str()).partition(partition);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    out.flush().expect("flush");
    producer.flush(Duration::from_secs(600)).expect("every record delivered");
    let load = started.elapsed();

    println!("# eddy Kafka benchmark: {records} records of \"<ts>\\t<word>\" in {PARTITIONS} partitions at {brokers}");
    println!("# machine: {}", machine::machine());
    println!(
        "# loading the topic took {:.1} s ({:.0} records/s)",
        load.as_secs_f64(),
        records as f64 / load.as_secs_f64()
    );
    println!("{:<34} {:>14}", "configuration", "records/s");
    println!("{:<34} {:>14.0}", "rdkafka consume loop", consume_loop(&brokers, records));
    for parallelism in [1, 2] {
        println!("{:<34} {:>14.0}", format!("Kafka source p={parallelism}"), kafka_run(&brokers, parallelism, records));
        println!(
            "{:<34} {:>14.0}",
            format!("file source p={parallelism}"),
            file_run(&file, &brokers, parallelism, records)
        );
    }
}

fn create_topics(config: &ClientConfig, topics: &[(&str, i32)]) {
    use eddy_kafka::rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = config.create().expect("admin");
    let new: Vec<NewTopic> = topics.iter().map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1))).collect();
    for result in futures::executor::block_on(admin.create_topics(&new, &AdminOptions::new())).expect("create") {
        result.expect("topic created");
    }
    std::thread::sleep(Duration::from_millis(500));
}
