//! Event time: `i64` milliseconds since the Unix epoch, for timestamps and watermarks alike.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Timestamp = i64;

/// Marks a record that has no event time yet (Flink uses `Long.MIN_VALUE` the same way).
pub const NO_TIMESTAMP: Timestamp = i64::MIN;

/// The watermark before any progress has been made.
pub const MIN_WATERMARK: Timestamp = i64::MIN;

/// The watermark sent when an input ends: every event-time window and timer fires.
pub const MAX_WATERMARK: Timestamp = i64::MAX;

/// The current processing time (wall clock) in milliseconds since the epoch.
pub fn now_ms() -> Timestamp {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as Timestamp).unwrap_or(0)
}
