//! Window assigners: which windows a record with a given timestamp belongs to.
//!
//! Window bounds are computed without overflow over the whole `i64` range, and clipped to
//! it: a window that would start before `i64::MIN` starts there, one that would end after
//! `i64::MAX` ends there (its max timestamp, `i64::MAX - 1`, is the latest event time a
//! record can carry, so it still holds every record it should). Flink computes the same
//! bounds (`TimeWindow.getWindowStartWithOffset`, end = start + size) with wrapping
//! arithmetic, so its windows at the ends of the time line wrap around instead.

use std::iter::Once;
use std::time::Duration;

use eddy_core::time::duration_ms;
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
    /// For sliding windows, `(size, slide, offset)`: overlapping windows of the same size
    /// every `slide`, which the keyed stage slides over panes instead of merging each pane
    /// into every window that holds it.
    fn sliding(&self) -> Option<(i64, i64, i64)> {
        None
    }
}

/// How far `timestamp` lies past the last boundary of steps of `step` ms aligned to `offset`:
/// `(timestamp - offset) mod step` (Euclidean, so negative timestamps work), without overflow
/// at the ends of the time line.
#[inline]
fn past_boundary(timestamp: Timestamp, offset: i64, step: i64) -> i64 {
    match timestamp.checked_sub(offset) {
        Some(shifted) => shifted.rem_euclid(step),
        None => (i128::from(timestamp) - i128::from(offset)).rem_euclid(i128::from(step)) as i64,
    }
}

/// The tumbling window containing `timestamp`: windows of `size` ms aligned to `offset`
/// (so with offset 0, to the epoch), clipped to the time line.
#[inline]
fn tumbling(timestamp: Timestamp, size: i64, offset: i64) -> TimeWindow {
    let into = past_boundary(timestamp, offset, size);
    TimeWindow::new(timestamp.saturating_sub(into), timestamp.saturating_add(size - into))
}

