//! The transactional sinks of a partition task that write elsewhere than its topics (an
//! unmarked `collect()`, an exactly-once file sink): the transactions they pre-committed for
//! a checkpoint are committed once the caller reports that checkpoint committed, and again
//! (commits are idempotent) when a task restores it — as the job master commits them in one
//! process. Leftovers of failed tasks are not cleaned up here: a sink's committer serves every
//! task of the job, and one task cannot tell another's leftovers from its own.

use std::sync::Arc;

use eddy_core::{Error, Result};
use eddy_state::OperatorSnapshot;

use crate::checkpoint::coordinator::pending_transactions;
use crate::checkpoint::TxnCommitter;
use crate::graph::{JobGraph, NodeId};

/// The committers of a task's transactional sinks, and its snapshots not yet committed.
pub(super) struct Transactions {
    /// By the sink's uid.
    committers: Vec<(String, Arc<dyn TxnCommitter>)>,
    /// Each snapshot not yet committed: its checkpoint and each committer's transactions.
    snapshots: Vec<(u64, Vec<Vec<Vec<u8>>>)>,
}

impl Transactions {
    /// The transactional sinks among `nodes` that the task runs as they are (not replaced by
    /// an output topic's writer).
    pub(super) fn of(graph: &JobGraph, nodes: &[NodeId]) -> Self {
        let committers = nodes
            .iter()
            .map(|&node| &graph.nodes[node])
            .filter(|n| n.output_topic.is_none())
            .filter_map(|n| Some((n.uid.clone()?, n.committer.clone()?)))
            .collect();
        Transactions { committers, snapshots: Vec::new() }
    }

    /// Keeps what the sinks pre-committed for `checkpoint`, until it commits.
    pub(super) fn snapshot(&mut self, checkpoint: u64, operators: &[OperatorSnapshot]) {
        if !self.committers.is_empty() {
            let txns = self.committers.iter().map(|(uid, _)| pending_transactions(operators, uid)).collect();
            self.snapshots.push((checkpoint, txns));
        }
    }

    /// `checkpoint` committed: commits what the sinks pre-committed for it and before it.
    pub(super) fn committed(&mut self, checkpoint: u64) -> Result<()> {
        let (done, later) = std::mem::take(&mut self.snapshots).into_iter().partition(|(id, _)| *id <= checkpoint);
        self.snapshots = later;
        done.into_iter().try_for_each(|(id, txns)| self.commit(id, &txns))
    }

    /// A restored checkpoint's transactions, committed again in case the task that took it
    /// failed before it could.
    pub(super) fn restore(&self, checkpoint: u64, operators: &[OperatorSnapshot]) -> Result<()> {
        let txns: Vec<_> = self.committers.iter().map(|(uid, _)| pending_transactions(operators, uid)).collect();
        self.commit(checkpoint, &txns)
    }

    fn commit(&self, checkpoint: u64, txns: &[Vec<Vec<u8>>]) -> Result<()> {
        for ((uid, committer), txns) in self.committers.iter().zip(txns) {
            for txn in txns {
                committer.commit(txn).map_err(|e| {
                    Error::Checkpoint(format!("sink '{uid}' cannot commit checkpoint {checkpoint}: {e}"))
                })?;
            }
        }
        Ok(())
    }
}
