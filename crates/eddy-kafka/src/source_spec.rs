//! What a Kafka source reads and how, as its subtasks' readers share it: the starting
//! offsets, the topics or pattern, boundedness, the deserializer and the timestamp extractor.
//! [`crate::source`] builds it; [`crate::reader::KafkaReader`] follows it.

use std::sync::Arc;
use std::time::Duration;

use eddy_core::Timestamp;

use crate::client::Settings;
use crate::deserializer::Deserializer;

/// Where a partition starts when no checkpoint says where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartingOffsets {
    /// The oldest record still in the partition.
    #[default]
    Earliest,
    /// Only records written after the job starts.
    Latest,
    /// The consumer group's committed offset, or `fallback` where the group has none.
    Committed {
        /// Where to start without a committed offset (`Earliest` or `Latest`).
        fallback: Fallback,
    },
    /// The first record with a timestamp at or after this one (ms since the epoch); the end
    /// of the partition if there is none.
    Timestamp(i64),
}

/// Where a partition without a committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fallback {
    /// The oldest record.
    #[default]
    Earliest,
    /// The end of the partition.
    Latest,
}

/// Extracts a value's event time.
pub(crate) type Extractor<T> = Arc<dyn Fn(&T) -> Timestamp + Send + Sync>;

/// Everything a reader needs; shared by all subtasks.
pub(crate) struct Spec<T> {
    pub(crate) settings: Settings,
    pub(crate) topics: Vec<String>,
    pub(crate) pattern: Option<regex::Regex>,
    pub(crate) group_id: Option<String>,
    pub(crate) starting: StartingOffsets,
    pub(crate) bounded: bool,
    pub(crate) deserializer: Box<dyn Deserializer<T>>,
    pub(crate) timestamps: Option<Extractor<T>>,
    pub(crate) commit_offsets: bool,
    pub(crate) discovery_interval: Option<Duration>,
    /// How long brokers may stay unreachable before the source fails.
    pub(crate) broker_timeout: Duration,
    /// How long one metadata or offset request may take.
    pub(crate) request_timeout: Duration,
}
