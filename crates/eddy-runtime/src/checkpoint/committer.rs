//! The job-side half of a transactional sink, with its transaction type erased: the
//! coordinator commits what a completed checkpoint holds, and cleans up before a start.

use eddy_core::BoxError;

/// The operator-state list in which a transactional sink keeps its pre-committed transactions.
pub const PENDING_TRANSACTIONS: &str = "pending-transactions";

/// Commits, aborts and cleans up one sink's transactions, given as the bytes the sink stored.
pub trait TxnCommitter: Send + Sync {
    /// Makes a pre-committed transaction visible (idempotent).
    fn commit(&self, txn: &[u8]) -> Result<(), BoxError>;
    /// Discards a pre-committed transaction.
    fn abort(&self, txn: &[u8]) -> Result<(), BoxError>;
    /// Before an attempt starts: removes leftovers that are not among the restored transactions.
    fn clean_up(&self, restored: &[Vec<u8>]) -> Result<(), BoxError>;
}
