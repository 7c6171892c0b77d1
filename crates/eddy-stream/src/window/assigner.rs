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
    /// The tumbling slices (length, offset) that every window is a whole number of: the
    /// window itself for tumbling windows, gcd(size, slide) for sliding ones. Event-time
    /// windows pre-aggregate per slice, so a record costs one update however many windows
    /// it is in.
    fn pane(&self) -> (i64, i64);
    /// For session windows, the inactivity gap that closes a session: each record opens
    /// `[t, t + gap)` (what `assign_windows` returns) and overlapping ones of a key merge.
    fn session_gap(&self) -> Option<i64> {
        None
    }
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

            fn pane(&self) -> (i64, i64) {
                (self.size, self.offset)
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

/// The windows of a sliding assigner containing one timestamp, latest start first.
#[derive(Debug, Clone)]
pub struct SlidingWindows {
    next_start: i64,
    past: i64,
    size: i64,
    slide: i64,
}

impl Iterator for SlidingWindows {
    type Item = TimeWindow;

    #[inline]
    fn next(&mut self) -> Option<TimeWindow> {
        if self.next_start <= self.past {
            return None;
        }
        let window = TimeWindow::new(self.next_start, self.next_start + self.size);
        self.next_start -= self.slide;
        Some(window)
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

macro_rules! sliding_assigner {
    ($name:ident, $event_time:expr, $doc:expr) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            size: i64,
            slide: i64,
            offset: i64,
        }

        impl $name {
            /// Windows of length `size` starting every `slide`, aligned to the epoch.
            pub fn of(size: Duration, slide: Duration) -> Self {
                $name { size: size.as_millis() as i64, slide: slide.as_millis() as i64, offset: 0 }
            }

            /// Shifts window boundaries by `offset`.
            pub fn with_offset(self, offset: Duration) -> Self {
                $name { offset: offset.as_millis() as i64, ..self }
            }
        }

        impl WindowAssigner for $name {
            type Windows = SlidingWindows;

            #[inline]
            fn assign_windows(&self, timestamp: Timestamp) -> SlidingWindows {
                let last_start = timestamp - (timestamp - self.offset).rem_euclid(self.slide);
                SlidingWindows {
                    next_start: last_start,
                    past: timestamp - self.size,
                    size: self.size,
                    slide: self.slide,
                }
            }

            fn is_event_time(&self) -> bool {
                $event_time
            }

            fn validate(&self) -> Result<(), String> {
                if self.size <= 0 || self.slide <= 0 {
                    return Err(format!(
                        "sliding window size and slide must be positive, got {} ms and {} ms",
                        self.size, self.slide
                    ));
                }
                if self.offset.abs() >= self.slide {
                    return Err(format!(
                        "sliding window offset {} ms must be smaller than its slide {} ms",
                        self.offset, self.slide
                    ));
                }
                Ok(())
            }

            fn pane(&self) -> (i64, i64) {
                (gcd(self.size, self.slide), self.offset)
            }
        }
    };
}

sliding_assigner!(
    SlidingEventTimeWindows,
    true,
    "Windows of a fixed size starting every `slide` of event time (they overlap when the slide is shorter than the size)."
);
sliding_assigner!(
    SlidingProcessingTimeWindows,
    false,
    "Windows of a fixed size starting every `slide` of arrival (wall-clock) time."
);

macro_rules! session_assigner {
    ($name:ident, $event_time:expr, $doc:expr) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            gap: i64,
        }

        impl $name {
            /// Sessions that close after `gap` without records of the key.
            pub fn with_gap(gap: Duration) -> Self {
                $name { gap: gap.as_millis() as i64 }
            }
        }

        impl WindowAssigner for $name {
            type Windows = Once<TimeWindow>;

            fn assign_windows(&self, timestamp: Timestamp) -> Self::Windows {
                std::iter::once(TimeWindow::new(timestamp, timestamp.saturating_add(self.gap)))
            }

            fn is_event_time(&self) -> bool {
                $event_time
            }

            fn validate(&self) -> Result<(), String> {
                if self.gap <= 0 {
                    return Err(format!("session gap must be positive, got {} ms", self.gap));
                }
                Ok(())
            }

            fn pane(&self) -> (i64, i64) {
                (self.gap, 0)
            }

            fn session_gap(&self) -> Option<i64> {
                Some(self.gap)
            }
        }
    };
}

session_assigner!(
    EventTimeSessionWindows,
    true,
    "Per-key sessions of event time: records closer than the gap share a window, which ends a gap after the last of them."
);
session_assigner!(
    ProcessingTimeSessionWindows,
    false,
    "Per-key sessions of arrival (wall-clock) time, closed after the gap without records."
);

/// One window per key holding everything (Flink's `GlobalWindows`): it never ends, so it
/// needs a trigger (`CountTrigger`, say) to fire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GlobalWindows;

impl GlobalWindows {
    /// The global window assigner.
    pub fn create() -> Self {
        GlobalWindows
    }
}

impl WindowAssigner for GlobalWindows {
    type Windows = Once<TimeWindow>;

    fn assign_windows(&self, _: Timestamp) -> Self::Windows {
        std::iter::once(TimeWindow::new(Timestamp::MIN, Timestamp::MAX))
    }

    fn is_event_time(&self) -> bool {
        false
    }

    fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    fn pane(&self) -> (i64, i64) {
        (i64::MAX, 0)
    }
}

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

    proptest! {
        #[test]
        fn sliding_windows_are_exactly_those_containing_the_timestamp(
            ts in -100_000i64..100_000, size in 1i64..2_000, slide in 1i64..2_000, offset_raw in 0i64..2_000,
        ) {
            let offset = offset_raw % slide;
            let assigner = SlidingEventTimeWindows { size, slide, offset };
            let got: Vec<TimeWindow> = assigner.assign_windows(ts).collect();
            // Every start s = offset (mod slide) with s <= ts < s + size, latest first.
            let mut want = Vec::new();
            let mut s = ts - (ts - offset).rem_euclid(slide);
            while s > ts - size {
                want.push(TimeWindow::new(s, s + size));
                s -= slide;
            }
            prop_assert_eq!(&got, &want);
            // Every window is a whole number of panes.
            let (pane, pane_offset) = assigner.pane();
            for w in &got {
                prop_assert_eq!((w.start - pane_offset).rem_euclid(pane), 0);
                prop_assert_eq!((w.end - w.start) % pane, 0);
            }
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
