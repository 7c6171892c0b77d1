//! What the sink's tests share: a plain HTTP client to read back what the sink wrote, and a
//! scripted server that answers bulk requests as a test tells it to.

#![allow(dead_code)] // Each test file uses a different part.

pub mod http;
pub mod scripted;

use std::sync::mpsc;
use std::time::Duration;

/// More than any test job needs on a busy machine; a job still running after this has hung.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Runs `job` on its own thread and returns its result, failing the test if it has not
/// finished within [`LIMIT`].
pub fn finishes<R: Send + 'static>(job: impl FnOnce() -> R + Send + 'static) -> R {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || done.send(job()));
    result.recv_timeout(LIMIT).expect("the job hung: it did not end within the limit")
}
