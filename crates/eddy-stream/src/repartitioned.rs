//! `repartition()` and `repartitioned()`: marking the edges a distributed run may cut, with a
//! stable name and a codec for their records (Kafka Streams' `Repartitioned.as(name)`).
//!
//! A job that runs in several processes is cut at every `key_by` and `rebalance` into
//! sub-topologies joined by Kafka topics (see `docs/scale-out.md`). Records that cross a
//! topic need bytes, which eddy's [`Data`](crate::Data) does not ask of a record type, and
//! the topic needs a name that stays the same for the life of the application. So, as Kafka
//! Streams asks for `Serdes` and a name at `repartition()`, each such edge is marked:
//!
//! ```
//! use eddy_stream::prelude::*;
//!
//! let env = StreamEnvironment::new();
//! let words = env
//!     .from_collection(vec!["to be or not to be".to_string()])
//!     .flat_map(|line| line.split(' ').map(str::to_string).collect::<Vec<_>>())
//!     .repartition(Repartitioned::named("spread")) // a rebalance, marked
//!     .map(|word| (word, 1u64));
//! let counts = words.key_by(|w| w.0.clone()).repartitioned(Repartitioned::named("words"));
//! counts.sum(|w| &mut w.1).for_each(|_| {});
//! // Both cuts are marked (topics wc-spread-repartition and wc-words-repartition); what is
//! // left is the source: a distributed job reads Kafka topics (eddy-kafka's `from_kafka`,
//! // whose docs plan this job whole).
//! let refused = env.distributed_plan("wc").unwrap_err().to_string();
//! assert!(refused.contains("'Source: Collection' is not read from a topic"), "{refused}");
//! ```
//!
//! [`Repartitioned::named`] encodes the records with bincode (for any
//! `Serialize + DeserializeOwned` type); [`Repartitioned::with_codec`] takes a
//! [`Codec`] of your own (Arrow, Protobuf, JSON). A run in one process ignores the marks: a
//! marked job runs, and computes, exactly what the same job unmarked does.
//!
//! What crosses a marked `key_by` is what the keyed operator reads, with one exception: an
//! event-time window that aggregates (`aggregate`, `reduce`, `sum`, … over tumbling or
//! sliding windows) pre-aggregates before the cut, as in one process, so the topic carries
//! its partial accumulators (key, window, accumulator, record count) under the same name,
//! encoded with bincode (keys and accumulators are always serde types).

use std::marker::PhantomData;
use std::sync::Arc;

use eddy_core::BoxError;
use eddy_runtime::codec::{Codec, RecordCodec};
use eddy_runtime::repartition::Repartition;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// How a marked edge crosses processes: the name of its repartition topic
/// (`<application id>-<name>-repartition`) and the codec of its records.
pub struct Repartitioned<T> {
    name: String,
    codec: Arc<dyn Codec<T>>,
}

impl<T> Clone for Repartitioned<T> {
    fn clone(&self) -> Self {
        Repartitioned { name: self.name.clone(), codec: self.codec.clone() }
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Repartitioned<T> {
    /// A repartition named `name` whose records are encoded with bincode. Keep the name for
    /// the life of the application id: it names the topic, as Kafka Streams' `withName` does.
    pub fn named(name: impl Into<String>) -> Self {
        Self::with_codec(name, Bincode::<T>::default())
    }
}

impl<T: 'static> Repartitioned<T> {
    /// A repartition named `name` whose records `codec` encodes.
    pub fn with_codec(name: impl Into<String>, codec: impl Codec<T>) -> Self {
        Repartitioned { name: name.into(), codec: Arc::new(codec) }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The mark the job graph's edge carries.
    pub(crate) fn mark(&self) -> Repartition {
        Repartition::new(self.name.clone(), RecordCodec::new(self.codec.clone()))
    }
}

/// The mark named `name` for an edge of `U` records, encoded with bincode: for edges the
/// API inserts in place of the marked one (a window's partial accumulators).
pub(crate) fn bincode_mark<U: Serialize + DeserializeOwned + 'static>(name: &str) -> Repartition {
    Repartition::new(name, RecordCodec::new(Arc::new(Bincode::<U>::default())))
}

/// bincode (2.0, standard configuration) for any serde type.
///
/// Decoding refuses a value that would take more than [`MAX_DECODED_BYTES`] in memory: a
/// length read from damaged or foreign bytes must be an error, not an allocation of
/// whatever it says (which aborts the process). A record that crosses a Kafka topic is far
/// smaller (a broker's default `message.max.bytes` is 1 MiB).
pub struct Bincode<T>(PhantomData<fn() -> T>);

/// The most memory one decoded value may claim (64 MiB).
pub const MAX_DECODED_BYTES: usize = 64 << 20;

impl<T> Default for Bincode<T> {
    fn default() -> Self {
        Bincode(PhantomData)
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Codec<T> for Bincode<T> {
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), BoxError> {
        bincode::serde::encode_into_std_write(value, out, bincode::config::standard())?;
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, BoxError> {
        let config = bincode::config::standard().with_limit::<MAX_DECODED_BYTES>();
        let (value, read) = bincode::serde::decode_from_slice(bytes, config)?;
        if read != bytes.len() {
            return Err(format!("{} bytes left over after the value", bytes.len() - read).into());
        }
        Ok(value)
    }
}
