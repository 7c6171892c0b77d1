//! The counter: one number an operator bumps (records in, late records, bytes read) or sets
//! (a gauge), shared by the thread that writes it and whoever reads the job's metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A counter an operator bumps once per batch; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Replaces the value (a gauge, such as the last checkpoint's duration).
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
