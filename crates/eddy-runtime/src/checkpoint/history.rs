//! The newest checkpoints of a job, completed and failed, for whoever watches it (Flink's
//! checkpoint history in its web UI and `/jobs/:id/checkpoints`).
//!
//! The coordinator adds a [`CheckpointRecord`] when a checkpoint or savepoint completes or is
//! abandoned; the history keeps the newest [`HISTORY_LEN`] and
//! [`JobHandle::metrics`](crate::JobHandle::metrics) hands a copy out in
//! [`CheckpointStats::history`](crate::CheckpointStats::history). Each record says how long
//! the checkpoint took from trigger to complete, how long the slowest subtask spent aligning
//! its inputs' barriers (Flink's alignment duration: from the first barrier to the last, the
//! time records on the inputs that were already aligned were held back), and how many bytes
//! of state each operator put into it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use eddy_core::Timestamp;
use serde::Serialize;

/// How many checkpoints the history keeps (Flink's `web.checkpoints.history` is 10).
pub const HISTORY_LEN: usize = 20;

/// One checkpoint or savepoint as it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointRecord {
    /// Its id.
    pub id: u64,
    /// `CHECKPOINT` or `SAVEPOINT`.
    pub kind: &'static str,
    /// `COMPLETED` or `FAILED` (Flink's names; failed: abandoned, timed out, or not written).
    pub status: &'static str,
    /// When it was triggered, in ms since the epoch.
    pub trigger_ms: Timestamp,
    /// From trigger to complete (or to being given up), in milliseconds.
    pub duration_ms: u64,
    /// The longest any subtask spent aligning barriers, in milliseconds (0 where every
    /// subtask has one input).
    pub alignment_ms: u64,
    /// Bytes of state (keys and values) in it; `None` when it failed.
    pub size_bytes: Option<u64>,
    /// Bytes of state each operator put into it, in job-graph order of first appearance.
    pub operators: Vec<OperatorStateSize>,
    /// Why it failed.
    pub failure: Option<String>,
}

/// The state one operator put into a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorStateSize {
    /// The operator's name.
    pub operator: String,
    /// Its uid.
    pub uid: String,
    /// Bytes of keys and values over all its subtasks.
    pub size_bytes: u64,
}

/// The newest checkpoints of a job; cheap to clone, every clone sees the same history.
#[derive(Debug, Clone, Default)]
pub struct CheckpointHistory(Arc<Mutex<VecDeque<CheckpointRecord>>>);

impl CheckpointHistory {
    /// Adds `record`, forgetting the oldest beyond [`HISTORY_LEN`].
    pub(crate) fn add(&self, record: CheckpointRecord) {
        let mut records = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() == HISTORY_LEN {
            records.pop_front();
        }
        records.push_back(record);
    }

    /// The records, oldest first.
    pub fn records(&self) -> Vec<CheckpointRecord> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64) -> CheckpointRecord {
        CheckpointRecord {
            id,
            kind: "CHECKPOINT",
            status: "COMPLETED",
            trigger_ms: 0,
            duration_ms: 1,
            alignment_ms: 0,
            size_bytes: Some(0),
            operators: Vec::new(),
            failure: None,
        }
    }

    #[test]
    fn keeps_the_newest_records_oldest_first() {
        let history = CheckpointHistory::default();
        for id in 1..=HISTORY_LEN as u64 + 3 {
            history.add(record(id));
        }
        let ids: Vec<u64> = history.records().iter().map(|r| r.id).collect();
        assert_eq!(ids, (4..=HISTORY_LEN as u64 + 3).collect::<Vec<_>>());
    }
}
