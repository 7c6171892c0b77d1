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

use eddy_core::time::NO_TIMESTAMP;
use eddy_core::{BoxError, Timestamp};
use eddy_stream::{Data, DataStream, StreamSink};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use crate::client::{Context, Settings};
use crate::error::{broker, KafkaError};
use crate::serializer::{Serializer, Text};
use crate::transaction::{KafkaCommitter, TransactionalWriter};
use crate::writer::KafkaWriter;

/// What the sink promises about each record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeliveryGuarantee {
    /// Fire and forget.
    None,
    /// Flush at every checkpoint; duplicates after a restart.
    #[default]
    AtLeastOnce,
    /// Kafka transactions committed with checkpoints; needs checkpointing.
    ExactlyOnce,
}

type KeyFn<T> = Arc<dyn Fn(&T) -> Option<Vec<u8>> + Send + Sync>;
type TopicFn<T> = Arc<dyn Fn(&T) -> String + Send + Sync>;
type PartitionFn<T> = Arc<dyn Fn(&T) -> Option<i32> + Send + Sync>;
type HeadersFn<T> = Arc<dyn Fn(&T) -> Vec<(String, Vec<u8>)> + Send + Sync>;

/// Everything a sink subtask needs; shared by all of them.
pub(crate) struct SinkSpec<T> {
    pub(crate) settings: Settings,
    pub(crate) topic: Option<String>,
    pub(crate) topic_of: Option<TopicFn<T>>,
    pub(crate) serializer: Box<dyn Serializer<T>>,
    pub(crate) key: Option<KeyFn<T>>,
    pub(crate) partition: Option<PartitionFn<T>>,
    pub(crate) headers: Option<HeadersFn<T>>,
    pub(crate) guarantee: DeliveryGuarantee,
    pub(crate) transactional_id_prefix: String,
    /// How long a flush or a transaction step may take.
    pub(crate) timeout: Duration,
    /// Whether a record's Kafka timestamp is its event time (else the producer's clock).
    pub(crate) event_time_timestamps: bool,
}

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

impl<T: 'static> SinkSpec<T> {
    /// A producer with eddy's defaults and `extra` settings.
    pub(crate) fn producer(&self, extra: &[(&str, &str)]) -> Result<(ThreadedProducer<Context>, Context), KafkaError> {
        let context = Context::default();
        let mut defaults = vec![("enable.idempotence", "true"), ("linger.ms", "5"), ("statistics.interval.ms", "1000")];
        defaults.extend_from_slice(extra);
        let producer = self
            .settings
            .config(&defaults)
            .create_with_context(context.clone())
            .map_err(|e| broker("sink", &self.settings.brokers, format!("cannot create the producer: {e}")))?;
        Ok((producer, context))
    }

    /// The record `value` becomes: topic, partition, key, payload, headers, timestamp.
    pub(crate) fn record(&self, value: &T, timestamp: Timestamp) -> Result<OutRecord, BoxError> {
        Ok(OutRecord {
            topic: match &self.topic_of {
                Some(topic_of) => topic_of(value),
                None => self.topic.clone().unwrap_or_default(),
            },
            partition: self.partition.as_ref().and_then(|p| p(value)),
            key: self.key.as_ref().and_then(|key| key(value)),
            payload: self.serializer.serialize(value)?,
            headers: self.headers.as_ref().map(|h| h(value)).unwrap_or_default(),
            timestamp: (self.event_time_timestamps && timestamp != NO_TIMESTAMP).then_some(timestamp),
        })
    }

    /// Sends `record` (waiting while the producer's queue is full).
    pub(crate) fn send(&self, producer: &ThreadedProducer<Context>, record: &OutRecord) -> Result<(), BoxError> {
        let mut base = BaseRecord::<Vec<u8>, Vec<u8>>::to(&record.topic).payload(&record.payload);
        if let Some(key) = &record.key {
            base = base.key(key);
        }
        if let Some(partition) = record.partition {
            base = base.partition(partition);
        }
        if let Some(timestamp) = record.timestamp {
            base = base.timestamp(timestamp);
        }
        if !record.headers.is_empty() {
            let mut owned = OwnedHeaders::new();
            for (name, value) in &record.headers {
                owned = owned.insert(Header { key: name, value: Some(value) });
            }
            base = base.headers(owned);
        }
        let started = std::time::Instant::now();
        loop {
            match producer.send(base) {
                Ok(()) => return Ok(()),
                Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    if started.elapsed() > self.timeout {
                        return Err(format!("the producer's queue stayed full for {:?}: {e}", self.timeout).into());
                    }
                    base = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(format!("cannot send to topic '{}': {e}", record.topic).into()),
            }
        }
    }
}

/// A record as the sink sends it (and, for exactly-once, as a checkpoint keeps it until
/// its transaction is committed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutRecord {
    /// The topic.
    pub topic: String,
    /// The partition, when the sink chose one.
    pub partition: Option<i32>,
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value.
    pub payload: Vec<u8>,
    /// The headers.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The record timestamp, when the sink sets one.
    pub timestamp: Option<i64>,
}

/// Adds [`KafkaSinkExt::sink_to_kafka`] to every stream.
pub trait KafkaSinkExt<T> {
    /// Writes every record to Kafka as `sink` says. Give the sink a `uid` in a checkpointed
    /// job; exactly-once needs checkpointing (without it, records become visible when a
    /// bounded input ends).
    fn sink_to_kafka(&self, sink: KafkaSink<T>) -> StreamSink;
}

impl<T: Data> KafkaSinkExt<T> for DataStream<T> {
    fn sink_to_kafka(&self, sink: KafkaSink<T>) -> StreamSink {
        let spec = sink.spec;
        match spec.guarantee {
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
        }
    }
}
