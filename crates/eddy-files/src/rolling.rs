//! The rolling policy: when an open part is closed and the next record of its bucket starts a
//! new one.
//!
//! A part is always closed at a checkpoint: eddy's two-phase commit stores closed parts in a
//! checkpoint, never open ones, so a part never spans two checkpoints. (Flink's row formats
//! may keep a part open across checkpoints through its recoverable writers; Flink's bulk
//! formats, Parquet among them, close at every checkpoint just like this.) Between
//! checkpoints a part is also closed when
//!
//! - it has reached the part size,
//! - it has been open for the rollover interval, or
//! - it has received no record for the inactivity interval.
//!
//! Size and age are checked before each record is written, and every open part's age and
//! inactivity about once a second while records flow; a closed part becomes visible when the
//! next checkpoint completes.

use std::time::Duration;

/// When parts roll. The default is Flink's `DefaultRollingPolicy`: 128 MiB, 60 s open,
/// 60 s inactive, plus every checkpoint.
///
/// ```
/// use std::time::Duration;
/// use eddy_files::RollingPolicy;
///
/// let hourly_files = RollingPolicy::default()
///     .with_part_size(1 << 30)
///     .with_rollover_interval(Duration::from_secs(3600))
///     .with_inactivity_interval(Duration::from_secs(600));
/// let per_checkpoint = RollingPolicy::on_checkpoint();
/// # let _ = (hourly_files, per_checkpoint);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollingPolicy {
    part_size: Option<u64>,
    rollover_interval: Option<Duration>,
    inactivity_interval: Option<Duration>,
}

impl Default for RollingPolicy {
    fn default() -> Self {
        RollingPolicy {
            part_size: Some(128 << 20),
            rollover_interval: Some(Duration::from_secs(60)),
            inactivity_interval: Some(Duration::from_secs(60)),
        }
    }
}

/// What the policy looks at: an open part's size and times (ms since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartState {
    pub opened_ms: i64,
    pub last_write_ms: i64,
    pub bytes: u64,
}

impl RollingPolicy {
    /// Parts close at checkpoints only (Flink's `OnCheckpointRollingPolicy`).
    pub fn on_checkpoint() -> Self {
        RollingPolicy { part_size: None, rollover_interval: None, inactivity_interval: None }
    }

    /// Also closes a part once it holds `bytes` (checked before each record, so a part may
    /// exceed it by one record).
    pub fn with_part_size(mut self, bytes: u64) -> Self {
        self.part_size = Some(bytes);
        self
    }

    /// Also closes a part that has been open this long.
    pub fn with_rollover_interval(mut self, interval: Duration) -> Self {
        self.rollover_interval = Some(interval);
        self
    }

    /// Also closes a part that has received no record for this long.
    pub fn with_inactivity_interval(mut self, interval: Duration) -> Self {
        self.inactivity_interval = Some(interval);
        self
    }

    /// Whether `part` must close before another record goes in at `now_ms`.
    pub(crate) fn roll_before_write(&self, part: &PartState, now_ms: i64) -> bool {
        self.part_size.is_some_and(|limit| part.bytes >= limit) || self.roll_on_time(part, now_ms)
    }

    /// Whether `part` is too old or has been idle too long at `now_ms`.
    pub(crate) fn roll_on_time(&self, part: &PartState, now_ms: i64) -> bool {
        let reached = |since: i64, interval: Option<Duration>| {
            interval.is_some_and(|d| now_ms.saturating_sub(since) >= i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        };
        reached(part.opened_ms, self.rollover_interval) || reached(part.last_write_ms, self.inactivity_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_rolls_on_its_own() {
        let part = PartState { opened_ms: 1_000, last_write_ms: 5_000, bytes: 100 };
        let size = RollingPolicy::on_checkpoint().with_part_size(100);
        assert!(size.roll_before_write(&part, 5_000) && !size.roll_on_time(&part, i64::MAX));
        let age = RollingPolicy::on_checkpoint().with_rollover_interval(Duration::from_secs(10));
        assert!(!age.roll_before_write(&part, 10_999) && age.roll_before_write(&part, 11_000));
        let idle = RollingPolicy::on_checkpoint().with_inactivity_interval(Duration::from_secs(2));
        assert!(!idle.roll_on_time(&part, 6_999) && idle.roll_on_time(&part, 7_000));
        assert!(!RollingPolicy::on_checkpoint().roll_before_write(&part, i64::MAX));
        // A clock that went back never rolls.
        assert!(!age.roll_on_time(&part, 0));
    }
}
