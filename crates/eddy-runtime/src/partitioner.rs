//! Partitioners: which downstream subtask receives a record.

use eddy_core::key::{key_group, subtask_for_key_group, KeyHasher};
use eddy_core::Result;
use serde::Serialize;

/// Picks the target subtask of each record on an edge between subtasks.
pub trait Partitioner<T>: Send + 'static {
    /// The index of the target subtask, `0..targets`.
    fn target(&mut self, value: &T, targets: usize) -> Result<usize>;
}

/// Everything to the one target (a forward edge that is not chained).
#[derive(Debug, Clone, Copy, Default)]
pub struct Forward;

impl<T> Partitioner<T> for Forward {
    #[inline]
    fn target(&mut self, _: &T, _: usize) -> Result<usize> {
        Ok(0)
    }
}

/// Round robin over the targets, starting at a subtask-specific offset.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rebalance {
    next: usize,
}

impl Rebalance {
    /// A round robin starting at `start` (the sending subtask's index spreads the load).
    pub fn starting_at(start: usize) -> Self {
        Rebalance { next: start }
    }
}

impl<T> Partitioner<T> for Rebalance {
    #[inline]
    fn target(&mut self, _: &T, targets: usize) -> Result<usize> {
        self.next = (self.next + 1) % targets;
        Ok(self.next)
    }
}

/// A uniformly random target for each record.
#[derive(Debug, Clone)]
pub struct Shuffle {
    rng: fastrand::Rng,
}

impl Shuffle {
    /// A shuffle seeded from `seed` (the sending subtask's index), so runs are repeatable.
    pub fn seeded(seed: u64) -> Self {
        Shuffle { rng: fastrand::Rng::with_seed(seed) }
    }
}

impl<T> Partitioner<T> for Shuffle {
    #[inline]
    fn target(&mut self, _: &T, targets: usize) -> Result<usize> {
        Ok(self.rng.usize(..targets))
    }
}

/// Routes by key: stable hash → key group → subtask (see [`eddy_core::key`]).
#[derive(Clone)]
pub struct KeyGroups<F> {
    key_of: F,
    hasher: KeyHasher,
    max_parallelism: usize,
}

impl<F> KeyGroups<F> {
    /// Routes by the key that `key_of` extracts, over `max_parallelism` key groups.
    pub fn new(key_of: F, max_parallelism: usize) -> Self {
        KeyGroups { key_of, hasher: KeyHasher::default(), max_parallelism }
    }
}

impl<T, K, F> Partitioner<T> for KeyGroups<F>
where
    K: Serialize,
    F: Fn(&T) -> K + Send + 'static,
{
    #[inline]
    fn target(&mut self, value: &T, targets: usize) -> Result<usize> {
        let hash = self.hasher.hash(&(self.key_of)(value))?;
        let group = key_group(hash, self.max_parallelism);
        Ok(subtask_for_key_group(group, self.max_parallelism, targets))
    }
}
