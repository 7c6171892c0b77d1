//! A store's part of an incremental checkpoint: what changed since the checkpoint it builds
//! on, copied at the barrier in time proportional to the change.

use eddy_core::key::KeyGroupRange;

use super::KeyedStateStore;
use crate::backend::{Change, StateBackend};
use crate::error::Result;
use crate::snapshot::KeyGroupSnapshot;

/// What a store changed since a checkpoint ([`KeyedStateStore::snapshot_changes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreChanges {
    /// Backend entries written or removed since the checkpoint, with their values now.
    pub changes: Vec<Change>,
    /// What is not tracked, in full, per key group the store owns: the timers (their
    /// `entries` are empty).
    pub untracked: Vec<KeyGroupSnapshot>,
}

impl<B: StateBackend> KeyedStateStore<B> {
    /// Turns change tracking on for incremental checkpoints (see
    /// [`StateBackend::track_changes`]), for the backend's entries and the namespaced
    /// states the heap keeps as live values; returns whether the backend tracks changes
    /// (the heap does, sled does not).
    pub fn track_changes(&self) -> Result<bool> {
        let mut inner = self.inner()?;
        if !inner.backend.track_changes() {
            return Ok(false);
        }
        inner.tracks_changes = true;
        self.tables()?.iter_mut().for_each(|table| table.track_changes());
        Ok(true)
    }

    /// At the barrier of `checkpoint`: what changed since checkpoint `base`, the one the
    /// next incremental checkpoint builds on, or `None` when the store cannot tell (change
    /// tracking off or not reaching back to `base`, no base): then take the full snapshot
    /// ([`snapshot_key_groups`](Self::snapshot_key_groups)). Expired state is removed first,
    /// as for a full snapshot.
    ///
    /// The backend's entries and the namespaced states on the heap (a window's contents)
    /// cost what changed; the timers are not tracked and come in full.
    pub fn snapshot_changes(&self, checkpoint: u64, base: Option<u64>) -> Result<Option<StoreChanges>> {
        let range = self.key_groups;
        for key_group in range.start..=range.end {
            self.cleanup_expired(key_group)?;
        }
        let changes = {
            let mut inner = self.inner()?;
            let backend = inner.backend.cut_changes(checkpoint, base);
            // Every log is cut at every barrier, so that they all count from this one.
            let mut tables = Vec::new();
            for table in self.tables()?.iter_mut() {
                tables.push(table.cut_changes(checkpoint, base, self.max_parallelism, range)?);
            }
            let Some(mut changes) = backend else { return Ok(None) };
            changes.retain(|change| !inner.timers.is_timer_entry(&change.key));
            for table in tables {
                let Some(table) = table else { return Ok(None) };
                changes.extend(table);
            }
            changes
        };
        let untracked = self.snapshot_parts(range, false)?;
        Ok(Some(StoreChanges { changes, untracked }))
    }

    /// The key groups this store owns.
    pub fn key_group_range(&self) -> KeyGroupRange {
        self.key_groups
    }
}
