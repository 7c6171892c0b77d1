//! One operator's part of a checkpoint, as the runtime collects it from the operator's
//! subtasks: keyed state by key group, plus operator state as lists of items.

use serde::{Deserialize, Serialize};

/// The keyed entries of one named state: `(key group, key bytes, value bytes)`.
///
/// Keys are bincode bytes of the key (plus, for map-like state, whatever the operator appends);
/// values are opaque bytes the operator decodes itself. Restoring at another parallelism hands
/// each key group's entries to the subtask that now owns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyedEntries {
    /// The state's name, unique within its operator.
    pub state: String,
    /// The entries, in no particular order.
    pub entries: Vec<(u16, Vec<u8>, Vec<u8>)>,
}

/// How an operator-state list is shared out when a job restores at another parallelism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Redistribution {
    /// The items of all subtasks are pooled and dealt round robin (a source's splits, a
    /// sink's pending transactions): each item goes to exactly one new subtask.
    Split,
    /// Every new subtask gets all items of the old subtask 0 (broadcast state, the same on
    /// every subtask).
    Broadcast,
}

/// A named list of operator state (not keyed): items are opaque bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntries {
    /// The list's name, unique within its operator.
    pub name: String,
    /// How the items are shared out on restore.
    pub redistribution: Redistribution,
    /// The items, per old subtask in subtask order (`items[s]` came from subtask `s`).
    pub items: Vec<Vec<Vec<u8>>>,
}

/// Everything one operator (all its subtasks) put into a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorSnapshot {
    /// The operator's stable id, which a restore matches operators by.
    pub uid: String,
    /// Its display name (for `eddy savepoint info` and error messages).
    pub name: String,
    /// Its parallelism when the snapshot was taken.
    pub parallelism: usize,
    /// Keyed state, per state name.
    pub keyed: Vec<KeyedEntries>,
    /// Operator state, per list name.
    pub lists: Vec<ListEntries>,
}

/// Whether a snapshot is a checkpoint (automatic, for recovery) or a savepoint (manual).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotKind {
    /// Taken by the coordinator every interval; the newest complete one is used on failure.
    Checkpoint,
    /// Triggered by the user; self-contained and portable.
    Savepoint,
}

/// What describes a snapshot besides its operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// The job's name.
    pub job: String,
    /// The checkpoint id (savepoints take the id of the barrier that made them).
    pub id: u64,
    /// Checkpoint or savepoint.
    pub kind: SnapshotKind,
    /// Wall time the snapshot was triggered, ms since the epoch.
    pub created_ms: i64,
    /// The job's number of key groups; a restore must use the same.
    pub max_parallelism: usize,
    /// Whether every source had ended when it was taken (a final checkpoint).
    pub finished: bool,
}
