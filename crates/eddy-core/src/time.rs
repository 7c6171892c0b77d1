//! Event time: `i64` milliseconds since the Unix epoch, for timestamps and watermarks alike.
//!
//! # The two ends of the time line are reserved
//!
//! `i64::MIN` and `i64::MAX` are markers, never event times: `i64::MIN` is
//! [`NO_TIMESTAMP`] (a record without event time) and [`MIN_WATERMARK`] (no progress yet),
//! `i64::MAX` is [`MAX_WATERMARK`] (the input has ended). A record's event time therefore
//! lies in [`MIN_TIMESTAMP`]`..=`[`MAX_TIMESTAMP`], so "no timestamp" is not a value a
//! record can carry and costs nothing to test. `assign_timestamps_and_watermarks` sends a
//! record whose timestamp falls on a marker to its dead-letter output with the reason.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Timestamp = i64;

/// Marks a record that has no event time yet (Flink uses `Long.MIN_VALUE` the same way).
/// It lies below [`MIN_TIMESTAMP`], so no event time can be mistaken for it.
pub const NO_TIMESTAMP: Timestamp = i64::MIN;

/// The watermark before any progress has been made.
pub const MIN_WATERMARK: Timestamp = i64::MIN;

/// The watermark sent when an input ends: every event-time window and timer fires.
pub const MAX_WATERMARK: Timestamp = i64::MAX;

/// The earliest event time a record can carry (`i64::MIN + 1`).
pub const MIN_TIMESTAMP: Timestamp = i64::MIN + 1;

/// The latest event time a record can carry (`i64::MAX - 1`).
pub const MAX_TIMESTAMP: Timestamp = i64::MAX - 1;

/// Why `timestamp` cannot be a record's event time, if it cannot (it is one of the two
/// markers at the ends of the time line).
#[inline]
pub fn reserved(timestamp: Timestamp) -> Option<&'static str> {
    match timestamp {
        NO_TIMESTAMP => Some(
            "timestamp -9223372036854775808 (i64::MIN) is reserved for \"no timestamp\"; \
             event times run from i64::MIN + 1 to i64::MAX - 1",
        ),
        MAX_WATERMARK => Some(
            "timestamp 9223372036854775807 (i64::MAX) is reserved for the end-of-input watermark; \
             event times run from i64::MIN + 1 to i64::MAX - 1",
        ),
        _ => None,
    }
}

/// `duration` in whole milliseconds, `i64::MAX` for durations longer than that (about 292
/// million years) rather than a wrapped, negative value.
pub fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The current processing time (wall clock) in milliseconds since the epoch.
pub fn now_ms() -> Timestamp {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as Timestamp).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_markers_are_reserved() {
        for ts in [i64::MIN, i64::MAX] {
            assert!(reserved(ts).is_some(), "{ts}");
        }
        for ts in [MIN_TIMESTAMP, -1, 0, 1, MAX_TIMESTAMP] {
            assert_eq!(reserved(ts), None, "{ts}");
        }
    }

    #[test]
    fn long_durations_saturate() {
        assert_eq!(duration_ms(Duration::from_millis(u64::MAX)), i64::MAX);
        assert_eq!(duration_ms(Duration::MAX), i64::MAX);
        assert_eq!(duration_ms(Duration::from_millis(1_500)), 1_500);
    }
}
