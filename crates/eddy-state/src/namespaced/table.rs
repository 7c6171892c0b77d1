//! The heap backend's namespaced state: live values, not bytes, in one hash table per
//! namespace, addressed by the key's stable hash.
//!
//! This is the heap backend's fast path (a window's keyed stage updates one accumulator per
//! partial aggregate): an update is one hash of the key, which the key group needs anyway,
//! and one probe, with no encoding. Bytes appear only in snapshots, which encode every entry
//! exactly as the sled backend stores it ([`entry`](super::entry)), and when a restored
//! state is first opened, which decodes them. The namespaces are kept sorted, and the last
//! one used is tried first: consecutive records almost always fall in the same window.
//!
//! With change tracking on (incremental checkpoints), every write and removal also marks
//! its key in a [`TableLog`], so a checkpoint encodes only the entries changed since the
//! last one; off, that costs one branch per write.

use std::any::Any;

use eddy_core::key::{key_group, KeyGroupRange, KeyHasher};
use hashbrown::hash_table::{Entry, HashTable};
use serde::de::DeserializeOwned;
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

use super::changes::TableLog;
use super::entry::EntryCodec;
use crate::backend::Change;
use crate::error::{Result, StateError};

/// One entry: the key's stable hash (its key group, and the table's hash), key and value.
pub(crate) struct Slot<K, V> {
    hash: u64,
    key: K,
    value: V,
}

/// The entries of one namespace.
pub(crate) type Entries<K, V> = HashTable<Slot<K, V>>;

/// Drains a namespace's entries as `(key, value)`.
pub(crate) fn into_pairs<K, V>(entries: Entries<K, V>) -> impl Iterator<Item = (K, V)> {
    entries.into_iter().map(|slot| (slot.key, slot.value))
}

/// A namespaced state's values, typed.
pub(crate) struct TypedTable<N, K, V> {
    codec: EntryCodec,
    /// Non-empty namespaces, sorted.
    namespaces: Vec<(N, Entries<K, V>)>,
    /// Where the last namespace looked up is.
    last: usize,
    hasher: KeyHasher,
    /// The keys changed since the last checkpoint, when tracking is on.
    log: Option<Box<TableLog<N, K>>>,
}

impl<N: Ord + Clone, K: Serialize + Eq + Clone, V: Serialize> TypedTable<N, K, V> {
    pub(crate) fn new(codec: EntryCodec) -> Self {
        TypedTable { codec, namespaces: Vec::new(), last: 0, hasher: KeyHasher::default(), log: None }
    }

    /// Marks `key` of `namespace` as changing, when tracking is on.
    #[inline]
    fn touch(&mut self, namespace: &N, hash: u64, key: &K) -> Result<()> {
        let Some(log) = &mut self.log else { return Ok(()) };
        let (codec, namespaces) = (&self.codec, &self.namespaces);
        let held = || namespaces.binary_search_by(|(n, _)| n.cmp(namespace)).ok().map(|at| &namespaces[at].1);
        log.touch(
            namespace,
            hash,
            key,
            || held().is_some(),
            |scratch| match held().and_then(|entries| entries.find(hash, |s| s.key == *key)) {
                Some(slot) => cell_len(codec, &slot.value, scratch).map(Some),
                None => Ok(None),
            },
        )
    }

    fn hash(&mut self, key: &K) -> Result<u64> {
        self.hasher.hash(key).map_err(|e| StateError::KeyEncoding(format!("state '{}': {e}", self.codec.name)))
    }

    /// Where `namespace` is, or where it would go.
    #[inline]
    fn find(&mut self, namespace: &N) -> std::result::Result<usize, usize> {
        if self.namespaces.get(self.last).is_some_and(|(n, _)| n == namespace) {
            return Ok(self.last);
        }
        let found = self.namespaces.binary_search_by(|(n, _)| n.cmp(namespace));
        if let Ok(at) = found {
            self.last = at;
        }
        found
    }

