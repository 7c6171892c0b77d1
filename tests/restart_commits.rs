//! A sink whose commit fails once: the job restarts from the checkpoint whose commit failed,
//! and that checkpoint's transactions must still be committed, in the same process, by the
//! restart itself (as a fresh start with `restore_from` does). Otherwise its records are lost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eddy::prelude::*;
use eddy::sink::{Committer, TwoPhaseCommitSink};

/// A transaction: the records one subtask wrote for one checkpoint.
type Txn = (u64, usize, Vec<u64>);

/// Buffers records; each pre-commit hands them over as one transaction.
struct Buffering {
    subtask: usize,
    open: Vec<u64>,
}

impl TwoPhaseCommitSink<u64> for Buffering {
    type Txn = Txn;

    fn write(&mut self, value: u64, _: Timestamp) -> Result<(), BoxError> {
        self.open.push(value);
        Ok(())
    }

    fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<Txn>, BoxError> {
        Ok((!self.open.is_empty()).then(|| (checkpoint, self.subtask, std::mem::take(&mut self.open))))
    }
}

/// Committed records by (checkpoint, subtask).
type Committed = Arc<Mutex<BTreeMap<(u64, usize), Vec<u64>>>>;

/// Keeps committed transactions by (checkpoint, subtask), so a repeated commit changes
/// nothing; its first commit fails.
#[derive(Clone, Default)]
struct FailingOnce {
    committed: Committed,
    failed: Arc<AtomicBool>,
}

impl Committer<Txn> for FailingOnce {
    fn commit(&self, (checkpoint, subtask, records): &Txn) -> Result<(), BoxError> {
        if !self.failed.swap(true, Ordering::SeqCst) {
            return Err("the store is unreachable (injected)".into());
        }
        self.committed.lock().unwrap().insert((*checkpoint, *subtask), records.clone());
        Ok(())
    }

    fn abort(&self, _: &Txn) -> Result<(), BoxError> {
        Ok(())
    }

    fn clean_up(&self, _: &[Txn]) -> Result<(), BoxError> {
        Ok(())
    }
}

#[test]
fn a_failed_commit_is_retried_by_the_restart() {
    let count = 20_000u64;
    let committer = FailingOnce::default();
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(50)));
    env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 3, delay: Duration::from_millis(10) });
    env.generate(Some(count), |i| i)
        .uid("numbers")
        .map(|i| {
            if i % 500 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            i
        })
        .add_two_phase_sink("failing", |subtask, _| Ok(Buffering { subtask, open: Vec::new() }), committer.clone())
        .uid("sink");
    let result = env.execute("failing commit").unwrap().wait().unwrap();
    assert_eq!(result.restarts, 1, "the failed commit restarts the job once");
    let mut records: Vec<u64> = committer.committed.lock().unwrap().values().flatten().copied().collect();
    records.sort_unstable();
    let total = records.len();
    records.dedup();
    assert_eq!(total, records.len(), "no record committed twice");
    assert_eq!(records.len() as u64, count, "every record committed: none lost with the failed commit");
}
