//! Collecting a stream into memory: for tests, and for services that embed a bounded job.

use std::sync::{Arc, Mutex};

use eddy_core::{BoxError, Timestamp};

use super::Sink;

/// The records a `collect()` sink received, shared by all its subtasks.
pub struct Collected<T> {
    items: Arc<Mutex<Vec<T>>>,
}

impl<T> Clone for Collected<T> {
    fn clone(&self) -> Self {
        Collected { items: self.items.clone() }
    }
}

impl<T> Default for Collected<T> {
    fn default() -> Self {
        Collected { items: Arc::new(Mutex::new(Vec::new())) }
    }
}

impl<T> Collected<T> {
    /// Takes everything collected so far (in arrival order per subtask).
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.items.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl<T: Send> Sink<T> for Collected<T> {
    fn write(&mut self, value: T, _: Timestamp) -> Result<(), BoxError> {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).push(value);
        Ok(())
    }
}
