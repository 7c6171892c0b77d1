//! The sled backend: working keyed state in a sled database, for state larger than memory.
//!
//! All entries live in one sled tree (`keyed_state`) under their [`layout`](super::layout)
//! keys, so a key group is one contiguous key range: a snapshot of a key group is one
//! prefix scan, and a restore replaces that range in one atomic batch. The database's
//! default tree records `max_parallelism`, so reopening a directory with another number of
//! key groups is refused instead of misreading every key.
//!
//! The directory holds working state, not a checkpoint: nothing here is fsynced on a
//! schedule (a job's durability comes from its checkpoints), and after a failure a job
//! restores into a fresh directory from its latest checkpoint.

use std::fmt;
use std::ops::{Bound, ControlFlow};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::layout::key_group_prefix;
use super::{check_key_group, check_max_parallelism, check_snapshot_entries, key_group_of_key, StateBackend};
use crate::error::{Result, StateError};

/// The tree that holds the state entries.
const STATE_TREE: &str = "keyed_state";
/// Key, in the default tree, of the number of key groups.
const MAX_PARALLELISM_KEY: &[u8] = b"max_parallelism";

/// Keyed state in sled: slower than the heap per access, but bounded by disk, not memory.
pub struct SledBackend {
    db: ::sled::Db,
    tree: ::sled::Tree,
    path: PathBuf,
    max_parallelism: usize,
}

impl SledBackend {
    /// Opens (or creates) the state database in `dir`, tuned for working state: high
    /// throughput mode, no periodic fsync, sled's default cache (1 GiB).
    pub fn open(dir: impl AsRef<Path>, max_parallelism: usize) -> Result<Self> {
        Self::with_config(working_state(dir.as_ref()), max_parallelism)
    }

    /// Like [`open`](SledBackend::open), with a page cache of `cache_bytes`: what sled holds
    /// in memory of the database, the main part of this backend's memory use.
    pub fn open_with_cache(dir: impl AsRef<Path>, max_parallelism: usize, cache_bytes: u64) -> Result<Self> {
        Self::with_config(working_state(dir.as_ref()).cache_capacity(cache_bytes), max_parallelism)
    }

    /// Opens a database from a sled configuration (to set the cache size, say).
    pub fn with_config(config: ::sled::Config, max_parallelism: usize) -> Result<Self> {
        check_max_parallelism(max_parallelism)?;
        let path = config.path.clone();
        let sled_error = |source| StateError::Sled { path: path.clone(), source };
        let db = open_when_unlocked(LOCK_WAIT, || config.open()).map_err(sled_error)?;
        let tree = db.open_tree(STATE_TREE).map_err(sled_error)?;
        let stored = db.get(MAX_PARALLELISM_KEY).map_err(sled_error)?;
        match stored {
            None => {
                db.insert(MAX_PARALLELISM_KEY, &(max_parallelism as u32).to_be_bytes()).map_err(sled_error)?;
            }
            Some(bytes) => {
                let stored =
                    <[u8; 4]>::try_from(&bytes[..]).map(u32::from_be_bytes).map_err(|_| StateError::Corrupted {
                        state: "<backend>".into(),
                        reason: format!("the stored max_parallelism at {} is damaged", path.display()),
                    })? as usize;
                if stored != max_parallelism {
                    return Err(StateError::MaxParallelismMismatch { path, stored, requested: max_parallelism });
                }
            }
        }
        Ok(SledBackend { db, tree, path, max_parallelism })
    }

    /// The database's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes buffered changes to disk; returns the bytes flushed.
    pub fn flush(&self) -> Result<usize> {
        self.db.flush().map_err(|e| self.error(e))
    }

    /// The number of stored entries (values, lists, map entries); counts by scanning.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Visits the entries under `prefix` from `prefix ++ start` on (`Unbounded`: all of them).
    fn visit_from(
        &self,
        prefix: &[u8],
        start: Bound<&[u8]>,
        mut visit: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<()> {
        key_group_of_key(prefix, self.max_parallelism)?;
        let entries = match start {
            Bound::Unbounded => self.tree.scan_prefix(prefix),
            Bound::Included(rest) => self.tree.range([prefix, rest].concat()..),
            Bound::Excluded(rest) => {
                let start = [prefix, rest].concat();
                self.tree.range::<&[u8], _>((Bound::Excluded(&start[..]), Bound::Unbounded))
            }
        };
        for entry in entries {
            let (key, value) = entry.map_err(|e| self.error(e))?;
            let Some(rest) = key.strip_prefix(prefix) else { break };
            if visit(rest, &value).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn error(&self, source: ::sled::Error) -> StateError {
        StateError::Sled { path: self.path.clone(), source }
    }
}

impl fmt::Debug for SledBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledBackend")
            .field("path", &self.path)
            .field("max_parallelism", &self.max_parallelism)
            .finish_non_exhaustive()
    }
}

impl StateBackend for SledBackend {
    fn max_parallelism(&self) -> usize {
        self.max_parallelism
    }

