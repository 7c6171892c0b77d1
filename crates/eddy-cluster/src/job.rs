//! What a distributed job computes: [`WindowedJob`], its two sub-topologies' functions.
//!
//! A job that scales out is cut at its `key_by`, as Kafka Streams cuts a topology at each
//! repartitioning: sub-topology 0 reads the input topic and turns each record into keyed,
//! timestamped values ([`WindowedJob::extract`], the `flat_map` + `key_by`); sub-topology 1
//! reads them back, by key group, from the repartition topic and aggregates them in tumbling
//! event-time windows ([`WindowedJob::add`]), writing one row per key and window
//! ([`WindowedJob::format`]) to the output topic when the watermark passes the window's end.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// One record of the input topic, as sub-topology 0 sees it.
#[derive(Debug, Clone, Copy)]
pub struct InputRecord<'a> {
    /// The record's value (empty for a null value).
    pub payload: &'a [u8],
    /// The record's Kafka timestamp (create or log-append time), in ms since the epoch.
    pub timestamp: Option<i64>,
}

/// A keyed, timestamped value on its way to the window sub-topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed<K, V> {
    /// The key: its key group picks the repartition partition (and the state's owner).
    pub key: K,
    /// What is aggregated.
    pub value: V,
    /// Event time, ms since the epoch.
    pub timestamp: i64,
}

/// A job of two sub-topologies joined by a repartition topic; see the [module docs](self).
///
/// Its functions must be deterministic (the same input gives the same output): a task that
/// moves between processes replays its input from the last committed offsets.
pub trait WindowedJob: Send + Sync + 'static {
    /// The grouping key.
    type Key: Serialize + DeserializeOwned + Ord + Clone + Send + 'static;
    /// What is aggregated per key and window.
    type Value: Serialize + DeserializeOwned + Send + 'static;
    /// The running aggregate of a key's values in one window (checkpointed).
    type Accumulator: Serialize + DeserializeOwned + Default + Clone + Send + 'static;

    /// The tumbling windows' length, in ms.
    fn window_ms(&self) -> i64;

    /// How far behind the newest event time a record may arrive (Flink's bounded
    /// out-of-orderness): a partition's watermark is its newest event time minus this minus 1.
    fn out_of_orderness_ms(&self) -> i64 {
        0
    }

    /// Sub-topology 0: the keyed values of one input record, appended to `out` (none for a
    /// record to skip).
    fn extract(&self, record: &InputRecord<'_>, out: &mut Vec<Keyed<Self::Key, Self::Value>>);

    /// Sub-topology 1: adds `value` to a window's aggregate.
    fn add(&self, accumulator: &mut Self::Accumulator, value: Self::Value);

    /// The output record of `key`'s aggregate in the window `[start, end)`.
    fn format(&self, key: &Self::Key, start: i64, end: i64, accumulator: &Self::Accumulator) -> Vec<u8>;
}
