//! The Kafka sink: where each value goes (topic, key, partition, headers), how it is
//! serialized, and with which delivery guarantee.
//!
//! | guarantee | how | after a failure |
//! |---|---|---|
//! | [`DeliveryGuarantee::None`] | records are sent, never waited for | records in flight may be lost |
//! | [`DeliveryGuarantee::AtLeastOnce`] | every checkpoint waits until all records are acknowledged; a delivery error fails the checkpoint (the job restarts) | records since the last checkpoint are written again (duplicates) |
//! | [`DeliveryGuarantee::ExactlyOnce`] | one Kafka transaction per subtask and checkpoint, committed when the checkpoint completes ([`crate::transaction`]) | `read_committed` consumers see every record once |

use std::sync::Arc;
use std::time::Duration;

use eddy_stream::{Data, DataStream, StreamSink};

use crate::client::Settings;
use crate::error::KafkaError;
use crate::serializer::{Serializer, Text};
use crate::sink_spec::{DeliveryGuarantee, HeadersFn, KeyFn, PartitionFn, SinkSpec, TopicFn};
use crate::topic_writer::KafkaTopicWriters;
use crate::transaction::{KafkaCommitter, TransactionalWriter};
use crate::writer::KafkaWriter;

/// A Kafka sink; add it with [`KafkaSinkExt::sink_to_kafka`].
pub struct KafkaSink<T> {
    pub(crate) spec: Arc<SinkSpec<T>>,
}

impl<T> KafkaSink<T> {
    /// A builder (at-least-once, values as their `Display` text, by default).
    pub fn builder() -> KafkaSinkBuilder<T, Text> {
        KafkaSinkBuilder {
            settings: Settings::default(),
            topic: None,
            topic_of: None,
            serializer: Text,
            key: None,
            partition: None,
            headers: None,
            guarantee: DeliveryGuarantee::AtLeastOnce,
            transactional_id_prefix: None,
            timeout: Duration::from_secs(30),
            event_time_timestamps: false,
        }
    }
}

/// Builds a [`KafkaSink`] for values `T` with serializer `S`.
pub struct KafkaSinkBuilder<T, S> {
    settings: Settings,
    topic: Option<String>,
    topic_of: Option<TopicFn<T>>,
    serializer: S,
    key: Option<KeyFn<T>>,
    partition: Option<PartitionFn<T>>,
    headers: Option<HeadersFn<T>>,
    guarantee: DeliveryGuarantee,
    transactional_id_prefix: Option<String>,
    timeout: Duration,
    event_time_timestamps: bool,
}

impl<T, S> KafkaSinkBuilder<T, S> {
    /// The bootstrap servers, `host:port[,host:port…]`.
    pub fn brokers(mut self, brokers: impl Into<String>) -> Self {
        self.settings.brokers = brokers.into();
        self
    }

