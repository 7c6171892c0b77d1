//! How a record's bytes become a value: raw bytes, UTF-8 text, JSON (serde), or a closure.
//!
//! A deserializer that fails does not stop the job: the reader sends the record to the
//! dead-letter output (`DataStream::dead_letters::<RawRecord>()`) with the stream, shard and
//! sequence number, and the reason.
//!
//! ```
//! use eddy_kinesis::{Deserializer, Json, KinesisRecord};
//!
//! #[derive(serde::Deserialize, Debug, PartialEq)]
//! struct Order { id: u32 }
//!
//! let record = |data: &'static [u8]| KinesisRecord {
//!     stream: "orders", shard: "shardId-000000000000", sequence_number: "1",
//!     partition_key: "k", data, arrival_ms: 0,
//! };
//! let json = Json::<Order>::new();
//! assert_eq!(json.deserialize(&record(br#"{"id":7}"#)).unwrap(), Order { id: 7 });
//! assert!(json.deserialize(&record(b"not json")).is_err());
//! ```

use std::marker::PhantomData;

use eddy_core::BoxError;
use serde::de::DeserializeOwned;

use crate::record::KinesisRecord;

/// Turns a record into a value, or says why it cannot.
pub trait Deserializer<T>: Send + Sync + 'static {
    /// The value of `record`; an `Err` sends the record to the dead letters with its text.
    fn deserialize(&self, record: &KinesisRecord<'_>) -> Result<T, BoxError>;
}

/// The payload as it is (`Vec<u8>`); never fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bytes;

impl Deserializer<Vec<u8>> for Bytes {
    fn deserialize(&self, record: &KinesisRecord<'_>) -> Result<Vec<u8>, BoxError> {
        Ok(record.data.to_vec())
    }
}

/// The payload as UTF-8 text; invalid UTF-8 is a dead letter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Utf8;

impl Deserializer<String> for Utf8 {
    fn deserialize(&self, record: &KinesisRecord<'_>) -> Result<String, BoxError> {
        Ok(std::str::from_utf8(record.data).map_err(|e| format!("not UTF-8: {e}"))?.to_string())
    }
}

/// The payload as JSON, read with serde into `T`; a document that does not fit is a dead letter.
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T> Json<T> {
    /// A JSON deserializer into `T`.
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
    fn deserialize(&self, record: &KinesisRecord<'_>) -> Result<T, BoxError> {
        serde_json::from_slice(record.data)
            .map_err(|e| format!("not a JSON document of the expected shape: {e}").into())
    }
}

/// A user closure as a deserializer (see `KinesisSourceBuilder::deserialize_with`); it sees
/// the whole record (partition key, sequence number, arrival time), not only the payload.
pub struct FnDeserializer<F>(pub F);

impl<T, F> Deserializer<T> for FnDeserializer<F>
where
    F: Fn(&KinesisRecord<'_>) -> Result<T, BoxError> + Send + Sync + 'static,
{
    fn deserialize(&self, record: &KinesisRecord<'_>) -> Result<T, BoxError> {
        (self.0)(record)
    }
}
