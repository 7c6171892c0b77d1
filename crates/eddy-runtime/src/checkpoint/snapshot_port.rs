//! How an operator subtask hands its state to a checkpoint and gets it back on restore.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use eddy_core::key::KeyGroupRange;
use eddy_core::Result;
use eddy_state::{KeyedEntries, Redistribution, StateChanges};

use crate::checkpoint::restored::RestoredState;

/// One keyed state entry: `(key group, key bytes, value bytes)`.
pub type KeyedEntry = (u16, Vec<u8>, Vec<u8>);

/// One named list of operator state from one subtask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubtaskList {
    /// The list's name within its operator.
    pub name: String,
    /// How it is dealt out on restore.
    pub redistribution: Redistribution,
    /// The subtask's items.
    pub items: Vec<Vec<u8>>,
}

/// What one operator subtask put into one checkpoint.
#[derive(Debug, Clone)]
pub struct SubtaskSnapshot {
    /// The operator's uid.
    pub uid: String,
    /// The operator's display name.
    pub name: String,
    /// Which subtask.
    pub subtask: usize,
    /// Of how many.
    pub parallelism: usize,
    /// Keyed state, by state name.
    pub keyed: Vec<KeyedEntries>,
    /// Operator state lists.
    pub lists: Vec<SubtaskList>,
    /// With incremental checkpoints, what the keyed state changed since the checkpoint they
    /// build on; `keyed` then holds only the states of `replaced_states` (`None`: `keyed`
    /// is the whole keyed state of the subtask's key groups).
    pub changes: Option<SubtaskChanges>,
}

/// What a subtask's keyed state changed since the checkpoint incremental checkpoints build
/// on ([`StateContext::incremental_base`]).
#[derive(Debug, Clone, Default)]
pub struct SubtaskChanges {
    /// Changed entries, per state.
    pub changes: Vec<StateChanges>,
    /// States not tracked entry by entry (timers, say): given in full, in every key group
    /// of the subtask, by the snapshot's `keyed`.
    pub replaced_states: Vec<String>,
}

/// The snapshots the operators of one chain subtask made for the barrier being handled;
/// the task takes them and acks the checkpoint with them.
#[derive(Debug, Clone, Default)]
pub struct TaskSnapshots(Arc<Mutex<Vec<SubtaskSnapshot>>>);

impl TaskSnapshots {
    fn push(&self, snapshot: SubtaskSnapshot) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(snapshot);
    }

    /// Takes what was collected since the last call.
    pub fn take(&self) -> Vec<SubtaskSnapshot> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A stateful operator subtask's link to checkpoints: where its snapshot goes, what it
/// restores from, which key groups it owns, and which checkpoint completed last.
#[derive(Clone)]
pub struct StateContext {
    pub(crate) uid: String,
    pub(crate) name: String,
    pub(crate) subtask: usize,
    pub(crate) parallelism: usize,
    pub(crate) max_parallelism: usize,
    pub(crate) parts: TaskSnapshots,
    pub(crate) restored: Option<Arc<RestoredState>>,
    pub(crate) completed: Arc<AtomicU64>,
    /// With incremental checkpoints on, the id of the checkpoint the next one builds on (0:
    /// none, the next one is full).
    pub(crate) incremental_base: Option<Arc<AtomicU64>>,
}

impl StateContext {
    /// The key groups this subtask owns.
    pub fn key_groups(&self) -> KeyGroupRange {
        KeyGroupRange::of_subtask(self.subtask, self.max_parallelism, self.parallelism)
    }

    /// The number of key groups.
    pub fn max_parallelism(&self) -> usize {
        self.max_parallelism
    }

    /// Whether the restored snapshot holds state of this operator (a new operator starts empty).
    pub fn has_restored_state(&self) -> bool {
        self.restored.as_ref().is_some_and(|r| r.uids().contains(&self.uid))
    }

    /// This subtask's keyed state from the restored snapshot: its key groups' entries.
    pub fn restored_keyed(&self) -> Result<Vec<KeyedEntries>> {
        match &self.restored {
            Some(restored) => restored.keyed(&self.uid, self.key_groups()),
            None => Ok(Vec::new()),
        }
    }

    /// The restored entries `(key group, key, value)` of this subtask's keyed state `state`.
    pub fn restored_entries(&self, state: &str) -> Result<Vec<KeyedEntry>> {
        Ok(self.restored_keyed()?.into_iter().filter(|e| e.state == state).flat_map(|e| e.entries).collect())
    }

    /// This subtask's share of the operator-state list `name` from the restored snapshot.
    pub fn restored_list(&self, name: &str) -> Result<Vec<Vec<u8>>> {
        match &self.restored {
            Some(restored) => restored.list(&self.uid, name, self.subtask, self.parallelism),
            None => Ok(Vec::new()),
        }
    }

    /// Every item of the operator-state list `name` from all old subtasks (for a source whose
    /// subtasks pick the splits they own themselves).
    pub fn restored_list_all(&self, name: &str) -> Result<Vec<Vec<u8>>> {
        match &self.restored {
            Some(restored) => restored.list_all(&self.uid, name),
            None => Ok(Vec::new()),
        }
    }

    /// Puts this subtask's state into the checkpoint whose barrier is being handled.
    pub fn snapshot(&self, keyed: Vec<KeyedEntries>, lists: Vec<SubtaskList>) {
        self.push(keyed, lists, None);
    }

    /// Whether the job takes incremental checkpoints, to which a subtask may hand only what
    /// changed ([`snapshot_changes`](Self::snapshot_changes)).
    pub fn tracks_changes(&self) -> bool {
        self.incremental_base.is_some()
    }

    /// The checkpoint the next incremental checkpoint builds on: what the changes handed to
    /// [`snapshot_changes`](Self::snapshot_changes) must count from. `None`: the next
    /// checkpoint is full ([`snapshot`](Self::snapshot)).
    pub fn incremental_base(&self) -> Option<u64> {
        let base = self.incremental_base.as_ref()?.load(Ordering::Acquire);
        (base > 0).then_some(base)
    }

    /// Puts what this subtask's keyed state changed since
    /// [`incremental_base`](Self::incremental_base) into the checkpoint being taken, with
    /// the states it gives in full (`keyed`, those of `changes.replaced_states`) and its lists.
    pub fn snapshot_changes(&self, keyed: Vec<KeyedEntries>, changes: SubtaskChanges, lists: Vec<SubtaskList>) {
        self.push(keyed, lists, Some(changes));
    }

    fn push(&self, keyed: Vec<KeyedEntries>, lists: Vec<SubtaskList>, changes: Option<SubtaskChanges>) {
        self.parts.push(SubtaskSnapshot {
            uid: self.uid.clone(),
            name: self.name.clone(),
            subtask: self.subtask,
            parallelism: self.parallelism,
            keyed,
            lists,
            changes,
        });
    }

    /// Puts one keyed state of this subtask into the checkpoint being taken (an operator with
    /// a single state).
    pub fn snapshot_keyed(&self, state: &str, entries: Vec<KeyedEntry>) {
        self.snapshot(vec![KeyedEntries { state: state.into(), entries }], Vec::new());
    }

    /// The id of the newest checkpoint known complete (0: none yet).
    pub fn completed_checkpoint(&self) -> u64 {
        self.completed.load(Ordering::Acquire)
    }
}
