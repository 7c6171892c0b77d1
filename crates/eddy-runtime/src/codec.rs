//! Records as bytes, for the edges of a job that may cross processes.
//!
//! Inside one process records move between threads as Rust values: a channel carries
//! `Vec<Record<T>>` batches and nothing is ever encoded. An edge that a distributed job cuts
//! (a `key_by` or a `rebalance` between two sub-topologies, see
//! [`sub_topology`](crate::sub_topology)) carries its records through a Kafka topic instead,
//! so it needs their bytes — as Kafka Streams asks for a `Serde` at every `repartition()`.
//!
//! Two layers:
//!
//! - a [`Codec<T>`] turns a value into bytes and back. Users implement it for a format of
//!   their own (Arrow, Protobuf, JSON); eddy-stream has one for every serde type (bincode);
//! - a [`RecordCodec<T>`] frames a whole [`Record<T>`]: its event timestamp (8 bytes, little
//!   endian) and then the value's bytes, so a reader can see a record's time without
//!   decoding its value. Bytes that do not decode — too short, a timestamp outside the range
//!   records use, a value the codec refuses, bytes left over — are a [`CodecError`], never a
//!   panic.
//!
//! The job graph keeps a record codec with its record type erased
//! ([`ErasedRecordCodec`]), on the edge it belongs to
//! ([`Repartition`](crate::repartition::Repartition)); the typed code that builds that
//! edge's ends gets it back with [`Repartition::codec_of`](crate::repartition::Repartition::codec_of).
//!
//! ```
//! use std::sync::Arc;
//! use eddy_core::{BoxError, Record};
//! use eddy_runtime::codec::{Codec, RecordCodec};
//!
//! /// UTF-8 text, the bytes as they are.
//! struct Utf8;
//! impl Codec<String> for Utf8 {
//!     fn encode(&self, value: &String, out: &mut Vec<u8>) -> Result<(), BoxError> {
//!         out.extend_from_slice(value.as_bytes());
//!         Ok(())
//!     }
//!     fn decode(&self, bytes: &[u8]) -> Result<String, BoxError> {
//!         Ok(std::str::from_utf8(bytes)?.to_string())
//!     }
//! }
//!
//! let codec = RecordCodec::new(Arc::new(Utf8));
//! let mut bytes = Vec::new();
//! codec.encode(&Record::new("word".to_string(), 1_000), &mut bytes).unwrap();
//! assert_eq!(codec.decode(&bytes).unwrap(), Record::new("word".to_string(), 1_000));
//! assert!(codec.decode(&bytes[..3]).is_err()); // too short for a timestamp: an error
//! ```

use std::any::Any;
use std::sync::Arc;

use eddy_core::time::{MAX_TIMESTAMP, MIN_TIMESTAMP, NO_TIMESTAMP};
use eddy_core::{BoxError, Record, Timestamp};

/// How a value of type `T` becomes bytes and back (Kafka Streams' `Serde`).
///
/// `decode` gets exactly the bytes one `encode` wrote; it must return an error, not panic,
/// for bytes it cannot read, and should refuse bytes left over.
pub trait Codec<T>: Send + Sync + 'static {
    /// Appends the bytes of `value` to `out`.
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), BoxError>;
    /// The value that `bytes` (all of them) encode.
    fn decode(&self, bytes: &[u8]) -> Result<T, BoxError>;
}

/// Bytes that are not a record of the codec's type, or a value its codec cannot encode.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Fewer bytes than a timestamp takes.
    #[error(
        "a record needs at least {TIMESTAMP_BYTES} bytes (its timestamp); got {0}: a truncated or foreign message"
    )]
    Truncated(usize),
    /// A timestamp that no record carries.
    #[error(
        "timestamp {0} is outside the range records use ({MIN_TIMESTAMP}..={MAX_TIMESTAMP}, or none): \
         bytes not written by a record codec"
    )]
    Timestamp(Timestamp),
    /// The value codec refused to encode a value.
    #[error("cannot encode a {type_name}: {source}")]
    Encode {
        /// The record type.
        type_name: &'static str,
        /// What the value codec said.
        source: BoxError,
    },
    /// The value codec refused the bytes after the timestamp.
    #[error(
        "bytes do not decode as a {type_name}: {source}; was the topic written with another codec or record type?"
    )]
    Decode {
        /// The record type.
        type_name: &'static str,
        /// What the value codec said.
        source: BoxError,
    },
}

/// The bytes of a record's timestamp, before its value.
const TIMESTAMP_BYTES: usize = 8;

/// A [`Record<T>`] as bytes: its timestamp, then its value as a [`Codec<T>`] writes it.
pub struct RecordCodec<T> {
    values: Arc<dyn Codec<T>>,
}

impl<T> Clone for RecordCodec<T> {
    fn clone(&self) -> Self {
        RecordCodec { values: self.values.clone() }
    }
}

impl<T: 'static> RecordCodec<T> {
    /// Records whose values `values` encodes.
    pub fn new(values: Arc<dyn Codec<T>>) -> Self {
        RecordCodec { values }
    }

    /// Appends the bytes of `record` to `out`.
    pub fn encode(&self, record: &Record<T>, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(&record.timestamp.to_le_bytes());
        self.values
            .encode(&record.value, out)
            .map_err(|source| CodecError::Encode { type_name: std::any::type_name::<T>(), source })
    }

    /// The record that `bytes` (all of them) hold.
    pub fn decode(&self, bytes: &[u8]) -> Result<Record<T>, CodecError> {
        let (time, value) = bytes.split_first_chunk::<TIMESTAMP_BYTES>().ok_or(CodecError::Truncated(bytes.len()))?;
        let timestamp = Timestamp::from_le_bytes(*time);
        if timestamp != NO_TIMESTAMP && !(MIN_TIMESTAMP..=MAX_TIMESTAMP).contains(&timestamp) {
            return Err(CodecError::Timestamp(timestamp));
        }
        let value = self
            .values
            .decode(value)
            .map_err(|source| CodecError::Decode { type_name: std::any::type_name::<T>(), source })?;
        Ok(Record::new(value, timestamp))
    }
}

/// A [`RecordCodec`] with its record type erased, as a job graph's edge holds it.
pub trait ErasedRecordCodec: Send + Sync {
    /// The type of the records it encodes, for messages.
    fn record_type(&self) -> &'static str;
    /// The typed codec, for [`Repartition::codec_of`](crate::repartition::Repartition::codec_of).
    fn as_any(&self) -> &dyn Any;
}

impl<T: 'static> ErasedRecordCodec for RecordCodec<T> {
    fn record_type(&self) -> &'static str {
        std::any::type_name::<T>()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
