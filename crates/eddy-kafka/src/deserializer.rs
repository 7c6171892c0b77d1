//! Deserializers: how a Kafka record becomes a value of the stream. A record one cannot read
//! goes to the source's dead-letter output with its topic, partition, offset and the reason.

use std::marker::PhantomData;

use eddy_core::BoxError;
use eddy_runtime::topic::TopicRecord;
use rdkafka::message::{BorrowedHeaders, BorrowedMessage, Headers, Message};
use serde::de::DeserializeOwned;

/// A record as read from Kafka, borrowed from the client's buffer (or, in a distributed task,
/// from the record the task hands its source: [`eddy_runtime::topic`]).
pub struct KafkaRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<&'a [u8]>,
    payload: Option<&'a [u8]>,
    headers: Option<&'a BorrowedHeaders>,
}

impl<'a> KafkaRecord<'a> {
    pub(crate) fn new(message: &'a BorrowedMessage<'a>) -> Self {
        KafkaRecord {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp: message.timestamp().to_millis(),
            key: message.key(),
            payload: message.payload(),
            headers: message.headers(),
        }
    }

    /// `record` of `topic`, as a distributed task hands it over (without headers: the task
    /// does not pass them on).
    pub(crate) fn of_topic(topic: &'a str, record: &TopicRecord<'a>) -> Self {
        KafkaRecord {
            topic,
            partition: record.partition,
            offset: record.offset,
            timestamp: record.timestamp,
            key: record.key,
            payload: record.payload,
            headers: None,
        }
    }

    /// Its topic.
    pub fn topic(&self) -> &str {
        self.topic
    }

    /// Its partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Its offset.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Its timestamp (create or log-append time), ms since the epoch, if it has one.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// Its key.
    pub fn key(&self) -> Option<&[u8]> {
        self.key
    }

    /// Its value (`None` for a tombstone).
    pub fn payload(&self) -> Option<&[u8]> {
        self.payload
    }

    /// The value of its first header named `name` (always `None` in a distributed task,
    /// which does not pass headers on).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers?.iter().find(|h| h.key == name).and_then(|h| h.value)
    }

    /// Its size as a source's `bytes_in` counts it: key and value.
    pub(crate) fn len(&self) -> usize {
        self.payload.map_or(0, <[u8]>::len) + self.key.map_or(0, <[u8]>::len)
    }
}

/// Turns a Kafka record into a value; an `Err` makes the record a dead letter.
pub trait Deserializer<T>: Send + Sync + 'static {
    /// The value of `record`.
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<T, BoxError>;
}

impl<T, F> Deserializer<T> for F
where
    F: Fn(&KafkaRecord<'_>) -> Result<T, BoxError> + Send + Sync + 'static,
{
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<T, BoxError> {
        self(record)
    }
}

/// The value's bytes as they are (a tombstone is empty).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bytes;

impl Deserializer<Vec<u8>> for Bytes {
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<Vec<u8>, BoxError> {
        Ok(record.payload().unwrap_or_default().to_vec())
    }
}

/// The value as UTF-8 text; anything else is a dead letter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Utf8;

impl Deserializer<String> for Utf8 {
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<String, BoxError> {
        let payload = record.payload().ok_or("the record has no value (a tombstone)")?;
        Ok(std::str::from_utf8(payload).map_err(|e| format!("the value is not UTF-8: {e}"))?.to_owned())
    }
}

/// The value as a JSON document of type `T` (serde); anything else is a dead letter.
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T> Json<T> {
    /// A JSON deserializer for `T`.
    pub fn new() -> Self {
        Json(PhantomData)
    }
}

impl<T> Default for Json<T> {
    fn default() -> Self {
        Json::new()
    }
}

impl<T: DeserializeOwned + 'static> Deserializer<T> for Json<T> {
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<T, BoxError> {
        let payload = record.payload().ok_or("the record has no value (a tombstone)")?;
        Ok(serde_json::from_slice(payload).map_err(|e| format!("the value is not the JSON expected: {e}"))?)
    }
}
