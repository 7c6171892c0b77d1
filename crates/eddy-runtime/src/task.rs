//! A task: one chain subtask's main loop, run on a thread of its own, and what the runtime
//! hands it (the cancel and drain flags, how often processing time advances).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use eddy_core::Result;

/// What a running task's loop needs from the runtime.
pub struct TaskRun {
    /// Set when the job is cancelled or another subtask has failed.
    pub cancel: Arc<AtomicBool>,
    /// Set when the job is drained (`JobHandle::stop`): sources end their input as if it
    /// had run out, and the rest of the job finishes normally behind them.
    pub drain: Arc<AtomicBool>,
    /// How often processing time is advanced (`tick`) when nothing else happens.
    pub tick_interval: Duration,
}

/// A subtask's main loop, run on its own thread.
pub trait Task: Send {
    /// Runs until the input ends, the job is cancelled, or something fails.
    fn run(self: Box<Self>, run: &TaskRun) -> Result<()>;
}
