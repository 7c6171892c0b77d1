//! The replayer's output into a Kafka topic (taxi_replay --kafka-brokers B --topic T).

use std::io::{self, Write};
use std::time::Duration;

use anyhow::{bail, Context};
use eddy_kafka::rdkafka::config::ClientConfig;
use eddy_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use eddy_kafka::rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

/// The replayer's output as Kafka records: each line is one record value; a watermark event
/// goes to every partition, so each partition's watermark moves with its trips.
pub struct KafkaLines {
    producer: ThreadedProducer<eddy_kafka::rdkafka::producer::DefaultProducerContext>,
    topic: String,
    partitions: i32,
    next: i32,
    line: Vec<u8>,
}

impl KafkaLines {
    /// A writer into `topic` at `brokers` (the topic must exist).
    pub fn open(brokers: &str, topic: &str) -> anyhow::Result<Self> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", brokers).set("linger.ms", "20");
        let consumer: BaseConsumer = config.clone().set("group.id", "eddy-taxi-replay").create()?;
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .with_context(|| format!("cannot reach Kafka at {brokers}"))?;
        let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len()) as i32;
        if partitions == 0 {
            bail!("topic '{topic}' does not exist at {brokers}: create it first");
        }
        let producer = config.create().with_context(|| format!("cannot create a producer for {brokers}"))?;
        Ok(KafkaLines { producer, topic: topic.to_string(), partitions, next: 0, line: Vec::new() })
    }

    fn send(&mut self, partition: i32) -> io::Result<()> {
        let value = std::mem::take(&mut self.line);
        loop {
            let record = BaseRecord::<(), [u8]>::to(&self.topic).payload(&value[..]).partition(partition);
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((e, _))
                    if e.rdkafka_error_code() == Some(eddy_kafka::rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err((e, _)) => return Err(io::Error::other(e)),
            }
        }
    }

    fn send_line(&mut self) -> io::Result<()> {
        if self.line.is_empty() {
            return Ok(());
        }
        // The replayer writes its own watermark events, tag first.
        if self.line.starts_with(br#"{"type":"watermark""#) {
            let line = std::mem::take(&mut self.line);
            for partition in 0..self.partitions {
                self.line.clone_from(&line);
                self.send(partition)?;
            }
            return Ok(());
        }
        let partition = self.next;
        self.next = (self.next + 1) % self.partitions;
        self.send(partition)
    }
}

impl Write for KafkaLines {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        for &b in bytes {
            if b == b'\n' {
                self.send_line()?;
            } else {
                self.line.push(b);
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_line()?;
        self.producer.flush(Duration::from_secs(60)).map_err(io::Error::other)
    }
}
