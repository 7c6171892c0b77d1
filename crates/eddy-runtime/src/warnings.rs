//! What a job met that did not stop it but that its operator must hear about: checkpoints a
//! restore skipped and why, output a restore rolled back or left visible twice, failures the
//! job restarted after. Each is logged through `tracing` when it happens and kept, so an
//! embedding program can show them ([`JobHandle::warnings`](crate::JobHandle::warnings),
//! [`JobResult::warnings`](crate::JobResult::warnings)).

use std::sync::{Arc, Mutex};

/// A job's warnings so far, shared by the job master and the job's handle.
#[derive(Debug, Clone, Default)]
pub struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    /// Logs `warning` as an error (something was lost or skipped) and keeps it.
    pub fn error(&self, warning: String) {
        tracing::error!("{warning}");
        self.keep(warning);
    }

    /// Logs `warning` as a warning and keeps it.
    pub fn warn(&self, warning: String) {
        tracing::warn!("{warning}");
        self.keep(warning);
    }

    /// Every warning so far, oldest first.
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Keeps `warning` without logging it (its caller logged it with structured fields).
    pub(crate) fn keep(&self, warning: String) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(warning);
    }
}