/// A window bound computed in `i128`, clipped to the time line.
fn clip(bound: i128) -> Timestamp {
    bound.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
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
                $name { size: duration_ms(size), offset: 0 }
            }

            /// Shifts window boundaries by `offset` (for example to align days to a time zone).
            pub fn with_offset(self, offset: Duration) -> Self {
                $name { offset: duration_ms(offset), ..self }
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

/// The windows of a sliding assigner containing one timestamp, latest start first. Bounds
/// are kept in `i128`, so windows reaching past either end of the time line are clipped,
/// not wrapped.
#[derive(Debug, Clone)]
pub struct SlidingWindows {
    next_start: i128,
    past: i128,
    size: i128,
    slide: i128,
}

impl Iterator for SlidingWindows {
    type Item = TimeWindow;

    #[inline]
    fn next(&mut self) -> Option<TimeWindow> {
        if self.next_start <= self.past {
            return None;
        }
        let window = TimeWindow::new(clip(self.next_start), clip(self.next_start + self.size));
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
                $name { size: duration_ms(size), slide: duration_ms(slide), offset: 0 }
            }

            /// Shifts window boundaries by `offset`.
            pub fn with_offset(self, offset: Duration) -> Self {
                $name { offset: duration_ms(offset), ..self }
            }
        }

        impl WindowAssigner for $name {
            type Windows = SlidingWindows;

            #[inline]
            fn assign_windows(&self, timestamp: Timestamp) -> SlidingWindows {
                let timestamp = i128::from(timestamp);
                let into = i128::from(past_boundary(timestamp as i64, self.offset, self.slide));
                SlidingWindows {
                    next_start: timestamp - into,
                    past: timestamp - i128::from(self.size),
                    size: i128::from(self.size),
                    slide: i128::from(self.slide),
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

            fn sliding(&self) -> Option<(i64, i64, i64)> {
                Some((self.size, self.slide, self.offset))
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
                $name { gap: duration_ms(gap) }
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

    /// Timestamps anywhere in the `i64` range, often near its ends and near zero.
    fn any_time() -> impl Strategy<Value = i64> {
        prop_oneof![any::<i64>(), i64::MIN..i64::MIN + 100_000, i64::MAX - 100_000..=i64::MAX, -100_000i64..100_000,]
    }

    /// Window lengths from one millisecond to `i64::MAX`.
    fn any_length() -> impl Strategy<Value = i64> {
        prop_oneof![1i64..10_000, 1i64..=i64::MAX, i64::MAX - 1_000..=i64::MAX]
    }

    /// The window `[start, start + size)` computed without overflow, clipped to the `i64` range.
    fn clipped(start: i128, size: i128) -> TimeWindow {
        TimeWindow::new(clip(start), clip(start + size))
    }

    /// Whether `ts` is an event time a record can carry.
    fn event_time(ts: i64) -> bool {
        (eddy_core::time::MIN_TIMESTAMP..=eddy_core::time::MAX_TIMESTAMP).contains(&ts)
    }

    proptest! {
        #[test]
        fn tumbling_windows_over_the_whole_time_line_hold_their_timestamp(
            ts in any_time(), size in any_length(), offset_raw in any::<i64>(),
        ) {
            let offset = offset_raw.rem_euclid(size);
            let got = TumblingEventTimeWindows { size, offset }.assign_windows(ts).collect::<Vec<_>>();
            // The model: the same formula in i128, where nothing overflows, then clipped.
            let (t, s, o) = (i128::from(ts), i128::from(size), i128::from(offset));
            prop_assert_eq!(&got, &vec![clipped(t - (t - o).rem_euclid(s), s)]);
            let w = got[0];
            prop_assert!(w.start <= ts && w.start < w.end);
            if event_time(ts) {
                prop_assert!(ts <= w.max_timestamp(), "{:?} does not hold {}", w, ts);
            }
        }

        #[test]
        fn sliding_windows_over_the_whole_time_line_hold_their_timestamp(
            ts in any_time(),
            (size, slide) in prop_oneof![
                (1i64..3_000, 1i64..3_000),
                // Long windows with few slides each.
                (1i64..=i64::MAX).prop_flat_map(|size| (Just(size), (size / 8).max(1)..=i64::MAX)),
            ],
            offset_raw in any::<i64>(),
        ) {
            let offset = offset_raw.rem_euclid(slide);
            let assigner = SlidingEventTimeWindows { size, slide, offset };
            let got: Vec<TimeWindow> = assigner.assign_windows(ts).collect();
            let (t, size, slide, o) = (i128::from(ts), i128::from(size), i128::from(slide), i128::from(offset));
            let mut want = Vec::new();
            let mut start = t - (t - o).rem_euclid(slide);
            while start > t - size {
                want.push(clipped(start, size));
                start -= slide;
            }
            prop_assert_eq!(&got, &want);
            for w in &got {
                prop_assert!(w.start <= ts && w.start < w.end);
                if event_time(ts) {
                    prop_assert!(ts <= w.max_timestamp());
                }
            }
        }

        #[test]
        fn session_and_global_windows_hold_every_event_time(ts in any_time(), gap in any_length()) {
            let session = EventTimeSessionWindows { gap }.assign_windows(ts).next().unwrap();
            prop_assert_eq!(session, TimeWindow::new(ts, ts.saturating_add(gap)));
            let global = GlobalWindows.assign_windows(ts).next().unwrap();
            if event_time(ts) {
                prop_assert!(session.start <= ts && ts <= session.max_timestamp());
                prop_assert!(global.start <= ts && ts <= global.max_timestamp());
            }
        }

        #[test]
        fn durations_of_any_length_give_positive_sizes(millis in any::<u64>()) {
            let size = TumblingEventTimeWindows::of(Duration::from_millis(millis)).pane().0;
            prop_assert_eq!(i128::from(size), i128::from(millis).min(i128::from(i64::MAX)));
            prop_assert_eq!(TumblingEventTimeWindows::of(Duration::from_millis(millis)).validate().is_ok(), millis > 0);
        }
    }

    #[test]
    fn windows_at_the_ends_of_the_time_line_are_clipped_not_wrapped() {
        use eddy_core::time::{MAX_TIMESTAMP, MIN_TIMESTAMP};
        let w = TumblingEventTimeWindows::of(Duration::from_secs(5));
        let last = w.assign_windows(MAX_TIMESTAMP).next().unwrap();
        assert_eq!(last, TimeWindow::new(MAX_TIMESTAMP - MAX_TIMESTAMP.rem_euclid(5_000), i64::MAX));
        assert_eq!(last.max_timestamp(), MAX_TIMESTAMP);
        let first = w.assign_windows(MIN_TIMESTAMP).next().unwrap();
        assert_eq!(first, TimeWindow::new(i64::MIN, MIN_TIMESTAMP + (5_000 - MIN_TIMESTAMP.rem_euclid(5_000))));
        // The markers themselves never panic.
        assert_eq!(w.assign_windows(i64::MAX).next().unwrap().end, i64::MAX);
        assert_eq!(w.assign_windows(i64::MIN).next().unwrap().start, i64::MIN);
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
