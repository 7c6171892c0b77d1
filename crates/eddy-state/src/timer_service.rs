//! The store's timer service: one interface over timers on the heap ([`TimerStore`], for the
//! heap backend) and timers stored in the backend ([`StoredTimers`], for sled), chosen by
//! [`StateBackend::is_in_memory`].

use eddy_core::Timestamp;

use crate::backend::StateBackend;
use crate::error::Result;
use crate::stored_timers::StoredTimers;
use crate::timers::{TimeDomain, Timer, TimerStore};

/// Timers of one operator subtask, wherever its backend keeps state.
#[derive(Debug)]
pub(crate) enum TimerService {
    /// In memory, next to a heap backend.
    Heap(TimerStore),
    /// As backend entries, next to the state on disk.
    Stored(StoredTimers),
}

impl TimerService {
    /// No timers, kept where `backend` keeps state.
    pub(crate) fn for_backend<B: StateBackend>(backend: &B) -> Self {
        let max_parallelism = backend.max_parallelism();
        if backend.is_in_memory() {
            TimerService::Heap(TimerStore::new(max_parallelism))
        } else {
            TimerService::Stored(StoredTimers::new(max_parallelism))
        }
    }

    /// Registers a timer; `false` if it was already registered.
    pub(crate) fn register<B: StateBackend>(
        &mut self,
        backend: &mut B,
        domain: TimeDomain,
        key_group: usize,
        timer: Timer,
    ) -> Result<bool> {
        match self {
            TimerService::Heap(timers) => timers.register(domain, key_group, timer),
            TimerService::Stored(timers) => timers.register(backend, domain, key_group, &timer),
        }
    }

    /// Deletes a timer; `false` if there was none.
    pub(crate) fn delete<B: StateBackend>(
        &mut self,
        backend: &mut B,
        domain: TimeDomain,
        key_group: usize,
        timer: &Timer,
    ) -> Result<bool> {
        match self {
            TimerService::Heap(timers) => timers.delete(domain, key_group, timer),
            TimerService::Stored(timers) => timers.delete(backend, domain, key_group, timer),
        }
    }

    /// Removes and returns the earliest timer due at `up_to`, with its key group.
    pub(crate) fn pop_due<B: StateBackend>(
        &mut self,
        backend: &mut B,
        domain: TimeDomain,
        up_to: Timestamp,
    ) -> Result<Option<(usize, Timer)>> {
        match self {
            TimerService::Heap(timers) => Ok(timers.pop_due(domain, up_to)),
            TimerService::Stored(timers) => timers.pop_due(backend, domain, up_to),
        }
    }

    /// The earliest registered timestamp of a domain.
    pub(crate) fn next_timestamp(&self, domain: TimeDomain) -> Option<Timestamp> {
        match self {
            TimerService::Heap(timers) => timers.next_timestamp(domain),
            TimerService::Stored(timers) => timers.next_timestamp(domain),
        }
    }

    /// The number of registered timers of a domain.
    pub(crate) fn len(&self, domain: TimeDomain) -> usize {
        match self {
            TimerService::Heap(timers) => timers.len(domain),
            TimerService::Stored(timers) => timers.len(domain),
        }
    }

    /// Whether a backend entry is a timer (stored timers live among the state entries).
    pub(crate) fn is_timer_entry(&self, entry_key: &[u8]) -> bool {
        match self {
            TimerService::Heap(_) => false,
            TimerService::Stored(timers) => timers.is_timer_entry(entry_key),
        }
    }

    /// The timers of a key group, both domains, in order.
    pub(crate) fn snapshot_key_group<B: StateBackend>(
        &self,
        backend: &B,
        key_group: usize,
    ) -> Result<Vec<(TimeDomain, Timer)>> {
        match self {
            TimerService::Heap(timers) => timers.snapshot_key_group(key_group),
            TimerService::Stored(timers) => timers.snapshot_key_group(backend, key_group),
        }
    }

    /// Replaces a key group's timers with a snapshot's.
    pub(crate) fn restore_key_group<B: StateBackend>(
        &mut self,
        backend: &mut B,
        key_group: usize,
        timers: Vec<(TimeDomain, Timer)>,
    ) -> Result<()> {
        match self {
            TimerService::Heap(store) => store.restore_key_group(key_group, timers),
            TimerService::Stored(store) => store.restore_key_group(backend, key_group, timers),
        }
    }
}
