//! Which tokio runtime a job's async functions (`map_async`) run on: the embedding service's
//! own, when it hands one over, or eddy's shared I/O runtime. Feature `tokio`.

use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;

use crate::StreamEnvironment;

/// The runtime chosen for a job, shared by the environment and the operators it builds.
#[derive(Clone, Default)]
pub(crate) struct AsyncRuntime(Arc<Mutex<Option<Handle>>>);

impl AsyncRuntime {
    /// The service's runtime if one was set, else the shared one.
    pub(crate) fn handle(&self) -> Handle {
        let chosen = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        chosen.unwrap_or_else(|| eddy_runtime::io_runtime::handle().clone())
    }
}

impl StreamEnvironment {
    /// Runs the job's async functions (`map_async`) on `runtime` (typically
    /// `tokio::runtime::Handle::current()` in a service) instead of eddy's shared I/O runtime,
    /// so they share the service's connection pools and clients. The runtime must have its
    /// timer enabled when the functions use timers, and must outlive the job: a future whose
    /// runtime shut down never completes and ends as a timeout.
    pub fn set_async_runtime(&self, runtime: Handle) -> &Self {
        *self.async_runtime().0.lock().unwrap_or_else(|e| e.into_inner()) = Some(runtime);
        self
    }
}
