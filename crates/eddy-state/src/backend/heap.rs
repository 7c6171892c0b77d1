//! The heap backend: keyed state in memory, one ordered map per key group.
//!
//! Each key group is a `BTreeMap` from the entry key (without its two key-group bytes) to
//! the stored bytes. Ordered maps give the prefix scans map state and TTL cleanup need, and
//! make a key-group snapshot a plain in-order copy. A snapshot copies the key group's bytes
//! while the caller holds the store, so it is consistent without copy-on-write.
//!
//! With change tracking on ([`StateBackend::track_changes`]), every write and removal also
//! notes its key in a change log, so an incremental checkpoint copies only what changed;
//! off (the default), that costs one branch per write.

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};

use super::change_log::ChangeLog;
use super::layout::{self, KEY_GROUP_BYTES};
use super::{check_key_group, check_max_parallelism, check_snapshot_entries, key_group_of_key, Change, StateBackend};
use crate::error::Result;

/// Keyed state in memory: the fastest backend, for state that fits in RAM.
#[derive(Debug, Clone)]
pub struct HeapBackend {
    groups: Vec<BTreeMap<Box<[u8]>, Vec<u8>>>,
    /// The keys changed since the last checkpoint, when tracking is on.
    changes: Option<Box<ChangeLog>>,
}

impl HeapBackend {
    /// An empty backend with `max_parallelism` key groups (1..=65536).
    pub fn new(max_parallelism: usize) -> Result<Self> {
        check_max_parallelism(max_parallelism)?;
        Ok(HeapBackend { groups: vec![BTreeMap::new(); max_parallelism], changes: None })
    }

    /// The number of stored entries (values, lists, map entries), over all key groups.
    pub fn len(&self) -> usize {
        self.groups.iter().map(BTreeMap::len).sum()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(BTreeMap::is_empty)
    }

    /// Visits the entries under `prefix` from `prefix ++ start` on (`Unbounded`: all of them).
    fn visit_from(
        &self,
        prefix: &[u8],
        start: Bound<&[u8]>,
        mut visit: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<()> {
        let (group, prefix) = self.locate(prefix)?;
        let joined;
        let lower = match start {
            Bound::Included(rest) => {
                joined = [prefix, rest].concat();
                Bound::Included(&joined[..])
            }
            Bound::Excluded(rest) => {
                joined = [prefix, rest].concat();
                Bound::Excluded(&joined[..])
            }
            Bound::Unbounded => Bound::Included(prefix),
        };
        for (key, value) in self.groups[group].range::<[u8], _>((lower, Bound::Unbounded)) {
            let Some(rest) = key.strip_prefix(prefix) else { break };
            if visit(rest, value).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// The key group's map and the key within it.
    fn locate<'k>(&self, key: &'k [u8]) -> Result<(usize, &'k [u8])> {
        let key_group = key_group_of_key(key, self.groups.len())?;
        Ok((key_group, &key[KEY_GROUP_BYTES..]))
    }
}

impl StateBackend for HeapBackend {
    fn max_parallelism(&self) -> usize {
        self.groups.len()
    }

    #[inline]
    fn get<R>(&self, key: &[u8], read: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        let (group, key) = self.locate(key)?;
        Ok(self.groups[group].get(key).map(|value| read(value)))
    }

    #[inline]
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let (group, key) = self.locate(key)?;
        let map = &mut self.groups[group];
        match map.get_mut(key) {
            Some(old) => {
                if let Some(log) = &mut self.changes {
                    log.touch(group, key, Some(old.len()));
                }
                old.clear();
                old.extend_from_slice(value);
            }
            None => {
                if let Some(log) = &mut self.changes {
                    log.touch(group, key, None);
                }
                map.insert(key.into(), value.to_vec());
            }
        }
        Ok(())
    }

    #[inline]
    fn append(&mut self, key: &[u8], bytes: &[u8]) -> Result<()> {
        let (group, key) = self.locate(key)?;
        let map = &mut self.groups[group];
        let old = map.get_mut(key);
        if let Some(log) = &mut self.changes {
            log.touch(group, key, old.as_ref().map(|old| old.len()));
        }
        match old {
            Some(old) => old.extend_from_slice(bytes),
            None => {
                map.insert(key.into(), bytes.to_vec());
            }
        }
        Ok(())
    }

    #[inline]
    fn delete(&mut self, key: &[u8]) -> Result<()> {
        let (group, key) = self.locate(key)?;
        let removed = self.groups[group].remove(key);
        if let (Some(log), Some(old)) = (&mut self.changes, removed) {
            log.touch(group, key, Some(old.len()));
        }
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
        true
    }

    fn delete_prefix(&mut self, prefix: &[u8]) -> Result<usize> {
        let (group, prefix) = self.locate(prefix)?;
        let map = &mut self.groups[group];
        if prefix.is_empty() {
            let removed = map.len();
            if let Some(log) = &mut self.changes {
                map.iter().for_each(|(key, old)| log.touch(group, key, Some(old.len())));
            }
            map.clear();
            return Ok(removed);
        }
        let doomed: Vec<Box<[u8]>> = map
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, _)| key.clone())
            .collect();
        for key in &doomed {
            if let (Some(log), Some(old)) = (&mut self.changes, map.remove(key)) {
                log.touch(group, key, Some(old.len()));
            }
        }
        Ok(doomed.len())
    }

    fn track_changes(&mut self) -> bool {
        if self.changes.is_none() {
            self.changes = Some(Box::new(ChangeLog::new(self.groups.len())));
        }
        true
    }

    fn cut_changes(&mut self, checkpoint: u64, base: Option<u64>) -> Option<Vec<Change>> {
        let changed = self.changes.as_mut()?.cut(checkpoint, base)?;
        let mut out = Vec::with_capacity(changed.iter().map(|keys| keys.len()).sum());
        for (group, keys) in changed.iter().enumerate() {
            let prefix = layout::key_group_prefix(group);
            for (key, before) in keys {
                let value = self.groups[group].get(key).cloned();
                // A key added and removed again since the base changed nothing.
                if value.is_none() && before.is_none() {
                    continue;
                }
                out.push(Change { key: [&prefix[..], key].concat(), value, before: *before });
            }
        }
        Some(out)
    }

    fn restore_key_group(&mut self, key_group: usize, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        check_key_group(key_group, self.groups.len())?;
        check_snapshot_entries(key_group, &entries)?;
        self.groups[key_group] =
            entries.into_iter().map(|(key, value)| (key[KEY_GROUP_BYTES..].into(), value)).collect();
        Ok(())
    }
}
