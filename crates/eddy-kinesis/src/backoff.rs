//! How long a shard waits after Kinesis refused a call, and when to give up.
//!
//! Kinesis limits each shard to 5 `GetRecords` calls and 2 MB a second, and answers
//! `ProvisionedThroughputExceededException` beyond that (several consumers of one stream
//! share the limit). The reader then leaves that shard alone for an exponentially growing,
//! jittered delay, while its other shards go on; the delay is capped, and after
//! [`Backoff::max_retries`] refusals in a row the job fails with the last error (and the
//! restart strategy decides what follows). Timeouts, `5xx` answers and lost connections are
//! retried the same way. A successful call resets the count.
//!
//! ```
//! use std::time::Duration;
//! use eddy_kinesis::Backoff;
//!
//! let backoff = Backoff { base: Duration::from_millis(100), max: Duration::from_secs(2), max_retries: 10 };
//! for retry in 0..10 {
//!     let delay = backoff.delay(retry, 42);
//!     let full = backoff.ceiling(retry);
//!     assert!(delay >= full / 2 && delay <= full);
//! }
//! assert_eq!(backoff.ceiling(20), Duration::from_secs(2));
//! ```

use std::time::Duration;

/// The retry schedule for refused calls: delays of `base × 2^retry`, capped at `max`,
/// jittered down by up to half so that many shards refused at once do not retry at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first retry (before jitter).
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Refusals in a row after which the job fails.
    pub max_retries: u32,
}

impl Default for Backoff {
    /// 200 ms doubling to 5 s, failing after 30 refusals in a row (about two minutes).
    fn default() -> Self {
        Backoff { base: Duration::from_millis(200), max: Duration::from_secs(5), max_retries: 30 }
    }
}

impl Backoff {
    /// The delay before retry number `retry` (0 for the first) without jitter.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The jittered delay before retry number `retry`: between half the [`Backoff::ceiling`]
    /// and all of it, picked by `seed` (a shard's, so that shards spread out).
    pub fn delay(&self, retry: u32, seed: u64) -> Duration {
        let ceiling = self.ceiling(retry);
        let half = ceiling / 2;
        let spread = (ceiling - half).as_micros() as u64;
        let jitter = xxhash_rust::xxh3::xxh3_64_with_seed(&retry.to_le_bytes(), seed) % spread.max(1);
        half + Duration::from_micros(jitter)
    }

    /// Whether `failures` refusals in a row are too many.
    pub fn exhausted(&self, failures: u32) -> bool {
        failures > self.max_retries
    }

    /// Checks the settings; says what to change.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.base.is_zero() {
            return Err("the backoff base must be above zero, or throttled shards are retried in a busy loop".into());
        }
        if self.max < self.base {
            return Err(format!("the backoff maximum ({:?}) must be at least its base ({:?})", self.max, self.base));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn doubles_from_the_base_up_to_the_cap() {
        let b = Backoff { base: Duration::from_millis(200), max: Duration::from_secs(5), max_retries: 3 };
        let ceilings: Vec<_> = (0..7).map(|r| b.ceiling(r).as_millis()).collect();
        assert_eq!(ceilings, [200, 400, 800, 1_600, 3_200, 5_000, 5_000]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(5), "no overflow for huge retry counts");
        assert!(!b.exhausted(3));
        assert!(b.exhausted(4));
    }

    #[test]
    fn bad_settings_are_refused() {
        let zero = Backoff { base: Duration::ZERO, ..Backoff::default() };
        assert!(zero.validate().unwrap_err().contains("above zero"));
        let inverted = Backoff { base: Duration::from_secs(2), max: Duration::from_secs(1), max_retries: 1 };
        assert!(inverted.validate().unwrap_err().contains("at least its base"));
        assert!(Backoff::default().validate().is_ok());
    }

    proptest! {
        /// Every delay lies in [ceiling/2, ceiling], ceilings never shrink, and different
        /// shards get different delays for the same retry (they do not retry in lockstep).
        #[test]
        fn delays_are_jittered_within_bounds(base_ms in 1u64..1_000, cap_factor in 1u32..64, retry in 0u32..40, seed: u64) {
            let b = Backoff { base: Duration::from_millis(base_ms), max: Duration::from_millis(base_ms) * cap_factor, max_retries: 5 };
            let d = b.delay(retry, seed);
            prop_assert!(d >= b.ceiling(retry) / 2 && d <= b.ceiling(retry), "{:?} outside {:?}", d, b.ceiling(retry));
            prop_assert!(b.ceiling(retry + 1) >= b.ceiling(retry));
            prop_assert!(d <= b.max);
        }
    }

    #[test]
    fn shards_spread_out() {
        let b = Backoff::default();
        let delays: std::collections::BTreeSet<_> = (0..20u64).map(|shard| b.delay(3, shard)).collect();
        assert!(delays.len() > 15, "20 shards got only {} distinct delays", delays.len());
    }
}
