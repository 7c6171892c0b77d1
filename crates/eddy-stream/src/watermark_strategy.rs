//! Watermark strategies: how event time advances from the timestamps a stream carries.

use std::time::Duration;

/// How watermarks are generated from record timestamps (Flink's `WatermarkStrategy`).
///
/// The watermark is `max timestamp seen − out_of_orderness − 1`, emitted every
/// `interval` of processing time and at the end of input (where it becomes the maximum, so
/// every window fires). With an idleness timeout, a subtask that sees no records for that
/// long is marked idle and stops holding back the watermark downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatermarkStrategy {
    pub(crate) out_of_orderness: Duration,
    pub(crate) interval: Duration,
    pub(crate) idleness: Option<Duration>,
}

impl WatermarkStrategy {
    /// Records may arrive up to `bound` later than a record with a higher timestamp.
    pub fn bounded_out_of_orderness(bound: Duration) -> Self {
        WatermarkStrategy { out_of_orderness: bound, interval: Duration::from_millis(200), idleness: None }
    }

    /// Timestamps never decrease (bounded out-of-orderness with a bound of zero).
    pub fn monotonous() -> Self {
        Self::bounded_out_of_orderness(Duration::ZERO)
    }

    /// Marks the stream idle after `timeout` without records.
    pub fn with_idleness(self, timeout: Duration) -> Self {
        WatermarkStrategy { idleness: Some(timeout), ..self }
    }

    /// Emits watermarks every `interval` of processing time (default 200 ms, as Flink's
    /// `pipeline.auto-watermark-interval`).
    pub fn with_interval(self, interval: Duration) -> Self {
        WatermarkStrategy { interval, ..self }
    }
}
