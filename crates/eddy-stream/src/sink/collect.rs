//! Collecting a stream into memory: for tests, and for services that embed a bounded job.
//! It is transactional: in a checkpointed job a record shows up once its checkpoint is
//! complete, and never twice after a restart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use eddy_core::{BoxError, Timestamp};

use super::two_phase::{Committer, NewerCommits, TwoPhaseCommitSink};

/// Records of pre-committed transactions, by transaction id.
type Staged<T> = Mutex<HashMap<u64, Vec<T>>>;

/// The records a `collect()` sink received, shared by all its subtasks.
pub struct Collected<T> {
    items: Arc<Mutex<Vec<T>>>,
    staged: Arc<Staged<T>>,
    next_txn: Arc<AtomicU64>,
    /// Whether anything was committed: a restore can only meet commits of this process.
    committed: Arc<AtomicBool>,
}

impl<T> Clone for Collected<T> {
    fn clone(&self) -> Self {
        Collected {
            items: self.items.clone(),
            staged: self.staged.clone(),
            next_txn: self.next_txn.clone(),
            committed: self.committed.clone(),
        }
    }
}

impl<T> Default for Collected<T> {
    fn default() -> Self {
        Collected { items: Arc::default(), staged: Arc::default(), next_txn: Arc::default(), committed: Arc::default() }
    }
}

impl<T> Collected<T> {
    /// Takes everything committed so far (in arrival order per subtask and checkpoint).
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.items.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// One subtask's sink.
    pub(crate) fn sink(&self) -> CollectSink<T> {
        CollectSink { open: Vec::new(), target: self.clone() }
    }

    fn staged(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<T>>> {
        self.staged.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Without checkpointing: straight into the shared list.
impl<T: Send> super::Sink<T> for Collected<T> {
    fn write(&mut self, value: T, _: Timestamp) -> Result<(), BoxError> {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).push(value);
        Ok(())
    }
}

/// One subtask of a `collect()` sink: records of the open transaction.
pub(crate) struct CollectSink<T> {
    open: Vec<T>,
    target: Collected<T>,
}

impl<T: Send> TwoPhaseCommitSink<T> for CollectSink<T> {
    type Txn = u64;

    fn write(&mut self, value: T, _: Timestamp) -> Result<(), BoxError> {
        self.open.push(value);
        Ok(())
    }

    fn pre_commit(&mut self, _checkpoint: u64) -> Result<Option<u64>, BoxError> {
        if self.open.is_empty() {
            return Ok(None);
        }
        let txn = self.target.next_txn.fetch_add(1, Ordering::Relaxed);
        self.target.staged().insert(txn, std::mem::take(&mut self.open));
        Ok(Some(txn))
    }
}

impl<T: Send> Committer<u64> for Collected<T> {
    fn commit(&self, txn: &u64) -> Result<(), BoxError> {
        // Already gone: committed before (commits repeat after a restore).
        if let Some(records) = self.staged().remove(txn) {
            self.items.lock().unwrap_or_else(|e| e.into_inner()).extend(records);
            self.committed.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    fn abort(&self, txn: &u64) -> Result<(), BoxError> {
        self.staged().remove(txn);
        Ok(())
    }

    fn clean_up(&self, restored: &[u64]) -> Result<(), BoxError> {
        self.staged().retain(|txn, _| restored.contains(txn));
        Ok(())
    }

    /// Nothing is newer in a process that committed nothing yet (a restore in a new one);
    /// otherwise records taken out cannot be told apart, so it cannot say.
    fn newer_commits(&self, _: u64, _: &[u64]) -> Result<NewerCommits, BoxError> {
        Ok(match self.committed.load(Ordering::Relaxed) {
            false => NewerCommits::Nothing,
            true => NewerCommits::Untracked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_collect_that_committed_something_cannot_tell_what_is_newer() {
        let collected = Collected::<u32>::default();
        assert_eq!(collected.newer_commits(3, &[]).unwrap(), NewerCommits::Nothing);
        let mut sink = collected.sink();
        sink.write(7, 0).unwrap();
        let txn = sink.pre_commit(4).unwrap().unwrap();
        assert_eq!(collected.newer_commits(3, &[]).unwrap(), NewerCommits::Nothing, "pre-committed is not visible");
        collected.commit(&txn).unwrap();
        assert_eq!(collected.newer_commits(3, &[]).unwrap(), NewerCommits::Untracked);
        assert_eq!(collected.take(), vec![7]);
    }
}
