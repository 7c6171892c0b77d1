//! Records (and a source's bytes) per second, worked out on read from the running counts, as
//! [`task_time`](crate::task_time) works out busy / idle / backpressured time: over the time
//! since the previous read, at least a second apart (reads closer together see the previous
//! rates), so any number of readers share them and no background thread samples anything.
//! These are Flink's `numRecordsInPerSecond`, `numRecordsOutPerSecond` and
//! `numBytesInPerSecond`; Prometheus users can also take `rate()` of the `_total` counters.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The shortest window a rate is worked out over.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// Per-second rates of one operator subtask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecordRates {
    /// Records into the operator per second.
    pub records_in_per_s: u64,
    /// Records out of it per second.
    pub records_out_per_s: u64,
    /// Bytes a source read per second (0 for other operators).
    pub bytes_in_per_s: u64,
}

/// The counts at one read.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    counts: [u64; 3],
    rates: Option<RecordRates>,
}

/// Works out [`RecordRates`] from counts read now and then.
#[derive(Debug, Default)]
pub struct RateMeter {
    last: Mutex<Option<Sample>>,
}

impl RateMeter {
    /// The rates since the previous read (or since `started`, at the first), given the counts
    /// (records in, records out, bytes in) at `now`; `None` before the subtask started.
    pub fn per_second(&self, counts: [u64; 3], started: Option<Instant>, now: Instant) -> Option<RecordRates> {
        let started = started?;
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let previous = last.unwrap_or(Sample { at: started, counts: [0; 3], rates: None });
        let window = now.saturating_duration_since(previous.at);
        if previous.rates.is_some() && window < RATE_WINDOW || window.is_zero() {
            return previous.rates;
        }
        let rate =
            |i: usize| (counts[i].saturating_sub(previous.counts[i]) as f64 / window.as_secs_f64()).round() as u64;
        let rates = RecordRates { records_in_per_s: rate(0), records_out_per_s: rate(1), bytes_in_per_s: rate(2) };
        *last = Some(Sample { at: now, counts, rates: Some(rates) });
        Some(rates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_counts_over_the_window_since_the_previous_read() {
        let meter = RateMeter::default();
        let start = Instant::now();
        assert_eq!(meter.per_second([5, 5, 0], None, start), None, "not started");
        let first = meter.per_second([500, 250, 1000], Some(start), start + Duration::from_secs(2)).unwrap();
        assert_eq!(first, RecordRates { records_in_per_s: 250, records_out_per_s: 125, bytes_in_per_s: 500 });
        // Half a second later: too soon, the same rates.
        let soon = meter.per_second([900, 900, 900], Some(start), start + Duration::from_millis(2500));
        assert_eq!(soon, Some(first));
        // Four seconds after the first read: 1000 more records in.
        let later = meter.per_second([1500, 250, 1000], Some(start), start + Duration::from_secs(6)).unwrap();
        assert_eq!(later, RecordRates { records_in_per_s: 250, records_out_per_s: 0, bytes_in_per_s: 0 });
    }
}
