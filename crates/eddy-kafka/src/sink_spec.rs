//! What a Kafka sink writes and how, as its subtasks share it: the delivery guarantee, the
//! topic, key, partition and headers of each record, the serializer, and the producer that
//! sends records. [`crate::sink`] builds it; the plain writer and the transactional one
//! follow it.

use std::sync::Arc;
use std::time::Duration;

use eddy_core::time::NO_TIMESTAMP;
use eddy_core::{BoxError, Timestamp};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use crate::client::{Context, Settings};
use crate::error::{broker, KafkaError};
use crate::serializer::Serializer;

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

pub(crate) type KeyFn<T> = Arc<dyn Fn(&T) -> Option<Vec<u8>> + Send + Sync>;
pub(crate) type TopicFn<T> = Arc<dyn Fn(&T) -> String + Send + Sync>;
pub(crate) type PartitionFn<T> = Arc<dyn Fn(&T) -> Option<i32> + Send + Sync>;
pub(crate) type HeadersFn<T> = Arc<dyn Fn(&T) -> Vec<(String, Vec<u8>)> + Send + Sync>;

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
            partition: self.partition_of(value),
            key: self.key_of(value),
            payload: self.serializer.serialize(value)?,
            headers: self.headers.as_ref().map(|h| h(value)).unwrap_or_default(),
            timestamp: self.timestamp_of(timestamp),
        })
    }

    /// The partition `value` goes to, when the sink chooses one.
    pub(crate) fn partition_of(&self, value: &T) -> Option<i32> {
        self.partition.as_ref().and_then(|p| p(value))
    }

    /// The key of `value`'s record.
    pub(crate) fn key_of(&self, value: &T) -> Option<Vec<u8>> {
        self.key.as_ref().and_then(|key| key(value))
    }

    /// The timestamp of a record of event time `timestamp`: that event time when the sink
    /// stamps event time, else none (the producer's clock).
    pub(crate) fn timestamp_of(&self, timestamp: Timestamp) -> Option<i64> {
        (self.event_time_timestamps && timestamp != NO_TIMESTAMP).then_some(timestamp)
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
