//! State time-to-live: when a value expires, what refreshes it, and the clock that decides.
//!
//! A state with a [`StateTtlConfig`] stores the last-access time (processing time, in
//! milliseconds) next to every value, list element and map entry. A value whose
//! `last_access + ttl <= now` is expired: reads never return it, and it is removed lazily
//! when read, incrementally while the state is used, and at snapshot time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eddy_core::Timestamp;

/// How many entries of a state incremental cleanup checks per access, unless configured.
pub const DEFAULT_CLEANUP_SIZE: usize = 5;

/// Time-to-live of a state's values (Flink's `StateTtlConfig`).
///
/// ```
/// use std::time::Duration;
/// use eddy_state::{StateTtlConfig, UpdateType};
/// let ttl = StateTtlConfig::new(Duration::from_secs(60)).update_type(UpdateType::OnReadAndWrite);
/// assert_eq!(ttl.cleanup_size, 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTtlConfig {
    /// How long a value lives after its last refresh.
    pub ttl: Duration,
    /// Which accesses refresh a value's last-access time.
    pub update_type: UpdateType,
    /// Whether expired values that are still stored may be returned (they never are).
    pub visibility: StateVisibility,
    /// Entries of this state checked for expiry on each access (0 turns incremental cleanup off;
    /// snapshot-time cleanup still runs).
    pub cleanup_size: usize,
}

impl StateTtlConfig {
    /// Values expire `ttl` after they were created or last written.
    pub fn new(ttl: Duration) -> Self {
        StateTtlConfig {
            ttl,
            update_type: UpdateType::OnCreateAndWrite,
            visibility: StateVisibility::NeverReturnExpired,
            cleanup_size: DEFAULT_CLEANUP_SIZE,
        }
    }

    /// Sets which accesses refresh a value.
    pub fn update_type(mut self, update_type: UpdateType) -> Self {
        self.update_type = update_type;
        self
    }

    /// Checks `entries` entries of the state for expiry on every access (Flink's
    /// `cleanupIncrementally`); 0 leaves cleanup to reads and snapshots.
    pub fn cleanup_incrementally(mut self, entries: usize) -> Self {
        self.cleanup_size = entries;
        self
    }

    /// The TTL in milliseconds, saturated to `i64::MAX`.
    pub(crate) fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// Whether a value last accessed at `last_access` has expired at `now`.
    pub(crate) fn is_expired(&self, last_access: Timestamp, now: Timestamp) -> bool {
        last_access.saturating_add(self.ttl_ms()) <= now
    }

    /// Whether a read refreshes the last-access time.
    pub(crate) fn refresh_on_read(&self) -> bool {
        self.update_type == UpdateType::OnReadAndWrite
    }
}

/// Which accesses refresh a value's last-access time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateType {
    /// Creating and writing a value refresh it; reading does not.
    OnCreateAndWrite,
    /// Reading refreshes it too (a read of a live value rewrites its timestamp).
    OnReadAndWrite,
}

/// Whether an expired value that has not been cleaned up yet may be returned.
///
/// Only [`StateVisibility::NeverReturnExpired`] exists: returning stale data would make a
/// result depend on when cleanup happened to run. Flink's `ReturnExpiredIfNotCleanedUp` may
/// come later as another variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateVisibility {
    /// Expired values are never returned.
    NeverReturnExpired,
}

/// Where TTL reads the time: processing time in milliseconds since the epoch.
///
/// Injectable so tests (and replays) are deterministic: see [`ManualClock`].
pub trait Clock: Send {
    /// The current time in milliseconds since the epoch.
    fn now_ms(&self) -> Timestamp;
}

/// The wall clock ([`eddy_core::time::now_ms`]), the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Timestamp {
        eddy_core::time::now_ms()
    }
}

/// A clock that moves only when told to; clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use eddy_state::{Clock, ManualClock};
/// let clock = ManualClock::new(1_000);
/// let handle = clock.clone();
/// handle.advance(Duration::from_millis(500));
/// assert_eq!(clock.now_ms(), 1_500);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock standing at `now_ms`.
    pub fn new(now_ms: Timestamp) -> Self {
        ManualClock { now: Arc::new(AtomicI64::new(now_ms)) }
    }

    /// Sets the time.
    pub fn set(&self, now_ms: Timestamp) {
        self.now.store(now_ms, Ordering::Relaxed);
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let _ = self.now.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some(t.saturating_add(by)));
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Timestamp {
        self.now.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_expires_exactly_ttl_after_its_last_access() {
        let ttl = StateTtlConfig::new(Duration::from_millis(10));
        assert!(!ttl.is_expired(100, 109));
        assert!(ttl.is_expired(100, 110));
        let forever = StateTtlConfig::new(Duration::MAX);
        assert!(!forever.is_expired(i64::MAX - 1, i64::MAX - 1));
    }
}
