//! The job-side half of a transactional sink, with its transaction type erased: the
//! coordinator commits what a completed checkpoint holds, reconciles the sink's output with
//! the checkpoint a job restores from, and cleans up before every attempt.

use eddy_core::BoxError;

/// The operator-state list in which a transactional sink keeps its pre-committed transactions.
pub const PENDING_TRANSACTIONS: &str = "pending-transactions";

/// What a transactional sink found, before a restored attempt starts, of its own committed
/// output that the checkpoint restored from does not cover: output of later checkpoints,
/// which the restored job is about to produce again.
///
/// This happens when a restore skips newer checkpoints (damaged, deleted) or restores an
/// older snapshot than the newest, e.g. a checkpoint after a stop-with-savepoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewerCommits {
    /// The sink does not record what it committed, so it cannot tell (the default).
    Untracked,
    /// Everything the sink made visible is covered by the restored checkpoint.
    Nothing,
    /// The sink found such output and can take it back (make it invisible without
    /// destroying it); the job then asks it to, and the restored job produces it again, once.
    Revocable {
        /// How many commits (files, transactions) there are.
        commits: usize,
        /// What they are, for the operator.
        description: String,
    },
    /// The sink found such output and cannot take it back (a committed Kafka transaction,
    /// say): the restored job would produce it again, so it would show up twice. The job
    /// refuses to start unless duplicate output is allowed.
    Irrevocable {
        /// How many commits (transactions, …) there are.
        commits: usize,
        /// What they are, for the operator.
        description: String,
    },
}

/// Commits, aborts and cleans up one sink's transactions, given as the bytes the sink stored.
pub trait TxnCommitter: Send + Sync {
    /// Makes a pre-committed transaction visible (idempotent).
    fn commit(&self, txn: &[u8]) -> Result<(), BoxError>;
    /// Discards a pre-committed transaction.
    fn abort(&self, txn: &[u8]) -> Result<(), BoxError>;
    /// Before an attempt starts: removes leftovers that are not among the restored transactions.
    fn clean_up(&self, restored: &[Vec<u8>]) -> Result<(), BoxError>;
    /// Before an attempt restored from `checkpoint` starts (before its transactions
    /// `restored` are committed again): the output this sink committed that the checkpoint
    /// does not cover. Changes nothing. The default, for sinks that keep no record of their
    /// commits, is [`NewerCommits::Untracked`].
    fn newer_commits(&self, checkpoint: u64, restored: &[Vec<u8>]) -> Result<NewerCommits, BoxError> {
        let _ = (checkpoint, restored);
        Ok(NewerCommits::Untracked)
    }
    /// Takes back what [`newer_commits`](Self::newer_commits) found
    /// [`Revocable`](NewerCommits::Revocable), and says what it did. Only called after that
    /// answer, once every sink of the job agreed to the restore.
    fn roll_back(&self, checkpoint: u64, restored: &[Vec<u8>]) -> Result<String, BoxError> {
        let _ = (checkpoint, restored);
        Err("this sink cannot roll back its output".into())
    }
}
