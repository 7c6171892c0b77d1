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

/// Worker threads of the shared runtime: I/O needs few, whatever the job's parallelism.
const MAX_WORKERS: usize = 4;

/// The shared runtime, started on first use; it lives as long as the process.
///
/// # Panics
/// If the operating system refuses to start its threads.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_WORKERS);
        Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name_fn(|| {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                format!("eddy-io-{}", NEXT.fetch_add(1, Ordering::Relaxed))
            })
            .enable_all()
            .build()
            .expect("the shared I/O runtime cannot start its threads")
    })
}

/// Runs `future` on the shared runtime; its result comes back through the handle.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().spawn(future)
}

/// A handle to the shared runtime, to spawn on it or enter its context.
pub fn handle() -> &'static Handle {
    static HANDLE: OnceLock<Handle> = OnceLock::new();
    HANDLE.get_or_init(|| runtime().handle().clone())
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
