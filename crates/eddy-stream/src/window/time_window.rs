//! A time window `[start, end)`.

use eddy_core::Timestamp;
use serde::{Deserialize, Serialize};

/// The half-open interval `[start, end)` of event or processing time, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimeWindow {
    /// First millisecond in the window.
    pub start: Timestamp,
    /// First millisecond after the window (exclusive, as Flink's `TimeWindow.getEnd()`).
    pub end: Timestamp,
}

impl TimeWindow {
    /// The window `[start, end)`.
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        TimeWindow { start, end }
    }

    /// The last millisecond in the window; a window fires once time reaches it, and its
    /// result carries it as its timestamp. Every window an assigner makes ends after
    /// `i64::MIN` (windows are clipped to the time line, never emptied), so this cannot
    /// overflow; it runs for every record a window takes, so it stays a plain subtraction.
    #[inline]
    pub fn max_timestamp(&self) -> Timestamp {
        self.end - 1
    }
}
