//! How often and how long the sink waits before it sends a rejected request again.
//!
//! Elasticsearch answers `429 Too Many Requests` when its write queues are full and `5xx`
//! when a node or shard is unavailable: both pass, so the sink retries, but it must back off
//! or every client retrying at once keeps the cluster overloaded. Retry `n` (from 0) waits a
//! random time between half and all of `initial_delay * multiplier^n`, capped at `max_delay`
//! ("equal jitter": spread out, yet never a near-zero wait). After `max_retries` retries the
//! request fails, and so does the checkpoint: the job's restart strategy takes over.
//!
//! ```
//! use std::time::Duration;
//! use eddy_elasticsearch::RetryPolicy;
//!
//! let policy = RetryPolicy::default();
//! let mut rng = fastrand::Rng::with_seed(1);
//! let waits: Vec<Duration> = policy.schedule(&mut rng).collect();
//! assert_eq!(waits.len(), policy.max_retries as usize);
//! assert!(waits.iter().zip(0..).all(|(w, n)| *w <= policy.ceiling(n)));
//! ```

use std::time::Duration;

use crate::Error;

/// Bounded exponential backoff with jitter, for requests Elasticsearch may accept later.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 never retries.
    pub max_retries: u32,
    /// The ceiling of the first wait.
    pub initial_delay: Duration,
    /// The most any single wait may be.
    pub max_delay: Duration,
    /// How much the ceiling grows per retry (at least 1).
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    /// Up to 8 retries starting at 100 ms, doubling, at most 10 s apart: about 23 s of
    /// trying at most, about 11 s at least, before a checkpoint fails.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 8,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            multiplier: 2.0,
        }
    }
}

impl RetryPolicy {
    /// No retries: the first rejection fails the checkpoint.
    pub const NONE: RetryPolicy =
        RetryPolicy { max_retries: 0, initial_delay: Duration::ZERO, max_delay: Duration::ZERO, multiplier: 1.0 };

    /// The longest wait before retry `retry` (from 0): `initial_delay * multiplier^retry`,
    /// capped at `max_delay`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let grown = self.initial_delay.as_secs_f64() * self.multiplier.powi(retry.min(i32::MAX as u32) as i32);
        Duration::try_from_secs_f64(grown).unwrap_or(Duration::MAX).min(self.max_delay)
    }

    /// The wait before retry `retry`: uniformly random in `[ceiling / 2, ceiling]`.
    pub fn delay(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self.ceiling(retry);
        let half = ceiling / 2;
        let spread = (ceiling - half).as_nanos().min(u64::MAX as u128) as u64;
        half + Duration::from_nanos(rng.u64(0..=spread))
    }

    /// Every wait in order: one per retry, `max_retries` of them.
    pub fn schedule<'a>(&'a self, rng: &'a mut fastrand::Rng) -> impl Iterator<Item = Duration> + 'a {
        (0..self.max_retries).map(move |retry| self.delay(retry, rng))
    }

    /// Checks the settings make sense.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(Error::InvalidSetting(format!(
                "retry multiplier must be a finite number of at least 1, not {}",
                self.multiplier
            )));
        }
        if self.initial_delay > self.max_delay {
            return Err(Error::InvalidSetting(format!(
                "retry initial_delay ({:?}) is longer than max_delay ({:?})",
                self.initial_delay, self.max_delay
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> impl Strategy<Value = RetryPolicy> {
        (0u32..20, 0u64..5_000, 0u64..60_000, 1.0f64..4.0).prop_map(|(max_retries, initial, extra, multiplier)| {
            RetryPolicy {
                max_retries,
                initial_delay: Duration::from_millis(initial),
                max_delay: Duration::from_millis(initial + extra),
                multiplier,
            }
        })
    }

    /// The ceiling, computed the obvious way: multiply step by step, cap at the end.
    fn model_ceiling(p: &RetryPolicy, retry: u32) -> f64 {
        let mut ceiling = p.initial_delay.as_secs_f64();
        for _ in 0..retry {
            ceiling *= p.multiplier;
        }
        ceiling.min(p.max_delay.as_secs_f64())
    }

    proptest! {
        #[test]
        fn every_wait_lies_between_half_and_all_of_the_capped_exponential(p in policy(), seed: u64) {
            let mut rng = fastrand::Rng::with_seed(seed);
            let waits: Vec<Duration> = p.schedule(&mut rng).collect();
            prop_assert_eq!(waits.len(), p.max_retries as usize);
            for (retry, wait) in waits.iter().enumerate() {
                let ceiling = model_ceiling(&p, retry as u32);
                let wait = wait.as_secs_f64();
                prop_assert!(wait <= ceiling + 1e-6, "retry {}: {} > {}", retry, wait, ceiling);
                prop_assert!(wait >= ceiling / 2.0 - 1e-6, "retry {}: {} < half of {}", retry, wait, ceiling);
                prop_assert!(wait <= p.max_delay.as_secs_f64() + 1e-9);
            }
        }

        #[test]
        fn ceilings_never_shrink_and_total_time_is_bounded(p in policy()) {
            let ceilings: Vec<Duration> = (0..p.max_retries).map(|n| p.ceiling(n)).collect();
            prop_assert!(ceilings.windows(2).all(|w| w[0] <= w[1]));
            let total: Duration = ceilings.iter().sum();
            prop_assert!(total <= p.max_delay * p.max_retries);
        }

        #[test]
        fn the_same_seed_gives_the_same_schedule(p in policy(), seed: u64) {
            let a: Vec<_> = p.schedule(&mut fastrand::Rng::with_seed(seed)).collect();
            let b: Vec<_> = p.schedule(&mut fastrand::Rng::with_seed(seed)).collect();
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn huge_exponents_saturate_at_the_cap() {
        let p = RetryPolicy { max_retries: u32::MAX, ..RetryPolicy::default() };
        assert_eq!(p.ceiling(10_000), p.max_delay);
        assert_eq!(p.ceiling(u32::MAX), p.max_delay);
        let mut rng = fastrand::Rng::with_seed(3);
        assert!(p.delay(u32::MAX, &mut rng) >= p.max_delay / 2);
    }

    #[test]
    fn jitter_spreads_the_waits() {
        let p = RetryPolicy::default();
        let mut rng = fastrand::Rng::with_seed(9);
        let waits: std::collections::BTreeSet<Duration> = (0..50).map(|_| p.delay(3, &mut rng)).collect();
        assert!(waits.len() > 40, "50 draws gave only {} distinct waits", waits.len());
    }

    #[test]
    fn nonsense_settings_are_refused_with_what_to_change() {
        let shrinking = RetryPolicy { multiplier: 0.5, ..RetryPolicy::default() };
        assert!(shrinking.validate().unwrap_err().to_string().contains("at least 1"));
        let inverted = RetryPolicy { initial_delay: Duration::from_secs(20), ..RetryPolicy::default() };
        assert!(inverted.validate().unwrap_err().to_string().contains("longer than max_delay"));
        assert!(RetryPolicy::NONE.validate().is_ok());
    }
}