    /// The topic every record goes to (unless [`Self::topic_from`] says otherwise).
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = Some(topic.into());
        self
    }

    /// Takes each record's topic from its value.
    pub fn topic_from(mut self, topic: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        self.topic_of = Some(Arc::new(topic));
        self
    }

    /// How values become record values (default: their `Display` text); see
    /// [`crate::serializer`].
    pub fn serializer<E>(self, serializer: E) -> KafkaSinkBuilder<T, E> {
        KafkaSinkBuilder {
            settings: self.settings,
            topic: self.topic,
            topic_of: self.topic_of,
            serializer,
            key: self.key,
            partition: self.partition,
            headers: self.headers,
            guarantee: self.guarantee,
            transactional_id_prefix: self.transactional_id_prefix,
            timeout: self.timeout,
            event_time_timestamps: self.event_time_timestamps,
        }
    }

    /// Stamps each record with its event time instead of the time it is produced. Off by
    /// default: brokers delete by record timestamp (`retention.ms`), so results about last
    /// year would be deleted as soon as they are written.
    pub fn event_time_timestamps(mut self, on: bool) -> Self {
        self.event_time_timestamps = on;
        self
    }

    /// Each record's key (Kafka's default partitioner hashes it).
    pub fn key(mut self, key: impl Fn(&T) -> Option<Vec<u8>> + Send + Sync + 'static) -> Self {
        self.key = Some(Arc::new(key));
        self
    }

    /// Each record's partition; `None` leaves it to Kafka's partitioner (by key).
    pub fn partition(mut self, partition: impl Fn(&T) -> Option<i32> + Send + Sync + 'static) -> Self {
        self.partition = Some(Arc::new(partition));
        self
    }

    /// Each record's headers.
    pub fn headers(mut self, headers: impl Fn(&T) -> Vec<(String, Vec<u8>)> + Send + Sync + 'static) -> Self {
        self.headers = Some(Arc::new(headers));
        self
    }

    /// The delivery guarantee (default: at least once).
    pub fn delivery(mut self, guarantee: DeliveryGuarantee) -> Self {
        self.guarantee = guarantee;
        self
    }

    /// The prefix of the sink's `transactional.id`s (exactly-once): unique per sink across
    /// every job that writes to the same cluster, and the same when a job is restored.
    pub fn transactional_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.transactional_id_prefix = Some(prefix.into());
        self
    }

    /// How long a flush or a transaction step may take before the sink fails (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets any librdkafka producer property (`compression.type`, `linger.ms`,
    /// `transaction.timeout.ms`, security settings, …); it wins over eddy's defaults.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.properties.push((key.into(), value.into()));
        self
    }

    /// The sink, after checking the settings.
    pub fn build(self) -> Result<KafkaSink<T>, KafkaError>
    where
        S: Serializer<T>,
    {
        let config = |message: &str| KafkaError::Config { connector: "sink", message: message.into() };
        if self.settings.brokers.trim().is_empty() {
            return Err(config("no brokers: call .brokers(\"host:port\")"));
        }
        if self.topic.is_none() && self.topic_of.is_none() {
            return Err(config("no topic: call .topic(..) or .topic_from(..)"));
        }
        let prefix = match (&self.guarantee, self.transactional_id_prefix) {
            (DeliveryGuarantee::ExactlyOnce, None) => {
                return Err(config(
                    "exactly-once needs a transactional id prefix, unique per sink and stable across restores: \
                     call .transactional_id_prefix(..)",
                ))
            }
            (_, prefix) => prefix.unwrap_or_default(),
        };
        Ok(KafkaSink {
            spec: Arc::new(SinkSpec {
                settings: self.settings,
                topic: self.topic,
                topic_of: self.topic_of,
                serializer: Box::new(self.serializer),
                key: self.key,
                partition: self.partition,
                headers: self.headers,
                guarantee: self.guarantee,
                transactional_id_prefix: prefix,
                timeout: self.timeout,
                event_time_timestamps: self.event_time_timestamps,
            }),
        })
    }
}

/// Adds [`KafkaSinkExt::sink_to_kafka`] to every stream.
pub trait KafkaSinkExt<T> {
    /// Writes every record to Kafka as `sink` says. Give the sink a `uid` in a checkpointed
    /// job; exactly-once needs checkpointing (without it, records become visible when a
    /// bounded input ends).
    ///
    /// A sink of one topic without headers also gets the mark that lets a distributed job
    /// write its records in each task's transaction ([`crate::topic_writer`]); one-process
    /// runs ignore it.
    fn sink_to_kafka(&self, sink: KafkaSink<T>) -> StreamSink;
}

impl<T: Data> KafkaSinkExt<T> for DataStream<T> {
    fn sink_to_kafka(&self, sink: KafkaSink<T>) -> StreamSink {
        let spec = sink.spec;
        let mark = KafkaTopicWriters::mark(spec.clone());
        let sink = match spec.guarantee {
            DeliveryGuarantee::ExactlyOnce => {
                let committer = KafkaCommitter::new(spec.clone());
                let registry = committer.registry();
                self.add_two_phase_sink(
                    "Kafka",
                    move |subtask, _| TransactionalWriter::new(spec.clone(), registry.clone(), subtask),
                    committer,
                )
            }
            _ => self.add_sink("Kafka", move |_, _| Ok(KafkaWriter::open(spec.clone())?)),
        };
        match mark {
            Some(topic) => sink.write_to_topic(topic),
            None => sink,
        }
    }
}