    /// The entries of `namespace`, created empty if it has none.
    #[inline]
    fn entries_mut(&mut self, namespace: &N) -> &mut Entries<K, V> {
        let at = match self.find(namespace) {
            Ok(at) => at,
            Err(at) => {
                self.namespaces.insert(at, (namespace.clone(), HashTable::new()));
                self.last = at;
                at
            }
        };
        &mut self.namespaces[at].1
    }

    /// Updates the value of `key` in `namespace`, creating it with `init` (then `f` gets
    /// `true`).
    #[inline]
    pub(crate) fn update<R>(
        &mut self,
        namespace: &N,
        key: &K,
        init: impl FnOnce() -> V,
        f: impl FnOnce(&mut V, bool) -> R,
    ) -> Result<R> {
        let hash = self.hash(key)?;
        self.touch(namespace, hash, key)?;
        Ok(match self.entries_mut(namespace).entry(hash, |s| s.key == *key, |s| s.hash) {
            Entry::Occupied(slot) => f(&mut slot.into_mut().value, false),
            Entry::Vacant(vacant) => {
                let slot = vacant.insert(Slot { hash, key: key.clone(), value: init() });
                f(&mut slot.into_mut().value, true)
            }
        })
    }

    /// The value of `key` in `namespace`.
    pub(crate) fn get(&mut self, namespace: &N, key: &K) -> Result<Option<&V>> {
        let hash = self.hash(key)?;
        let Ok(at) = self.find(namespace) else { return Ok(None) };
        Ok(self.namespaces[at].1.find(hash, |s| s.key == *key).map(|s| &s.value))
    }

    /// One value of `namespace`, if it has any.
    pub(crate) fn peek(&mut self, namespace: &N) -> Option<&V> {
        let at = self.find(namespace).ok()?;
        self.namespaces[at].1.iter().next().map(|slot| &slot.value)
    }

    /// Removes and returns the value of `key` in `namespace`.
    pub(crate) fn take(&mut self, namespace: &N, key: &K) -> Result<Option<V>> {
        let hash = self.hash(key)?;
        self.touch(namespace, hash, key)?;
        let Ok(at) = self.find(namespace) else { return Ok(None) };
        let entries = &mut self.namespaces[at].1;
        let taken = entries.find_entry(hash, |s| s.key == *key).ok().map(|e| e.remove().0.value);
        if entries.is_empty() {
            self.namespaces.remove(at);
        }
        Ok(taken)
    }

    /// Sets the value of `key` in `namespace`.
    pub(crate) fn put(&mut self, namespace: &N, key: &K, value: V) -> Result<()> {
        let hash = self.hash(key)?;
        self.touch(namespace, hash, key)?;
        insert(self.entries_mut(namespace), hash, key.clone(), value);
        Ok(())
    }

    /// Removes a whole namespace, returning its entries. With tracking on, every one of
    /// them is marked as changing (a fired window's entries become removals; a namespace
    /// visited to change in place comes back with
    /// [`restore_namespace`](Self::restore_namespace)).
    pub(crate) fn take_namespace(&mut self, namespace: &N) -> Result<Option<Entries<K, V>>> {
        let Ok(at) = self.find(namespace) else { return Ok(None) };
        let entries = self.namespaces.remove(at).1;
        if let Some(log) = &mut self.log {
            let slots = entries.iter().map(|slot| (slot.hash, &slot.key, &slot.value));
            log.touch_all(namespace, slots, |value, scratch| cell_len(&self.codec, value, scratch))?;
        }
        Ok(Some(entries))
    }

    /// Puts back a namespace's entries taken with [`take_namespace`](Self::take_namespace)
    /// (after visiting them), merging with any added since.
    pub(crate) fn restore_namespace(&mut self, namespace: &N, entries: Entries<K, V>) {
        if entries.is_empty() {
            return;
        }
        match self.find(namespace) {
            Err(at) => self.namespaces.insert(at, (namespace.clone(), entries)),
            Ok(at) => {
                let table = &mut self.namespaces[at].1;
                for slot in entries {
                    if table.find(slot.hash, |s| s.key == slot.key).is_none() {
                        table.insert_unique(slot.hash, slot, |s| s.hash);
                    }
                }
            }
        }
    }

