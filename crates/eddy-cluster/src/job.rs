//! What a distributed job computes: [`WindowedJob`], the functions of its sub-topologies.
//!
//! A job that scales out is cut at each `key_by`, as Kafka Streams cuts a topology at each
//! repartitioning. Sub-topology 0 reads the input topic and turns each record into keyed,
//! timestamped values ([`WindowedJob::extract`], the `flat_map` + `key_by`), each for one of
//! the job's [branches](WindowedJob::branches). Each branch is a sub-topology of its own: it
//! reads its values back, by key group, from its own repartition topic, aggregates them in
//! tumbling event-time windows ([`WindowedJob::add`]) and writes a row per key and window
//! ([`WindowedJob::format`]) to its output topic when the watermark passes the window's end.
//!
//! A word count has one branch (words); the taxi job has two from one extract (pickups per
//! cell, and airport trips per cell and airport), as a `DataStream` job with two `key_by`s
//! after one `flat_map` would.

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

/// A keyed, timestamped value on its way to a window sub-topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed<K, V> {
    /// The branch it goes to: an index into [`WindowedJob::branches`] (0 for a job of one).
    pub branch: usize,
    /// The key: its key group picks the repartition partition (and the state's owner).
    pub key: K,
    /// What is aggregated.
    pub value: V,
    /// Event time, ms since the epoch.
    pub timestamp: i64,
}

/// One keyed-window branch of a job: a `key_by` and the windows after it, with a
/// repartition topic `<application id>-<name>-repartition` and window tasks of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// Names the branch's repartition topic, transactional ids and checkpoints: letters,
    /// digits, `.`, `_` and `-`; not `source`. Keep it for the life of the application id.
    pub name: String,
    /// Where its rows go; `None`: the configuration's
    /// [`output_topic`](crate::ClusterConfig::output_topic).
    pub output_topic: Option<String>,
}

impl Branch {
    /// A branch writing to the configuration's output topic.
    pub fn new(name: impl Into<String>) -> Self {
        Branch { name: name.into(), output_topic: None }
    }

    /// The branch, writing to `topic` instead.
    pub fn output_topic(mut self, topic: impl Into<String>) -> Self {
        self.output_topic = Some(topic.into());
        self
    }
}

/// A job of a source sub-topology and one window sub-topology per branch, joined by
/// repartition topics; see the [module docs](self).
///
/// Its functions must be deterministic (the same input gives the same output): a task that
/// moves between processes replays its input from the last committed offsets. Branches share
/// the key, value and accumulator types (an enum of the branches' keys, say) and the window
/// length; `add` and `format` are told which branch they serve.
pub trait WindowedJob: Send + Sync + 'static {
    /// The grouping key.
    type Key: Serialize + DeserializeOwned + Ord + Clone + Send + 'static;
    /// What is aggregated per key and window.
    type Value: Serialize + DeserializeOwned + Send + 'static;
    /// The running aggregate of a key's values in one window (checkpointed).
    type Accumulator: Serialize + DeserializeOwned + Default + Clone + Send + 'static;

    /// The job's branches, in the order [`Keyed::branch`] indexes them. Default: one, named
    /// `window`, writing to the configured output topic.
    fn branches(&self) -> Vec<Branch> {
        vec![Branch::new("window")]
    }

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

    /// Branch `branch`: adds `value` to a window's aggregate.
    fn add(&self, branch: usize, accumulator: &mut Self::Accumulator, value: Self::Value);

    /// Branch `branch`: the output record of `key`'s aggregate in the window `[start, end)`,
    /// or `None` for a window that writes nothing (too few values, say).
    fn format(
        &self,
        branch: usize,
        key: &Self::Key,
        start: i64,
        end: i64,
        accumulator: &Self::Accumulator,
    ) -> Option<Vec<u8>>;
}
