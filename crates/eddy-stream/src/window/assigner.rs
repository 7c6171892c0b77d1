//! Window assigners: which windows a record with a given timestamp belongs to.

use std::iter::Once;
use std::time::Duration;

use eddy_core::Timestamp;

use crate::window::TimeWindow;

/// Assigns each record to windows by its timestamp (event time) or by the time it arrives
/// (processing time).
pub trait WindowAssigner: Clone + Send + Sync + 'static {
    /// The windows of one record.
    type Windows: Iterator<Item = TimeWindow>;
    /// The windows containing `timestamp`.
    fn assign_windows(&self, timestamp: Timestamp) -> Self::Windows;
    /// True for event time (fired by watermarks), false for processing time (by the clock).
    fn is_event_time(&self) -> bool;
    /// Why this assigner cannot run, if it cannot (for example a zero size).
    fn validate(&self) -> Result<(), String>;
}

/// The tumbling window containing `timestamp`: windows of `size` ms aligned to `offset`
/// (so with offset 0, to the epoch), correct for negative timestamps too.
fn tumbling(timestamp: Timestamp, size: i64, offset: i64) -> TimeWindow {
    let start = timestamp - (timestamp - offset).rem_euclid(size);
    TimeWindow::new(start, start + size)
}

fn validate_tumbling(size: i64, offset: i64) -> Result<(), String> {
    if size <= 0 {
        return Err(format!("tumbling window size must be positive, got {size} ms"));
    }
    if offset.abs() >= size {
        return Err(format!("tumbling window offset {offset} ms must be smaller than its size {size} ms"));
    }
    Ok(())
}

macro_rules! tumbling_assigner {
    ($name:ident, $event_time:expr, $doc:expr) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            size: i64,
            offset: i64,
        }

        impl $name {
            /// Windows of length `size`, aligned to the epoch.
            pub fn of(size: Duration) -> Self {
                $name { size: size.as_millis() as i64, offset: 0 }
            }

            /// Shifts window boundaries by `offset` (for example to align days to a time zone).
            pub fn with_offset(self, offset: Duration) -> Self {
                $name { offset: offset.as_millis() as i64, ..self }
            }
        }

        impl WindowAssigner for $name {
            type Windows = Once<TimeWindow>;

            #[inline]
            fn assign_windows(&self, timestamp: Timestamp) -> Self::Windows {
                std::iter::once(tumbling(timestamp, self.size, self.offset))
            }

            fn is_event_time(&self) -> bool {
                $event_time
            }

            fn validate(&self) -> Result<(), String> {
                validate_tumbling(self.size, self.offset)
            }
        }
    };
}

tumbling_assigner!(
    TumblingEventTimeWindows,
    true,
    "Fixed-size, non-overlapping event-time windows; they fire when the watermark passes their end."
);
tumbling_assigner!(
    TumblingProcessingTimeWindows,
    false,
    "Fixed-size, non-overlapping windows of arrival (wall-clock) time; they fire when the clock passes their end, and at the end of a bounded input."
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn tumbling_window_contains_the_timestamp_and_is_aligned(
            ts in -1_000_000_000i64..1_000_000_000, size in 1i64..100_000, offset_raw in 0i64..100_000,
        ) {
            let offset = offset_raw % size;
            let w = tumbling(ts, size, offset);
            prop_assert!(w.start <= ts && ts < w.end);
            prop_assert_eq!(w.end - w.start, size);
            prop_assert_eq!((w.start - offset).rem_euclid(size), 0);
        }
    }

    #[test]
    fn invalid_sizes_are_reported() {
        assert!(TumblingEventTimeWindows::of(Duration::ZERO).validate().is_err());
        let w = TumblingEventTimeWindows::of(Duration::from_secs(5));
        assert!(w.with_offset(Duration::from_secs(5)).validate().is_err());
        assert_eq!(w.assign_windows(4_999).next(), Some(TimeWindow::new(0, 5_000)));
        assert_eq!(w.assign_windows(5_000).next(), Some(TimeWindow::new(5_000, 10_000)));
    }
}