    /// The non-empty namespaces, sorted.
    pub(crate) fn namespaces(&self) -> Vec<N> {
        self.namespaces.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// The length of `value`'s stored cell, encoded into `scratch`.
fn cell_len<V: Serialize>(codec: &EntryCodec, value: &V, scratch: &mut Vec<u8>) -> Result<u32> {
    codec.encode_value(value, scratch)?;
    Ok(scratch.len() as u32)
}

/// Sets `key`'s value in `entries`.
fn insert<K: Eq, V>(entries: &mut Entries<K, V>, hash: u64, key: K, value: V) {
    match entries.entry(hash, |s| s.key == key, |s| s.hash) {
        Entry::Occupied(mut slot) => slot.get_mut().value = value,
        Entry::Vacant(vacant) => {
            vacant.insert(Slot { hash, key, value });
        }
    }
}

/// Visits every entry of a namespace's table, mutably.
pub(crate) fn for_each_mut<K, V, E>(
    entries: &mut Entries<K, V>,
    mut f: impl FnMut(&K, &mut V) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    for slot in entries.iter_mut() {
        f(&slot.key, &mut slot.value)?;
    }
    Ok(())
}

/// What the store needs of a typed table without knowing its types: snapshots, restores.
pub(crate) trait HeapTable: Send {
    /// The table itself, to be downcast by the handle that knows its types.
    fn as_any(&mut self) -> &mut dyn Any;

    /// Appends every entry of the key groups in `range` as backend bytes to its key group's
    /// list, `out[key_group - range.start]`; an entry of a key group the store does not own
    /// (a key routed to the wrong subtask) is an error.
    fn snapshot(
        &self,
        max_parallelism: usize,
        range: KeyGroupRange,
        owned: KeyGroupRange,
        out: &mut [Vec<(Vec<u8>, Vec<u8>)>],
    ) -> Result<()>;

    /// Removes every entry of a key group.
    fn clear_key_group(&mut self, key_group: usize, max_parallelism: usize);

    /// Adds one stored entry: `rest` is its key after the state prefix, `value` its cell.
    fn load(&mut self, rest: &[u8], value: &[u8]) -> Result<()>;

    /// The state's encoding.
    fn codec(&self) -> &EntryCodec;

    /// Whether it holds nothing.
    fn is_empty(&self) -> bool;

    /// Turns change tracking on: from now, every write and removal marks its key for
    /// [`cut_changes`](Self::cut_changes). A restore ([`load`](Self::load),
    /// [`clear_key_group`](Self::clear_key_group)) is not marked: it comes before the first
    /// barrier, whose checkpoint is full.
    fn track_changes(&mut self);

    /// At the barrier of `checkpoint`: every entry changed since checkpoint `base`, as
    /// backend bytes with its stored cell now (as [`snapshot`](Self::snapshot) encodes
    /// it), or `None` when tracking is off or does not reach back to `base`. Either way the
    /// changes are counted again from `checkpoint`. An entry of a key group outside `owned`
    /// is an error, as in a snapshot.
    fn cut_changes(
        &mut self,
        checkpoint: u64,
        base: Option<u64>,
        max_parallelism: usize,
        owned: KeyGroupRange,
    ) -> Result<Option<Vec<Change>>>;
}

impl<N, K, V> HeapTable for TypedTable<N, K, V>
where
    N: Serialize + DeserializeOwned + Ord + Clone + Send + 'static,
    K: Serialize + DeserializeOwned + Eq + Clone + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn snapshot(
        &self,
        max_parallelism: usize,
        range: KeyGroupRange,
        owned: KeyGroupRange,
        out: &mut [Vec<(Vec<u8>, Vec<u8>)>],
    ) -> Result<()> {
        let mut namespace_bytes = Vec::new();
        for (namespace, entries) in &self.namespaces {
            namespace_bytes.clear();
            self.codec.encode_part(namespace, &mut namespace_bytes)?;
            for slot in entries {
                let group = key_group(slot.hash, max_parallelism);
                if !owned.contains(group) {
                    return Err(StateError::KeyGroupOutOfRange {
                        key_group: group,
                        start: owned.start,
                        end: owned.end,
                    });
                }
                if !range.contains(group) {
                    continue;
                }
                let mut key = self.codec.namespace_prefix(group, &namespace_bytes)?;
                self.codec.encode_part(&slot.key, &mut key)?;
                let mut value = Vec::new();
                self.codec.encode_value(&slot.value, &mut value)?;
                out[group - range.start].push((key, value));
            }
        }
        Ok(())
    }

    fn clear_key_group(&mut self, group: usize, max_parallelism: usize) {
        for (_, entries) in &mut self.namespaces {
            entries.retain(|slot| key_group(slot.hash, max_parallelism) != group);
        }
        self.namespaces.retain(|(_, entries)| !entries.is_empty());
        self.last = 0;
    }

    fn load(&mut self, rest: &[u8], value: &[u8]) -> Result<()> {
        let (namespace, key) = self.codec.split(rest)?;
        let namespace: N = self.codec.decode_part(namespace)?;
        let hash = xxh3_64(key);
        let key: K = self.codec.decode_part(key)?;
        let value: V = self.codec.decode_value(value)?;
        insert(self.entries_mut(&namespace), hash, key, value);
        Ok(())
    }

    fn codec(&self) -> &EntryCodec {
        &self.codec
    }

    fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
    }

