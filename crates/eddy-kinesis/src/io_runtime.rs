//! The tokio runtime the Kinesis client runs on, and how a subtask thread uses it.
//!
//! eddy runs each source subtask on its own OS thread and polls its reader synchronously; the
//! AWS SDK is async. One runtime per process, started on first use with two worker threads
//! (`eddy-kinesis-io`), runs every reader's calls: a reader [`spawn`]s its `GetRecords` calls,
//! one per shard that is due, and collects the answers from a channel with a timeout, so a
//! slow or throttled shard never stalls the others or the subtask's checkpoints. Calls wait
//! on sockets, not on the CPU, so two threads serve any parallelism.
//!
//! [`block_on`] is for the few calls a reader must finish before it can go on (the shard
//! listing when it opens); it works from any thread, also from inside another tokio runtime
//! (a job started from `async fn main`).

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

/// Worker threads: Kinesis calls wait on the network, so few are enough.
const WORKERS: usize = 2;

/// The shared runtime, or why it could not start.
fn runtime() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .thread_name("eddy-kinesis-io")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the Kinesis I/O runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Starts `future` on the shared runtime.
pub(crate) fn spawn<F>(future: F) -> Result<(), String>
where
    F: Future<Output = ()> + Send + 'static,
{
    runtime()?.spawn(future);
    Ok(())
}

/// Runs `future` on the shared runtime and blocks this thread until it is done.
pub(crate) fn block_on<F>(future: F) -> Result<F::Output, String>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (done, result) = std::sync::mpsc::sync_channel(1);
    spawn(async move {
        let _ = done.send(future.await);
    })?;
    result.recv().map_err(|_| "a Kinesis call panicked".to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn block_on_works_inside_another_runtime() {
        let outer = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let answer = outer.block_on(async { super::block_on(async { 6 * 7 }).unwrap() });
        assert_eq!(answer, 42);
    }
}
