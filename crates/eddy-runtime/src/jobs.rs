//! The jobs an environment has started, in start order, for whatever observes them (the
//! metrics endpoint of the `eddy-metrics-http` crate, a service's own status page).
//!
//! A job's id here is its position: the first job an environment starts is `0`. Handles are
//! kept after a job ends, so its final metrics stay readable.

use std::sync::{Arc, Mutex};

use crate::JobHandle;

/// The jobs an environment started; cheap to clone, every clone sees the same list.
#[derive(Clone, Default)]
pub struct Jobs(Arc<Mutex<Vec<JobHandle>>>);

impl Jobs {
    /// Adds a started job; returns its id.
    pub fn add(&self, job: JobHandle) -> usize {
        let mut jobs = self.0.lock().unwrap_or_else(|e| e.into_inner());
        jobs.push(job);
        jobs.len() - 1
    }

    /// Every job with its id, oldest first.
    pub fn all(&self) -> Vec<(usize, JobHandle)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().enumerate().collect()
    }

    /// The job with id `id`.
    pub fn get(&self, id: usize) -> Option<JobHandle> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }
}
