//! Where a job is in its life, readable at any time without consuming its handle.
//!
//! The job master moves a job through these states; [`JobHandle::status`](crate::JobHandle::status)
//! reads them. They follow Flink's `JobStatus`, folded to what an embedding program acts on:
//! a job runs, restarts after a failure (as often as its restart strategy allows), and ends
//! finished (its input ended, it was drained with `stop`, or stopped with a savepoint),
//! failed, or cancelled.

use std::sync::{Arc, Mutex};

use eddy_core::Error;

/// A job's state (Flink's `JobStatus`: `RUNNING`, `RESTARTING`, `FINISHED`, `FAILED`,
/// `CANCELED`).
#[derive(Debug, Clone)]
pub enum JobStatus {
    /// Its subtasks are running.
    Running,
    /// An attempt failed and the job is starting again from its newest checkpoint; this is its
    /// `n`th restart.
    Restarting(usize),
    /// It ended normally: its input ended, it was drained (`stop`), or it stopped with a savepoint.
    Finished,
    /// It failed beyond what its restart strategy allows; the root cause.
    Failed(Error),
    /// It was cancelled (`cancel`).
    Cancelled,
}

impl JobStatus {
    /// Whether the job has ended (finished, failed or cancelled).
    pub fn is_terminal(&self) -> bool {
        matches!(self, JobStatus::Finished | JobStatus::Failed(_) | JobStatus::Cancelled)
    }

    /// The final status of a job that ended with `outcome`.
    pub(crate) fn of<T>(outcome: &Result<T, Error>) -> Self {
        match outcome {
            Ok(_) => JobStatus::Finished,
            Err(Error::Cancelled) => JobStatus::Cancelled,
            Err(error) => JobStatus::Failed(error.clone()),
        }
    }
}

/// The status shared by the job master (which writes it) and every handle of the job.
#[derive(Debug, Clone)]
pub(crate) struct StatusCell(Arc<Mutex<JobStatus>>);

impl Default for StatusCell {
    fn default() -> Self {
        StatusCell(Arc::new(Mutex::new(JobStatus::Running)))
    }
}

impl StatusCell {
    pub(crate) fn get(&self) -> JobStatus {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set(&self, status: JobStatus) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }
}
