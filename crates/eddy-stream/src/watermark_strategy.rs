//! Watermark strategies: how event time advances from the timestamps a stream carries.

use std::time::Duration;

use eddy_core::time::{duration_ms, MIN_WATERMARK};
use eddy_core::{Timestamp, WatermarkAlignment};

/// Decides watermarks from the records one subtask sees (Flink's `WatermarkGenerator`).
pub trait WatermarkGenerator<T>: Clone + Send + Sync + 'static {
    /// Sees every record with its timestamp; a returned watermark is emitted right after the
    /// record (punctuated watermarks).
    fn on_event(&mut self, value: &T, timestamp: Timestamp) -> Option<Timestamp>;
    /// Called every interval of processing time; a returned watermark is emitted (periodic
    /// watermarks).
    fn on_periodic_emit(&mut self) -> Option<Timestamp>;
}

/// Periodic watermarks trailing the highest timestamp seen by a fixed bound:
/// `max − bound − 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundedOutOfOrderness {
    bound: i64,
    max_timestamp: Timestamp,
}

impl<T> WatermarkGenerator<T> for BoundedOutOfOrderness {
    #[inline]
    fn on_event(&mut self, _: &T, timestamp: Timestamp) -> Option<Timestamp> {
        self.max_timestamp = self.max_timestamp.max(timestamp);
        None
    }

    fn on_periodic_emit(&mut self) -> Option<Timestamp> {
        (self.max_timestamp != MIN_WATERMARK).then(|| self.max_timestamp.saturating_sub(self.bound).saturating_sub(1))
    }
}

/// Watermarks carried by the stream itself: `f(record, timestamp)` returns one for the
/// records that are watermark markers (a `{"type":"watermark"}` event, say).
#[derive(Debug, Clone, Copy)]
pub struct Punctuated<F>(pub F);

impl<T, F> WatermarkGenerator<T> for Punctuated<F>
where
    F: Fn(&T, Timestamp) -> Option<Timestamp> + Clone + Send + Sync + 'static,
{
    #[inline]
    fn on_event(&mut self, value: &T, timestamp: Timestamp) -> Option<Timestamp> {
        (self.0)(value, timestamp)
    }

    fn on_periodic_emit(&mut self) -> Option<Timestamp> {
        None
    }
}

/// No watermarks at all (Flink's `WatermarkStrategy.noWatermarks()`): for a source whose
/// event time is assigned later, or not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoWatermarks;

impl<T> WatermarkGenerator<T> for NoWatermarks {
    fn on_event(&mut self, _: &T, _: Timestamp) -> Option<Timestamp> {
        None
    }

    fn on_periodic_emit(&mut self) -> Option<Timestamp> {
        None
    }
}

/// How watermarks are generated (Flink's `WatermarkStrategy`): a generator, how often its
/// periodic watermark is asked for, an optional idleness timeout, and optional watermark
/// alignment.
///
/// Every strategy also emits the maximum watermark at the end of input, so every window
/// fires. With an idleness timeout, a subtask that sees no records for that long is marked
/// idle and stops holding back the watermark downstream. With watermark alignment, a source
/// whose watermark runs too far ahead of the others in its group pauses until they catch up
/// ([`WatermarkStrategy::with_watermark_alignment`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkStrategy<G = BoundedOutOfOrderness> {
    pub(crate) generator: G,
    pub(crate) interval: Duration,
    pub(crate) idleness: Option<Duration>,
    pub(crate) alignment: Option<WatermarkAlignment>,
}

/// Flink's `pipeline.auto-watermark-interval` default.
const DEFAULT_INTERVAL: Duration = Duration::from_millis(200);

impl WatermarkStrategy<BoundedOutOfOrderness> {
    /// Records may arrive up to `bound` later than a record with a higher timestamp; the
    /// watermark is `max timestamp seen − bound − 1`.
    pub fn bounded_out_of_orderness(bound: Duration) -> Self {
        let generator = BoundedOutOfOrderness { bound: duration_ms(bound), max_timestamp: MIN_WATERMARK };
        Self::for_generator(generator)
    }

    /// Timestamps never decrease (bounded out-of-orderness with a bound of zero).
    pub fn monotonous() -> Self {
        Self::bounded_out_of_orderness(Duration::ZERO)
    }
}