    fn get<R>(&self, key: &[u8], read: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        key_group_of_key(key, self.max_parallelism)?;
        Ok(self.tree.get(key).map_err(|e| self.error(e))?.map(|value| read(&value)))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        key_group_of_key(key, self.max_parallelism)?;
        self.tree.insert(key, value).map_err(|e| self.error(e))?;
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<()> {
        key_group_of_key(key, self.max_parallelism)?;
        self.tree.remove(key).map_err(|e| self.error(e))?;
        Ok(())
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        visit: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<()> {
        match after {
            Some(after) => self.visit_from(prefix, Bound::Excluded(after), visit),
            None => self.visit_from(prefix, Bound::Unbounded, visit),
        }
    }

    fn scan_from(&self, prefix: &[u8], from: &[u8], visit: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>) -> Result<()> {
        self.visit_from(prefix, Bound::Included(from), visit)
    }

    fn is_in_memory(&self) -> bool {
        false
    }

    fn delete_prefix(&mut self, prefix: &[u8]) -> Result<usize> {
        key_group_of_key(prefix, self.max_parallelism)?;
        let mut batch = ::sled::Batch::default();
        let mut removed = 0;
        for key in self.tree.scan_prefix(prefix).keys() {
            batch.remove(key.map_err(|e| self.error(e))?);
            removed += 1;
        }
        self.tree.apply_batch(batch).map_err(|e| self.error(e))?;
        Ok(removed)
    }

    fn restore_key_group(&mut self, key_group: usize, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        check_key_group(key_group, self.max_parallelism)?;
        check_snapshot_entries(key_group, &entries)?;
        let mut batch = ::sled::Batch::default();
        for key in self.tree.scan_prefix(key_group_prefix(key_group)).keys() {
            batch.remove(key.map_err(|e| self.error(e))?);
        }
        for (key, value) in entries {
            batch.insert(key, value);
        }
        self.tree.apply_batch(batch).map_err(|e| self.error(e))
    }
}

/// sled tuned for working state: high throughput mode, no periodic fsync (a job's
/// durability comes from its checkpoints).
fn working_state(dir: &Path) -> ::sled::Config {
    ::sled::Config::new().path(dir).mode(::sled::Mode::HighThroughput).flush_every_ms(None)
}

/// How long to wait for a database's lock that a just-dropped handle still holds: the
/// flusher thread that holds it must be scheduled to let go, which takes a while on a loaded
/// machine; the wait only happens when the lock is taken.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Calls `open` again every 10 ms while it fails only because the database's file lock is
/// taken, for at most `wait`: sled's background flusher keeps a dropped database locked for
/// a moment, so reopening a directory right after closing it (a restart in the same
/// process) would otherwise fail.
pub(crate) fn open_when_unlocked<T>(wait: Duration, mut open: impl FnMut() -> ::sled::Result<T>) -> ::sled::Result<T> {
    let deadline = Instant::now() + wait;
    loop {
        match open() {
            Err(::sled::Error::Io(e)) if is_lock_taken(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

/// Whether sled failed to open because another handle holds the directory's lock. sled
/// 0.34.7 reports this as an `Other` I/O error whose message starts "could not acquire
/// lock" (the OS's `WouldBlock` only appears inside the text), so the kind alone cannot tell.
pub(crate) fn is_lock_taken(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().starts_with("could not acquire lock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_waits_for_a_handle_that_is_still_closing() {
        let dir = tempfile::tempdir().unwrap();
        let held = working_state(dir.path()).open().unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let reopened = SledBackend::open(dir.path(), 8);
        release.join().unwrap();
        assert!(reopened.is_ok(), "{:?}", reopened.err());
    }
}
