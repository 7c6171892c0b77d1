//! The one tokio runtime that eddy shares for async I/O (connectors, channel sources and
//! sinks, `map_async`), and how a subtask thread waits on it. Feature `tokio`.
//!
//! eddy runs each subtask on its own OS thread, and an operator is a synchronous
//! [`Output`](eddy_core::Output): it is called with a batch and returns when done. An HTTP
//! client such as reqwest is async. The two meet here:
//!
//! - **One shared runtime**, started on first use with a few worker threads (`eddy-io-N`),
//!   runs every connector's requests. A runtime per sink subtask would start
//!   `parallelism × sinks` thread pools that mostly sleep, and could not share connection
//!   pools; async I/O needs few threads however many requests are in flight.
//! - **The subtask thread never runs async code.** It [`spawn`]s a request and carries on
//!   filling the next batch; when it must have a result (a full in-flight window, a
//!   checkpoint barrier, the end of input) it blocks in [`wait`]. That block is the
//!   backpressure: the subtask stops taking batches, its bounded input channel fills, and
//!   upstream slows to the cluster's pace. Memory stays bounded by the in-flight window.
//! - **Waits end on cancellation.** When another subtask fails or the job is cancelled,
//!   [`wait`] returns `None` within [`POLL`], so a retrying request never holds up a
//!   restart.
//! - **Calls that must finish first** (listing a stream's shards when a reader opens,
//!   committing a file) use [`block_on`], which works from any thread, also from inside
//!   another tokio runtime (code called while a service's task builds or commits a job).
//!
//! A connector that reports errors instead of panicking starts its work with [`try_spawn`]
//! and [`block_on`]: both say [`IoRuntimeError`] if the runtime cannot start its threads
//! (the process is out of threads), where [`spawn`] and [`runtime`] panic.
//!
//! A job embedded in a service may run its async work on the service's own runtime instead
//! (`StreamEnvironment::set_async_runtime`); this one is for everything else.
//!
//! ```
//! use std::sync::atomic::AtomicBool;
//! use eddy_runtime::io_runtime;
//!
//! let request = io_runtime::spawn(async { 6 * 7 });
//! let cancel = AtomicBool::new(false);
//! assert_eq!(io_runtime::wait(request, &cancel).map(Result::unwrap), Some(42));
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

/// How often a waiting subtask thread checks whether its job was cancelled.
pub const POLL: Duration = Duration::from_millis(50);

/// Worker threads of the shared runtime: I/O needs few, whatever the job's parallelism, but
/// at least two, so one long wait on a socket never leaves the others without a thread.
const WORKERS: std::ops::RangeInclusive<usize> = 2..=4;

/// The shared runtime could not be started: the process is out of threads (or file handles).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot start eddy's shared I/O runtime: {0}; raise the process's thread or file limits")]
pub struct IoRuntimeError(String);

/// The shared runtime, started on first use, or why it could not start.
fn started() -> Result<&'static Runtime, IoRuntimeError> {
    static RUNTIME: OnceLock<Result<Runtime, IoRuntimeError>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Builder::new_multi_thread()
                .worker_threads(cores.clamp(*WORKERS.start(), *WORKERS.end()))
                .thread_name_fn(|| {
                    static NEXT: AtomicUsize = AtomicUsize::new(0);
                    format!("eddy-io-{}", NEXT.fetch_add(1, Ordering::Relaxed))
                })
                .enable_all()
                .build()
                .map_err(|e| IoRuntimeError(e.to_string()))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The shared runtime, started on first use; it lives as long as the process.
///
/// # Panics
/// If the operating system refuses to start its threads (see [`block_on`] and [`try_spawn`]
/// for the calls that report it instead).
pub fn runtime() -> &'static Runtime {
    started().unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `future` on the shared runtime; its result comes back through the handle.
///
/// # Panics
/// If the runtime cannot start, as [`runtime`].
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().spawn(future)
}

