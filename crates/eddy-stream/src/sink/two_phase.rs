//! Two-phase-commit sinks: output that becomes visible only when a checkpoint completes, so a
//! job that fails and replays from its last checkpoint never shows a record twice.
//!
//! Each subtask writes into an open *transaction*. At a checkpoint barrier the subtask
//! *pre-commits* it (makes it durable but not visible) and the transaction goes into the
//! checkpoint. When the checkpoint is complete, the job's [`Committer`] commits every
//! transaction in it; after a failure the job restores the last complete checkpoint, commits
//! its transactions again (commits are idempotent) and discards everything else. This is
//! Flink's `TwoPhaseCommitSinkFunction` / Sink V2 committer split.

use eddy_core::{BoxError, Timestamp};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// One subtask of a transactional sink.
pub trait TwoPhaseCommitSink<T>: Send {
    /// A pre-committed transaction: enough to commit or abort it later, from another thread or
    /// another process (it is stored in checkpoints).
    type Txn: Serialize + DeserializeOwned + Send + 'static;

    /// Writes one record into the open transaction.
    fn write(&mut self, value: T, timestamp: Timestamp) -> Result<(), BoxError>;

    /// Closes the open transaction for checkpoint `checkpoint`: durable, still invisible.
    /// `None` when nothing was written since the last pre-commit.
    fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<Self::Txn>, BoxError>;
}

/// Commits and discards a sink's pre-committed transactions; one per sink, shared by the job.
pub trait Committer<Txn>: Send + Sync {
    /// Makes a transaction's output visible. Must be idempotent: after a restore a
    /// transaction that was already committed is committed again.
    fn commit(&self, txn: &Txn) -> Result<(), BoxError>;

    /// Discards a transaction that will never be committed.
    fn abort(&self, txn: &Txn) -> Result<(), BoxError>;

    /// Called once before a job (or a restarted attempt) starts, with every transaction of the
    /// checkpoint it restores from (empty on a fresh start) after they were committed: removes
    /// whatever earlier attempts left behind that is not among them (open or pre-committed
    /// transactions of a checkpoint that never completed).
    fn clean_up(&self, restored: &[Txn]) -> Result<(), BoxError>;
}
