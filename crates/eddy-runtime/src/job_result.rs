//! What a finished job reports: its name, how long it ran, its final metrics, restarts,
//! checkpoints, the savepoint a stop wrote, and its warnings.

use std::path::PathBuf;
use std::time::Duration;

use crate::metrics::JobMetrics;

/// What a finished job reports.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// The job's name.
    pub name: String,
    /// Wall time from start to the end of the last subtask.
    pub duration: Duration,
    /// Final counter values (records replayed after a restart count again).
    pub metrics: JobMetrics,
    /// How often the job restarted from a checkpoint after a failure.
    pub restarts: usize,
    /// Checkpoints and savepoints completed (including the final checkpoint).
    pub checkpoints: u64,
    /// The savepoint a stop-with-savepoint wrote.
    pub savepoint: Option<PathBuf>,
    /// What the job met that did not stop it (see [`JobHandle::warnings`](crate::JobHandle::warnings)).
    pub warnings: Vec<String>,
}
