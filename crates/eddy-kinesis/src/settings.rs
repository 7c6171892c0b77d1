//! What every subtask's reader of one Kinesis source needs to know: the stream, how to
//! reach it, where to start, how to turn records into values and event time, and how hard to
//! poll. The builder ([`crate::KinesisSourceBuilder`]) fills it in; the readers share it.

use std::time::Duration;

use eddy_core::Timestamp;

use crate::backoff::Backoff;
use crate::connection::Connection;
use crate::deserializer::Deserializer;
use crate::record::KinesisRecord;
use crate::starting_position::StartingPosition;

/// A user's event-time extractor.
pub(crate) type TimestampFn<T> = Box<dyn Fn(&T, &KinesisRecord<'_>) -> Timestamp + Send + Sync>;

/// Everything a reader needs, shared by the readers of all subtasks.
pub(crate) struct Settings<T> {
    pub stream: String,
    pub connection: Connection,
    pub starting_position: StartingPosition,
    pub deserializer: Box<dyn Deserializer<T>>,
    pub timestamps: Option<TimestampFn<T>>,
    pub bounded: bool,
    pub get_records_interval: Duration,
    pub get_records_limit: i32,
    pub discovery_interval: Duration,
    pub backoff: Backoff,
}