impl WatermarkStrategy<NoWatermarks> {
    /// Generates no watermarks (only the final one at the end of input).
    pub fn no_watermarks() -> Self {
        Self::for_generator(NoWatermarks)
    }
}

impl<G> WatermarkStrategy<G> {
    /// A strategy around your own generator, e.g. [`Punctuated`].
    pub fn for_generator(generator: G) -> Self {
        WatermarkStrategy { generator, interval: DEFAULT_INTERVAL, idleness: None, alignment: None }
    }

    /// Marks the stream idle after `timeout` without records.
    pub fn with_idleness(self, timeout: Duration) -> Self {
        WatermarkStrategy { idleness: Some(timeout), ..self }
    }

    /// Asks for periodic watermarks every `interval` of processing time (default 200 ms).
    pub fn with_interval(self, interval: Duration) -> Self {
        WatermarkStrategy { interval, ..self }
    }

    /// Watermark alignment (Flink's `withWatermarkAlignment`): every source in the job whose
    /// strategy names `group` pauses while its watermark is more than `max_drift` ahead of
    /// the lowest watermark in the group, and reads again once the others have caught up, so
    /// a keyed stage downstream need not hold what one source read far ahead. Each source
    /// looks at the group every `update_interval` (Flink's default: 1 s). Sources that have
    /// ended or are idle do not hold the group back.
    ///
    /// Given to [`StreamEnvironment::from_source`](crate::StreamEnvironment::from_source), it
    /// aligns each source subtask on its own watermark (the minimum over its splits), and
    /// pauses single splits where the reader can. Given to
    /// [`DataStream::assign_timestamps_and_watermarks`](crate::DataStream::assign_timestamps_and_watermarks),
    /// it aligns the source the assigner runs chained to (at the source's parallelism, nothing
    /// in between that moves records between subtasks; the job is refused otherwise). A
    /// paused source still takes part in checkpoints. See `docs/time-and-windows.md`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use eddy_stream::prelude::*;
    /// let strategy = WatermarkStrategy::monotonous().with_watermark_alignment(
    ///     "lines",
    ///     Duration::from_secs(60),
    ///     Duration::from_millis(100),
    /// );
    /// let env = StreamEnvironment::new();
    /// env.set_parallelism(2);
    /// let stamped = env.generate(Some(1_000), |i| i as i64).assign_timestamps_and_watermarks(strategy, |t| *t);
    /// let all = stamped.collect();
    /// env.execute("aligned").unwrap().wait().unwrap();
    /// assert_eq!(all.take().len(), 1_000);
    /// ```
    pub fn with_watermark_alignment(self, group: &str, max_drift: Duration, update_interval: Duration) -> Self {
        WatermarkStrategy { alignment: Some(WatermarkAlignment::new(group, max_drift, update_interval)), ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_core::time::{MAX_TIMESTAMP, MIN_TIMESTAMP};
    use proptest::prelude::*;

    fn event_time() -> impl Strategy<Value = i64> {
        prop_oneof![
            MIN_TIMESTAMP..MIN_TIMESTAMP + 10_000,
            MAX_TIMESTAMP - 10_000..=MAX_TIMESTAMP,
            MIN_TIMESTAMP..=MAX_TIMESTAMP,
        ]
    }

    proptest! {
        #[test]
        fn bounded_out_of_orderness_saturates_over_the_whole_time_line(
            timestamps in proptest::collection::vec(event_time(), 0..20),
            bound in prop_oneof![0u64..10_000, any::<u64>()],
        ) {
            let mut generator = WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(bound)).generator;
            for &ts in &timestamps {
                prop_assert_eq!(WatermarkGenerator::<()>::on_event(&mut generator, &(), ts), None);
            }
            // The model in i128: max − bound − 1, clipped at the bottom of the time line.
            let want = timestamps.iter().max().map(|&max| {
                let bound = i128::from(bound).min(i128::from(i64::MAX));
                (i128::from(max) - bound - 1).max(i128::from(i64::MIN)) as i64
            });
            prop_assert_eq!(WatermarkGenerator::<()>::on_periodic_emit(&mut generator), want);
            // A watermark never passes a timestamp seen: records at the maximum are on time.
            if let (Some(w), Some(&max)) = (want, timestamps.iter().max()) {
                prop_assert!(w < max);
            }
        }
    }
}
