//! One tokio runtime for connectors' async clients, shared by every sink in the process.
//!
//! eddy runs each subtask on a plain OS thread and its sinks are synchronous: `write` returns
//! when the record is taken care of. Clients such as `object_store` are async. This module
//! bridges the two in the simplest way that keeps backpressure: a subtask *blocks* on the
//! future it needs ([`block_on`]), while long-running work (a part upload) is [`spawn`]ed and
//! awaited later, so that encoding and uploading overlap.
//!
//! The runtime is created on first use, with a few worker threads named `eddy-io` (I/O waits,
//! not CPU work, run there), and lives as long as the process. Nothing here knows about files:
//! any connector crate can use it.
//!
//! ```
//! let answer = eddy_files::io_runtime::block_on(async { 6 * 7 }).unwrap();
//! assert_eq!(answer, 42);
//! ```

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

/// At most this many worker threads: they wait on sockets and files, they do not compute.
const MAX_WORKERS: usize = 4;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The shared runtime's handle, created on first use.
pub fn handle() -> Result<Handle, RuntimeError> {
    let runtime = RUNTIME.get_or_init(|| {
        let workers = std::thread::available_parallelism().map_or(2, usize::from).clamp(2, MAX_WORKERS);
        Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("eddy-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    match runtime {
        Ok(runtime) => Ok(runtime.handle().clone()),
        Err(e) => Err(RuntimeError(e.clone())),
    }
}

/// Runs `future` to completion on the shared runtime and returns its output, blocking the
/// calling thread. Safe to call from inside another tokio runtime too (e.g. a job started from
/// `async fn main`): the future then runs on a helper thread instead of nesting runtimes.
pub fn block_on<F>(future: F) -> Result<F::Output, RuntimeError>
where
    F: Future + Send,
    F::Output: Send,
{
    let handle = handle()?;
    if Handle::try_current().is_err() {
        return Ok(handle.block_on(future));
    }
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new().name("eddy-io-block".into());
        let joined = helper.spawn_scoped(scope, || handle.block_on(future)).map(|thread| thread.join());
        match joined {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(e) => Err(RuntimeError(format!("cannot start a helper thread: {e}"))),
        }
    })
}

/// Starts `future` on the shared runtime; await (or [`block_on`]) the handle for its output.
pub fn spawn<F>(future: F) -> Result<JoinHandle<F::Output>, RuntimeError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Ok(handle()?.spawn(future))
}

/// The shared runtime could not be started (the process is out of threads or file handles).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot start the I/O runtime: {0}")]
pub struct RuntimeError(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_work_runs_on_the_shared_runtime() {
        let task = spawn(async { std::thread::current().name().map(String::from) }).unwrap();
        let name = block_on(task).unwrap().unwrap();
        assert_eq!(name.as_deref(), Some("eddy-io"));
    }

    #[test]
    fn block_on_inside_another_runtime_does_not_panic() {
        let outer = Builder::new_current_thread().build().unwrap();
        let inner = outer.block_on(async { block_on(async { 1 + 1 }) });
        assert_eq!(inner.unwrap(), 2);
    }
}
