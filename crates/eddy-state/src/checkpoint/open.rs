//! Opening a snapshot's sled database.
//!
//! Three things can go wrong when a checkpoint or savepoint is opened, and each is turned
//! into an error that says what to do: sled may block for good on a failing disk (the open
//! runs within [`OPEN_LIMIT`]), it may panic on damaged files ([`catch_panic`]), and a handle
//! closed a moment ago may still hold the database's lock — sled's background threads let
//! go of it a little after the drop, so reopening a snapshot right after writing or reading
//! it waits for that, up to [`LOCK_WAIT`], before reporting [`StateError::SnapshotLocked`].

use std::path::Path;
use std::time::Duration;

use super::deadline::{within, OPEN_LIMIT};
use super::guard::{catch_panic, sled_error};
use crate::backend::sled::{is_lock_taken, open_when_unlocked};
use crate::error::{Result, StateError};

/// How long to wait for a database's lock that a just-dropped handle still holds.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens the snapshot database at `path` with `config` (see the module docs).
pub(crate) fn open_waiting_for_lock(path: &Path, config: &sled::Config) -> Result<sled::Db> {
    let (owned, config) = (path.to_path_buf(), config.clone());
    within(path, "opening the database", OPEN_LIMIT, move || {
        let opened =
            catch_panic(&owned, "opening the database", || Ok(open_when_unlocked(LOCK_WAIT, || config.open())))?;
        opened.map_err(|e| match e {
            sled::Error::Io(io) if is_lock_taken(&io) => StateError::SnapshotLocked { path: owned },
            e => sled_error(&owned, "opening the database", e),
        })
    })
}
