//! Deserializers: how a Kafka record becomes a value of the stream. A record one cannot read
//! goes to the source's dead-letter output with its topic, partition, offset and the reason.

use std::marker::PhantomData;

use eddy_core::BoxError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use serde::de::DeserializeOwned;

/// A record as read from Kafka, borrowed from the client's buffer.
pub struct KafkaRecord<'a> {
    message: &'a BorrowedMessage<'a>,
}

impl<'a> KafkaRecord<'a> {
    pub(crate) fn new(message: &'a BorrowedMessage<'a>) -> Self {
        KafkaRecord { message }
    }

    /// Its topic.
    pub fn topic(&self) -> &str {
        self.message.topic()
    }

    /// Its partition.
    pub fn partition(&self) -> i32 {
        self.message.partition()
    }

    /// Its offset.
    pub fn offset(&self) -> i64 {
        self.message.offset()
    }

    /// Its timestamp (create or log-append time), ms since the epoch, if it has one.
    pub fn timestamp(&self) -> Option<i64> {
        self.message.timestamp().to_millis()
    }

    /// Its key.
    pub fn key(&self) -> Option<&[u8]> {
        self.message.key()
    }

    /// Its value (`None` for a tombstone).
    pub fn payload(&self) -> Option<&[u8]> {
        self.message.payload()
    }

    /// The value of its first header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.message.headers()?.iter().find(|h| h.key == name).and_then(|h| h.value)
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
