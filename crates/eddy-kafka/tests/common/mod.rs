//! What the Kafka tests share: a broker on loopback, topics, a plain producer, and a
//! read_committed reader that collects what a topic holds.

#![allow(dead_code)] // Each test binary uses a different part.

use std::time::{Duration, Instant};

use eddy_kafka::rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use eddy_kafka::rdkafka::client::DefaultClientContext;
use eddy_kafka::rdkafka::config::ClientConfig;
use eddy_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use eddy_kafka::rdkafka::message::Message;
use eddy_kafka::rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use eddy_kafka::rdkafka::topic_partition_list::{Offset, TopicPartitionList};

pub use eddy_test_services::Service;

/// Creates `topic` with `partitions` partitions.
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("an admin client");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = futures::executor::block_on(admin.create_topics([&new], &AdminOptions::new())).expect("create");
    for result in results {
        result.unwrap_or_else(|(t, e)| panic!("cannot create topic {t}: {e}"));
    }
    // Wait until the metadata shows every partition.
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)).unwrap();
        if metadata.topics().first().is_some_and(|t| t.partitions().len() == partitions as usize) {
            return;
        }
        assert!(Instant::now() < deadline, "topic {topic} did not appear");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `values` to `topic`, value `i` to partition `i % partitions` (`None`: Kafka picks).
pub fn produce(brokers: &str, topic: &str, values: &[Vec<u8>], partitions: Option<i32>) {
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    for (i, value) in values.iter().enumerate() {
        let mut record = BaseRecord::<(), [u8]>::to(topic).payload(value.as_slice());
        if let Some(n) = partitions {
            record = record.partition(i as i32 % n);
        }
        send(&producer, record);
    }
    producer.flush(Duration::from_secs(30)).expect("every record delivered");
}

/// Writes `values` to partition `partition` of `topic`, in order.
pub fn produce_to(brokers: &str, topic: &str, partition: i32, values: &[Vec<u8>]) {
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    for value in values {
        send(&producer, BaseRecord::to(topic).payload(value.as_slice()).partition(partition));
    }
    producer.flush(Duration::from_secs(30)).expect("every record delivered");
}

/// Sends `record`, waiting while the producer's queue is full.
fn send(producer: &BaseProducer, record: BaseRecord<'_, (), [u8]>) {
    let mut record = Some(record);
    while let Some(r) = record.take() {
        if let Err((e, r)) = producer.send(r) {
            assert!(
                matches!(e.rdkafka_error_code(), Some(eddy_kafka::rdkafka::types::RDKafkaErrorCode::QueueFull)),
                "{e}"
            );
            producer.poll(Duration::from_millis(10));
            record = Some(r);
        }
    }
}

/// Every record value in `topic` a read_committed consumer sees, read until `expected` values
/// came or nothing new arrived for `quiet`.
pub fn read_committed(brokers: &str, topic: &str, expected: usize, quiet: Duration) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("isolation.level", "read_committed")
        .set("group.id", "eddy-test-reader")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)).unwrap();
    let mut list = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        list.add_partition_offset(topic, p.id(), Offset::Beginning).unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut values = Vec::new();
    let mut last = Instant::now();
    while values.len() < expected && last.elapsed() < quiet {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            last = Instant::now();
        }
    }
    values
}
