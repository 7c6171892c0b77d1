//! State backends: where keyed state's bytes live — in memory ([`HeapBackend`]) or in sled
//! ([`SledBackend`]) — behind one trait, [`StateBackend`].
//!
//! A backend is an ordered byte map split by key group. It knows nothing about state kinds,
//! TTL or types: [`KeyedStateStore`](crate::KeyedStateStore) builds every key with
//! [`layout`] and every value with the cell format, so both backends hold exactly the same
//! bytes and produce exactly the same snapshots.
//!
//! # Why a generic trait, not `dyn StateBackend`
//!
//! Every state access of every record goes through the backend, and eddy keeps dynamic
//! dispatch off the per-record path (`docs/architecture.md`). The trait therefore takes
//! closures as generic parameters (`get` hands the stored bytes to a closure instead of
//! copying them out; `scan` visits entries in place) and is not object safe; operators are
//! generic over `B: StateBackend` and monomorphised. Where the backend is chosen at run time
//! (a job's configuration), [`AnyBackend`] is an enum over both that dispatches with a
//! `match`, not a vtable.

pub mod any;
pub(crate) mod change_log;
pub mod heap;
pub mod layout;
pub mod sled;

use std::ops::ControlFlow;

pub use self::any::AnyBackend;
pub use self::heap::HeapBackend;
pub use self::sled::SledBackend;

use crate::error::{Result, StateError};

/// Raw storage of keyed state: byte values under [`layout`] keys, grouped by key group.
///
/// Every key passed in starts with its key group (`u16` big-endian), then the state name,
/// the serialized key and, for map state, the serialized user-map key. A key group is one
/// contiguous range of keys, which is what a snapshot scans.
///
/// Implementations must return errors, never panic, on keys whose key group is out of
/// range or that are shorter than the key-group prefix.
pub trait StateBackend {
    /// The number of key groups (`max_parallelism`); key groups are `0..max_parallelism`.
    fn max_parallelism(&self) -> usize;

    /// Calls `read` with the bytes stored under `key`, if any, and returns its result.
    fn get<R>(&self, key: &[u8], read: impl FnOnce(&[u8]) -> R) -> Result<Option<R>>;

    /// Stores `value` under `key`, replacing what was there.
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()>;

    /// Appends `bytes` to the value under `key` (creating it), as a list's `add` does.
    fn append(&mut self, key: &[u8], bytes: &[u8]) -> Result<()> {
        let mut value = self.get(key, |old| old.to_vec())?.unwrap_or_default();
        value.extend_from_slice(bytes);
        self.put(key, &value)
    }

    /// Removes the value under `key`, if any.
    fn delete(&mut self, key: &[u8]) -> Result<()>;

    /// Visits, in key order, the entries whose key starts with `prefix` (which includes the
    /// key group), starting after `prefix ++ after` when `after` is given. `visit` gets each
    /// key without the prefix, and its value; it returns [`ControlFlow::Break`] to stop.
    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        visit: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<()>;

    /// Like [`scan`](StateBackend::scan), but starting at `prefix ++ from` itself (the first
    /// entry at or after it): a seek past a whole sub-range, as listing a namespaced state's
    /// namespaces does.
    fn scan_from(&self, prefix: &[u8], from: &[u8], visit: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>) -> Result<()>;

    /// Whether this backend keeps state in memory. The store then keeps timers and
    /// [namespaced state](crate::NamespacedState) as live values on the heap (its fast path);
    /// otherwise it keeps them in the backend, so they need not fit in memory.
    fn is_in_memory(&self) -> bool;

    /// Removes every entry whose key starts with `prefix`; returns how many there were.
    fn delete_prefix(&mut self, prefix: &[u8]) -> Result<usize>;

