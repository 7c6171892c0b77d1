//! sled calls with a time limit.
//!
//! sled 0.34 can block for good when its disk fails under it: a flush waits on a condition
//! variable for a log write that never completes, and dropping a database flushes. A job
//! master (or the `eddy` CLI) blocked there hangs with 0 % CPU and says nothing. So the calls
//! that write or wait for the disk — opening a snapshot (sled writes recovery files even to
//! read one), flushing, and closing — run on a helper thread, and the caller waits for at
//! most a limit. Past it the caller gets [`StateError::Storage`] naming the call and the
//! directory, and the helper thread is left behind: it may still finish, or stay blocked
//! holding the snapshot's lock, which later opens of that snapshot report as
//! [`StateError::SnapshotLocked`].

use std::path::Path;
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::time::Duration;

use super::guard::catch_panic;
use crate::error::{Result, StateError};

/// How long opening a snapshot may take: sled reads its whole log to recover it, so this is
/// generous (a 10 M entry snapshot opens in about a second).
pub(crate) const OPEN_LIMIT: Duration = Duration::from_secs(600);

/// How long a flush or a close may take: each writes at most sled's last buffers and syncs.
pub(crate) const SYNC_LIMIT: Duration = Duration::from_secs(60);

/// Runs `f`, a sled call on the snapshot at `path`, on a helper thread and waits at most
/// `limit` for it; a panic in it is an error too (see [`catch_panic`]).
pub(crate) fn within<T, F>(path: &Path, doing: &'static str, limit: Duration, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let (answer, answered) = sync_channel(1);
    let owned = path.to_path_buf();
    std::thread::Builder::new()
        .name("eddy-sled-call".into())
        .spawn(move || {
            let _ = answer.send(catch_panic(&owned, doing, f));
        })
        .map_err(|e| StateError::Storage {
            path: path.to_path_buf(),
            problem: format!("cannot start a thread for {doing} ({e}); the process is out of resources"),
        })?;
    match answered.recv_timeout(limit) {
        Ok(result) => result,
        Err(RecvTimeoutError::Timeout) => Err(StateError::Storage {
            path: path.to_path_buf(),
            problem: format!(
                "sled did not finish {doing} within {} s: its disk may be full, failing or stalled; \
                 check free space and the disk's health, then retry (the stalled call is left running \
                 and may keep this snapshot locked)",
                limit.as_secs_f64()
            ),
        }),
        Err(RecvTimeoutError::Disconnected) => Err(StateError::Storage {
            path: path.to_path_buf(),
            problem: format!("the thread {doing} ended without an answer"),
        }),
    }
}

/// Closes sled handles (dropping them flushes) within [`SYNC_LIMIT`].
pub(crate) fn close<T: Send + 'static>(path: &Path, handles: T) -> Result<()> {
    within(path, "closing the database", SYNC_LIMIT, move || {
        drop(handles);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_call_that_never_returns_is_an_error_after_the_limit() {
        let started = Instant::now();
        let result: Result<()> = within(Path::new("/snapshots/chk-1"), "flushing", Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_secs(30));
            Ok(())
        });
        let message = result.unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(5), "waited {:?}", started.elapsed());
        assert!(message.contains("/snapshots/chk-1") && message.contains("did not finish flushing"), "{message}");
    }

    #[test]
    fn answers_and_panics_come_back() {
        let path = Path::new("/snapshots/chk-2");
        assert_eq!(within(path, "reading", SYNC_LIMIT, || Ok(7)).unwrap(), 7);
        let panicked: Result<()> = within(path, "reading", SYNC_LIMIT, || panic!("page 3 is gone"));
        assert!(panicked.unwrap_err().to_string().contains("page 3 is gone"));
    }
}
