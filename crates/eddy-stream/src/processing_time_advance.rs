//! Event time that keeps moving while a source is quiet: a watermark generator that, after
//! a quiet spell, advances the watermark at the pace of the wall clock.
//!
//! A watermark only moves when records come. In a service, events arrive when users act; at
//! night the stream goes quiet, and the windows holding the evening's last events never fire
//! because no later event pushes the watermark past their end. Idleness
//! ([`WatermarkStrategy::with_idleness`]) helps when *another* input still moves: the quiet
//! one stops holding it back. When every input is quiet, nothing moves.
//!
//! [`WatermarkStrategy::with_processing_time_advance`] wraps a strategy's generator: once no
//! record came for `quiet`, its watermark becomes what it was at the last record plus the
//! processing time since then, as if event time had kept flowing with the wall clock. A
//! record that arrives later is judged against that watermark (late if it is older than the
//! watermark allows); a record that would have been on time had it arrived in real time
//! stays on time. Flink leaves this to a custom `WatermarkGenerator` (its own idleness only
//! removes an input from the minimum); eddy builds it in because an embedded job meets quiet
//! inputs all the time.
//!
//! ```
//! use std::time::Duration;
//! use eddy_stream::prelude::*;
//! // Events may be 1 s out of order; after 2 s without any, event time follows the clock.
//! let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_secs(1))
//!     .with_processing_time_advance(Duration::from_secs(2));
//! # let _ = strategy;
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy_core::time::{duration_ms, MAX_TIMESTAMP};
use eddy_core::Timestamp;

use crate::watermark_strategy::{WatermarkGenerator, WatermarkStrategy};

/// Where the generator reads processing time (the wall clock, or a test's clock).
type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// A [`WatermarkGenerator`] that advances `inner`'s watermark with the wall clock once its
/// input has been quiet for a while (see the [module docs](self)).
#[derive(Clone)]
pub struct ProcessingTimeAdvance<G> {
    inner: G,
    quiet: Duration,
    clock: Clock,
    /// Whether a record came since the last periodic call.
    seen: bool,
    /// When the last record came, to the precision of the periodic calls.
    last_record: Option<Instant>,
    /// The inner generator's newest watermark.
    watermark: Option<Timestamp>,
}

impl<G> ProcessingTimeAdvance<G> {
    fn new(inner: G, quiet: Duration, clock: Clock) -> Self {
        ProcessingTimeAdvance { inner, quiet, clock, seen: false, last_record: None, watermark: None }
    }
}

impl<T, G: WatermarkGenerator<T>> WatermarkGenerator<T> for ProcessingTimeAdvance<G> {
    #[inline]
    fn on_event(&mut self, value: &T, timestamp: Timestamp) -> Option<Timestamp> {
        self.seen = true;
        let punctuated = self.inner.on_event(value, timestamp);
        if let Some(watermark) = punctuated {
            self.watermark = Some(self.watermark.map_or(watermark, |w| w.max(watermark)));
        }
        punctuated
    }

    fn on_periodic_emit(&mut self) -> Option<Timestamp> {
        let now = (self.clock)();
        if std::mem::take(&mut self.seen) {
            self.last_record = Some(now);
        }
        if let Some(watermark) = self.inner.on_periodic_emit() {
            self.watermark = Some(self.watermark.map_or(watermark, |w| w.max(watermark)));
        }
        let (Some(watermark), Some(last)) = (self.watermark, self.last_record) else { return self.watermark };
        let quiet_for = now.saturating_duration_since(last);
        if quiet_for < self.quiet {
            return Some(watermark);
        }
        // Never the end of time: that is the end-of-input marker.
        Some(watermark.saturating_add(duration_ms(quiet_for)).min(MAX_TIMESTAMP))
    }
}

impl<G> WatermarkStrategy<G> {
    /// After `quiet` without records, advances the watermark at the pace of the wall clock
    /// from where the last record left it, so windows close although no later record comes
    /// (a quiet service, a sensor that went silent). See [`ProcessingTimeAdvance`].
    pub fn with_processing_time_advance(self, quiet: Duration) -> WatermarkStrategy<ProcessingTimeAdvance<G>> {
        self.with_advance_clock(quiet, Arc::new(Instant::now))
    }

    fn with_advance_clock(self, quiet: Duration, clock: Clock) -> WatermarkStrategy<ProcessingTimeAdvance<G>> {
        WatermarkStrategy {
            generator: ProcessingTimeAdvance::new(self.generator, quiet, clock),
            interval: self.interval,
            idleness: self.idleness,
            alignment: self.alignment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A clock the test moves by hand.
    fn manual() -> (Clock, Arc<Mutex<Instant>>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let read = now.clone();
        (Arc::new(move || *read.lock().unwrap()), now)
    }

    fn advance(clock: &Mutex<Instant>, ms: u64) {
        *clock.lock().unwrap() += Duration::from_millis(ms);
    }

    #[test]
    fn a_quiet_input_advances_with_the_clock_from_its_last_watermark() {
        let (clock, now) = manual();
        let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(1_000))
            .with_advance_clock(Duration::from_millis(500), clock);
        let mut generator = strategy.generator;
        assert_eq!(WatermarkGenerator::<()>::on_periodic_emit(&mut generator), None, "nothing seen yet");
        generator.on_event(&(), 10_000);
        assert_eq!(WatermarkGenerator::<()>::on_periodic_emit(&mut generator), Some(8_999));
        advance(&now, 400);
        assert_eq!(WatermarkGenerator::<()>::on_periodic_emit(&mut generator), Some(8_999), "not quiet long enough");
        advance(&now, 200);
        assert_eq!(WatermarkGenerator::<()>::on_periodic_emit(&mut generator), Some(9_599), "600 ms since the record");
        advance(&now, 1_400);
        assert_eq!(WatermarkGenerator::<()>::on_periodic_emit(&mut generator), Some(10_999));
        // A record again: the inner generator decides until the input is quiet once more.
        generator.on_event(&(), 12_500);
        assert_eq!(WatermarkGenerator::<()>::on_periodic_emit(&mut generator), Some(11_499));
        advance(&now, 100);
        assert_eq!(WatermarkGenerator::<()>::on_periodic_emit(&mut generator), Some(11_499));
    }

    #[test]
    fn the_advance_never_reaches_the_end_of_time() {
        let (clock, now) = manual();
        let mut generator = WatermarkStrategy::monotonous().with_advance_clock(Duration::ZERO, clock).generator;
        generator.on_event(&(), MAX_TIMESTAMP);
        WatermarkGenerator::<()>::on_periodic_emit(&mut generator);
        advance(&now, 10_000);
        assert_eq!(WatermarkGenerator::<()>::on_periodic_emit(&mut generator), Some(MAX_TIMESTAMP));
    }
}
