//! What keyed state changed since a checkpoint: the changelog a task hands to an
//! incremental checkpoint instead of its whole state.
//!
//! With change tracking on ([`KeyedStateStore::track_changes`](crate::KeyedStateStore::track_changes)),
//! the heap backend notes every key written or removed since the last checkpoint (and each
//! namespaced state it keeps as live values, a window's contents, every (namespace, key)
//! entry), and at a barrier the task copies only those entries ([`KeyedStateStore::snapshot_changes`](crate::KeyedStateStore::snapshot_changes)):
//! the cost at the barrier follows the change, not the state. The checkpoint writer
//! ([`write_changelog`](crate::checkpoint::write_changelog)) stores them as a *delta* per
//! keyed part on top of the previous checkpoint, as Flink's changelog state backend does.

use eddy_core::key::KeyGroupRange;

/// One changed entry of a keyed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedChange {
    /// Its key group.
    pub key_group: u16,
    /// Its key bytes (as in [`KeyedEntries`](crate::KeyedEntries)).
    pub key: Vec<u8>,
    /// Its value now; `None`: the key was removed.
    pub value: Option<Vec<u8>>,
    /// The length of its value in the checkpoint the change is counted from; `None`: it had
    /// none there. Lets the writer keep each part's entry and byte counts without reading it.
    pub before: Option<u32>,
}

/// The changed entries of one keyed state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateChanges {
    /// The state's name.
    pub state: String,
    /// Its changed entries, in no particular order, each key at most once per key group.
    pub changes: Vec<KeyedChange>,
}

/// What one operator's keyed state is, relative to the previous checkpoint: parts given in
/// full (the [`OperatorSnapshot`](crate::OperatorSnapshot)'s keyed entries) and changes to
/// the others.
///
/// A part (one state in one key group) of the previous checkpoint is
/// - *replaced* by the snapshot's entries if its key group is in `replaced_key_groups` or
///   its state in `replaced_states` (a subtask that sent its whole state, state kept
///   outside change tracking such as timers);
/// - otherwise *changed* by the entries of `changes` in it, or kept as it was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorChanges {
    /// The operator's uid.
    pub uid: String,
    /// Key groups whose state is given in full.
    pub replaced_key_groups: Vec<KeyGroupRange>,
    /// States given in full in every key group.
    pub replaced_states: Vec<String>,
    /// Changes to the other parts, per state.
    pub changes: Vec<StateChanges>,
}

impl OperatorChanges {
    /// Whether the part of `state` in `key_group` is given in full.
    pub fn replaces(&self, state: &str, key_group: usize) -> bool {
        self.replaced_states.iter().any(|s| s == state)
            || self.replaced_key_groups.iter().any(|range| range.contains(key_group))
    }
}