    fn track_changes(&mut self) {
        if self.log.is_none() {
            self.log = Some(Box::new(TableLog::new()));
        }
    }

    fn cut_changes(
        &mut self,
        checkpoint: u64,
        base: Option<u64>,
        max_parallelism: usize,
        owned: KeyGroupRange,
    ) -> Result<Option<Vec<Change>>> {
        let TypedTable { codec, namespaces, log, .. } = self;
        let Some(marks) = log.as_mut().and_then(|log| log.cut(checkpoint, base)) else { return Ok(None) };
        let mut changes = Vec::new();
        let mut namespace_bytes = Vec::new();
        for (namespace, marks) in marks {
            namespace_bytes.clear();
            codec.encode_part(namespace, &mut namespace_bytes)?;
            let live = namespaces.binary_search_by(|(n, _)| n.cmp(namespace)).ok().map(|at| &namespaces[at].1);
            let change = |hash: u64, key: &K, value: Option<&V>, before: Option<u32>| -> Result<Change> {
                let group = key_group(hash, max_parallelism);
                if !owned.contains(group) {
                    return Err(StateError::KeyGroupOutOfRange {
                        key_group: group,
                        start: owned.start,
                        end: owned.end,
                    });
                }
                let mut entry_key = codec.namespace_prefix(group, &namespace_bytes)?;
                codec.encode_part(key, &mut entry_key)?;
                let value = value.map(|value| {
                    let mut cell = Vec::new();
                    codec.encode_value(value, &mut cell).map(|()| cell)
                });
                Ok(Change { key: entry_key, value: value.transpose()?, before })
            };
            for mark in &marks.keys {
                let value = live.and_then(|entries| entries.find(mark.hash, |s| s.key == mark.key));
                // A key added and removed again since the base changed nothing.
                if value.is_some() || mark.before.is_some() {
                    changes.push(change(mark.hash, &mark.key, value.map(|slot| &slot.value), mark.before)?);
                }
            }
            if marks.all_live() {
                for slot in live.into_iter().flatten() {
                    if marks.keys.find(slot.hash, |m| m.key == slot.key).is_none() {
                        changes.push(change(slot.hash, &slot.key, Some(&slot.value), None)?);
                    }
                }
            }
        }
        Ok(Some(changes))
    }
}