    /// Every entry of a key group, as `(full key, value)` in key order: the key group's part
    /// of a checkpoint. Keys keep their key-group prefix, so entries are self-describing.
    fn snapshot_key_group(&self, key_group: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        check_key_group(key_group, self.max_parallelism())?;
        let prefix = layout::key_group_prefix(key_group);
        let mut entries = Vec::new();
        self.scan(&prefix, None, |rest, value| {
            let mut key = Vec::with_capacity(prefix.len() + rest.len());
            key.extend_from_slice(&prefix);
            key.extend_from_slice(rest);
            entries.push((key, value.to_vec()));
            ControlFlow::Continue(())
        })?;
        Ok(entries)
    }

    /// Turns change tracking on: from now, the backend notes every key written or removed,
    /// for [`cut_changes`](StateBackend::cut_changes). Returns whether it can (the heap
    /// backend can; the sled backend cannot, and its checkpoints stay full).
    fn track_changes(&mut self) -> bool {
        false
    }

    /// At the barrier of `checkpoint`: every entry changed since checkpoint `base` (the one
    /// the next incremental checkpoint builds on), with its value now, or `None` when the
    /// backend does not track changes, `base` is `None`, or its log does not reach back to
    /// `base`; the caller then snapshots every key group in full. Either way, the changes
    /// are counted again from `checkpoint` on. Costs what changed, not the state.
    fn cut_changes(&mut self, checkpoint: u64, base: Option<u64>) -> Option<Vec<Change>> {
        let _ = (checkpoint, base);
        None
    }

    /// Replaces everything of `key_group` with `entries` (from [`snapshot_key_group`]
    /// of this or the other backend). Fails without loading anything if an entry's key is
    /// not an entry key of `key_group`.
    ///
    /// [`snapshot_key_group`]: StateBackend::snapshot_key_group
    fn restore_key_group(&mut self, key_group: usize, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()>;
}

/// One entry changed since a checkpoint, as [`StateBackend::cut_changes`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its full key (key group first).
    pub key: Vec<u8>,
    /// Its value now; `None`: removed.
    pub value: Option<Vec<u8>>,
    /// The length of its value in the checkpoint counted from; `None`: it had none there.
    pub before: Option<u32>,
}

/// An error unless `key_group` is one of `0..max_parallelism`.
pub(crate) fn check_key_group(key_group: usize, max_parallelism: usize) -> Result<()> {
    if key_group < max_parallelism {
        Ok(())
    } else {
        Err(StateError::KeyGroupOutOfRange { key_group, start: 0, end: max_parallelism - 1 })
    }
}

/// An error unless `max_parallelism` fits the key layout.
pub(crate) fn check_max_parallelism(max_parallelism: usize) -> Result<()> {
    if (1..=layout::MAX_KEY_GROUPS).contains(&max_parallelism) {
        Ok(())
    } else {
        Err(StateError::InvalidMaxParallelism(max_parallelism))
    }
}

/// The key group of a backend key, checked against `max_parallelism`.
pub(crate) fn key_group_of_key(key: &[u8], max_parallelism: usize) -> Result<usize> {
    let key_group = layout::key_group_of(key).ok_or_else(|| StateError::Corrupted {
        state: "<unknown>".into(),
        reason: format!("a backend key of {} bytes has no key-group prefix", key.len()),
    })?;
    check_key_group(key_group, max_parallelism)?;
    Ok(key_group)
}

/// Checks that every snapshot entry is a well-formed entry key of `key_group`.
pub(crate) fn check_snapshot_entries(key_group: usize, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
    for (key, _) in entries {
        match layout::EntryKey::parse(key) {
            Some(entry) if entry.key_group == key_group => {}
            Some(entry) => {
                return Err(StateError::BadSnapshotEntry {
                    expected: key_group,
                    reason: format!("an entry of state '{}' belongs to key group {}", entry.state, entry.key_group),
                })
            }
            None => {
                return Err(StateError::BadSnapshotEntry {
                    expected: key_group,
                    reason: format!("a key of {} bytes does not follow the entry-key layout", key.len()),
                })
            }
        }
    }
    Ok(())
}
