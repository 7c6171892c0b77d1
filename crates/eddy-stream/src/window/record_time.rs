//! The time a window stage files a record under: its event time, or in processing time the
//! time it arrived.

use eddy_core::time::NO_TIMESTAMP;
use eddy_core::{OperatorInfo, Result, Timestamp};

/// The record's event time (an error, saying what to do, if it has none), or `now` for a
/// processing-time window.
#[inline]
pub(crate) fn record_time(
    event_time: bool,
    timestamp: Timestamp,
    now: Timestamp,
    info: &OperatorInfo,
) -> Result<Timestamp> {
    if !event_time {
        Ok(now)
    } else if timestamp == NO_TIMESTAMP {
        Err(info.error(
            "an event-time window received a record without a timestamp; \
             call assign_timestamps_and_watermarks before key_by/window, or use a processing-time window",
        ))
    } else {
        Ok(timestamp)
    }
}
