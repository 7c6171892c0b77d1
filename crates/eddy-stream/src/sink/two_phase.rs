//! Two-phase-commit sinks: output that becomes visible only when a checkpoint completes, so a
//! job that fails and replays from its last checkpoint never shows a record twice.
//!
//! Each subtask writes into an open *transaction*. At a checkpoint barrier the subtask
//! *pre-commits* it (makes it durable but not visible) and the transaction goes into the
//! checkpoint. When the checkpoint is complete, the job's [`Committer`] commits every
//! transaction in it; after a failure the job restores the last complete checkpoint, commits
//! its transactions again (commits are idempotent) and discards everything else. This is
//! Flink's `TwoPhaseCommitSinkFunction` / Sink V2 committer split.
//!
//! eddy goes one step further than Flink. A restore can start from an *older* checkpoint
//! than the newest one whose output the sink committed: the newest was damaged or deleted,
//! or the job was stopped with a savepoint and is restored from its checkpoint directory.
//! The restored job then produces that output again. So before a restored attempt starts,
//! the job asks every committer what it committed after the restored checkpoint
//! ([`Committer::newer_commits`]). If one cannot take that output back (a committed Kafka
//! transaction) the job refuses to start, unless duplicate output is allowed; otherwise the
//! sinks that can take it back ([`Committer::roll_back`]: the exactly-once file sink moves
//! such files aside) do so.

use eddy_core::{BoxError, Timestamp};
pub use eddy_runtime::checkpoint::NewerCommits;
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

    /// Called before a job (or a restarted attempt) restored from checkpoint `checkpoint`
    /// starts, with that checkpoint's transactions (`restored`, which are then committed
    /// again): the output this sink committed that the checkpoint does not cover — output of
    /// later checkpoints, which the restored job produces again. Must change nothing; see
    /// [`NewerCommits`] for the answers.
    ///
    /// The default answers [`NewerCommits::Untracked`]: the job goes on, with a warning when
    /// the restore skipped newer checkpoints. A sink that can tell should: one that can take
    /// such output back answers [`NewerCommits::Revocable`] and implements
    /// [`roll_back`](Self::roll_back); one that cannot answers
    /// [`NewerCommits::Irrevocable`], and the job refuses to start unless
    /// `allow_duplicate_output` is set.
    fn newer_commits(&self, checkpoint: u64, restored: &[Txn]) -> Result<NewerCommits, BoxError> {
        let _ = (checkpoint, restored);
        Ok(NewerCommits::Untracked)
    }

    /// Takes back the output [`newer_commits`](Self::newer_commits) found
    /// [`Revocable`](NewerCommits::Revocable) (same arguments), so that the restored job's
    /// output replaces it, and says what it did. Called only after every sink of the job
    /// agreed to the restore.
    fn roll_back(&self, checkpoint: u64, restored: &[Txn]) -> Result<String, BoxError> {
        let _ = (checkpoint, restored);
        Err("this sink cannot roll back its output".into())
    }
}
