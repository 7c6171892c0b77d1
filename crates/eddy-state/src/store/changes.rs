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
    /// What the backend does not track, in full, per key group the store owns: the heap's
    /// namespaced states (an operator's windows, kept as live values) and the timers.
    pub untracked: Vec<KeyGroupSnapshot>,
    /// The names of the namespaced states in `untracked`: every part of them is given in
    /// full, even where they now have no entries.
    pub untracked_states: Vec<String>,
}

impl<B: StateBackend> KeyedStateStore<B> {
    /// Turns change tracking on for incremental checkpoints (see
    /// [`StateBackend::track_changes`]); returns whether the backend tracks changes (the
    /// heap does, sled does not).
    pub fn track_changes(&self) -> Result<bool> {
        Ok(self.inner()?.backend.track_changes())
    }

    /// At the barrier of `checkpoint`: what changed since checkpoint `base`, the one the
    /// next incremental checkpoint builds on, or `None` when the store cannot tell (change
    /// tracking off or not reaching back to `base`, no base): then take the full snapshot
    /// ([`snapshot_key_groups`](Self::snapshot_key_groups)). Expired state is removed first,
    /// as for a full snapshot.
    ///
    /// The backend's entries cost what changed; namespaced states on the heap and timers are
    /// not tracked and come in full.
    pub fn snapshot_changes(&self, checkpoint: u64, base: Option<u64>) -> Result<Option<StoreChanges>> {
        let range = self.key_groups;
        for key_group in range.start..=range.end {
            self.cleanup_expired(key_group)?;
        }
        let changes = {
            let mut inner = self.inner()?;
            let Some(mut changes) = inner.backend.cut_changes(checkpoint, base) else { return Ok(None) };
            changes.retain(|change| !inner.timers.is_timer_entry(&change.key));
            changes
        };
        let untracked = self.snapshot_parts(range, false)?;
        let inner = self.inner()?;
        let untracked_states =
            inner.states.iter().filter(|state| state.has_table()).map(|state| state.name.clone()).collect();
        Ok(Some(StoreChanges { changes, untracked, untracked_states }))
    }

    /// The key groups this store owns.
    pub fn key_group_range(&self) -> KeyGroupRange {
        self.key_groups
    }
}
