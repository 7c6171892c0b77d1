//! Calls into sled that damaged files can make panic, turned into errors; and sled's errors
//! said plainly.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Once;

use crate::error::{Result, StateError};

thread_local! {
    /// Whether this thread is inside [`catch_panic`], whose panics are reported as errors
    /// and so must not also be printed.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once, a panic hook that stays silent for panics inside [`catch_panic`] and
/// hands every other panic to the hook that was there before.
fn install_quiet_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, a call into sled on the snapshot at `path`, turning a panic (sled panics on
/// some damaged files) into an error that says the files are damaged.
pub(crate) fn catch_panic<T>(path: &Path, doing: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    install_quiet_hook();
    let was_quiet = QUIET.with(|quiet| quiet.replace(true));
    let outcome = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|quiet| quiet.set(was_quiet));
    outcome.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(StateError::Checkpoint {
            path: path.to_path_buf(),
            problem: format!(
                "sled failed while {doing} ({message}); the snapshot's files are damaged: \
                 use an older checkpoint or another savepoint"
            ),
        })
    })
}

/// The error for a sled error on the snapshot at `path` while `doing` something: an I/O
/// error is the storage's ([`StateError::Storage`]), anything else the snapshot's.
pub(crate) fn sled_error(path: &Path, doing: &str, error: sled::Error) -> StateError {
    let (what, advice) = match &error {
        // sled's own message for this carries a debug backtrace: say it plainly instead.
        sled::Error::Corruption { at, .. } => (
            format!("corrupted data{}", at.map(|at| format!(" at {at:?}")).unwrap_or_default()),
            "the snapshot is damaged: use an older checkpoint or another savepoint",
        ),
        sled::Error::Io(e) => {
            let advice = match e.raw_os_error() {
                Some(ENOSPC) | Some(EFBIG) => {
                    "the file system is full (or a file size limit was hit): free space there and retry \
                     (sled writes a little even to open a snapshot for reading)"
                }
                _ => "check that the directory exists, is readable and writable, and that no other process has it open",
            };
            return StateError::Storage {
                path: path.to_path_buf(),
                problem: format!("sled failed while {doing}: {error}; {advice}"),
            };
        }
        _ => (error.to_string(), "the snapshot may be damaged: use an older checkpoint or another savepoint"),
    };
    StateError::Checkpoint { path: path.to_path_buf(), problem: format!("sled failed while {doing}: {what}; {advice}") }
}

/// `ENOSPC`: no space left on the device (the same number on Linux and macOS).
const ENOSPC: i32 = 28;
/// `EFBIG`: a file grew past the process's size limit (`ulimit -f`) or the file system's.
const EFBIG: i32 = 27;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_naming_the_path_and_the_message() {
        let path = Path::new("/snapshots/sp-1");
        let result: Result<()> = catch_panic(path, "testing", || panic!("page 7 is gone"));
        let message = result.unwrap_err().to_string();
        assert!(message.contains("/snapshots/sp-1") && message.contains("page 7 is gone"), "{message}");
        // The thread is usable afterwards, and panics outside the guard still unwind.
        assert!(std::panic::catch_unwind(|| panic!("outside")).is_err());
        assert_eq!(catch_panic(path, "testing", || Ok(3)).unwrap(), 3);
    }
}