/// Runs `future` on the shared runtime, or says why the runtime cannot start.
pub fn try_spawn<F>(future: F) -> Result<JoinHandle<F::Output>, IoRuntimeError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Ok(started()?.spawn(future))
}

/// A handle to the shared runtime, to spawn on it or enter its context.
///
/// # Panics
/// If the runtime cannot start, as [`runtime`].
pub fn handle() -> &'static Handle {
    static HANDLE: OnceLock<Handle> = OnceLock::new();
    HANDLE.get_or_init(|| runtime().handle().clone())
}

/// Runs `future` to completion in the shared runtime's context and returns its output,
/// blocking the calling thread. From a plain thread (a subtask's) the future runs right there;
/// from inside another tokio runtime, where blocking on a runtime panics, it runs on a helper
/// thread while this one waits. A panic inside `future` comes back as a panic here.
pub fn block_on<F>(future: F) -> Result<F::Output, IoRuntimeError>
where
    F: Future + Send,
    F::Output: Send,
{
    let runtime = started()?;
    if Handle::try_current().is_err() {
        return Ok(runtime.block_on(future));
    }
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new().name("eddy-io-block".into());
        let thread = helper.spawn_scoped(scope, || runtime.block_on(future));
        match thread.map(|thread| thread.join()) {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(e) => Err(IoRuntimeError(format!("cannot start a helper thread: {e}"))),
        }
    })
}

/// Blocks this (non-runtime) thread until `future` is done, or returns `None` soon after
/// `cancel` is set.
///
/// # Panics
/// When called from inside an async task: subtask threads are plain threads, never tasks.
pub fn wait<F: Future>(future: F, cancel: &AtomicBool) -> Option<F::Output> {
    runtime().block_on(async {
        let mut future = std::pin::pin!(future);
        loop {
            if let Ok(output) = tokio::time::timeout(POLL, &mut future).await {
                return Some(output);
            }
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
        }
    })
}

/// Blocks this (non-runtime) thread until `future` is done or `limit` has passed (`None`).
/// The future runs in the shared runtime's context, so it may use tokio's timers and I/O.
/// Dropping a future that was not done must be harmless (tokio's `recv`, a stream's `next`).
///
/// # Panics
/// When called from inside an async task.
pub fn wait_at_most<F: Future>(future: F, limit: Duration) -> Option<F::Output> {
    runtime().block_on(async { tokio::time::timeout(limit, future).await.ok() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_cancelled_wait_returns_promptly() {
        let cancel = Arc::new(AtomicBool::new(false));
        let setter = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            setter.store(true, Ordering::Relaxed);
        });
        let start = Instant::now();
        let never = spawn(std::future::pending::<()>());
        assert!(wait(never, &cancel).is_none());
        assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
    }

    #[test]
    fn block_on_works_on_a_plain_thread_and_inside_another_runtime() {
        let borrowed = [6, 7];
        assert_eq!(block_on(async { borrowed.iter().product::<i32>() }).unwrap(), 42);
        let outer = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let inside = outer.block_on(async { block_on(async { std::thread::current().name().map(String::from) }) });
        assert_eq!(inside.unwrap().as_deref(), Some("eddy-io-block"));
    }

    #[test]
    fn try_spawn_runs_on_the_shared_runtime() {
        let task = try_spawn(async { std::thread::current().name().map(String::from) }).unwrap();
        let name = block_on(task).unwrap().unwrap().unwrap();
        assert!(name.starts_with("eddy-io-"), "ran on {name}");
    }

    #[test]
    fn many_threads_share_one_runtime() {
        let threads: Vec<_> = (0..8)
            .map(|i| {
                std::thread::spawn(move || {
                    let cancel = AtomicBool::new(false);
                    let task = spawn(async move {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        (i, std::thread::current().name().map(str::to_string))
                    });
                    wait(task, &cancel).unwrap().unwrap()
                })
            })
            .collect();
        for (i, thread) in threads.into_iter().enumerate() {
            let (n, name) = thread.join().unwrap();
            assert_eq!(n, i);
            assert!(name.unwrap().starts_with("eddy-io-"));
        }
    }
}
