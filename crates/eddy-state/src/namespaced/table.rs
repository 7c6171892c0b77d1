//! The heap backend's namespaced state: live values, not bytes, in one hash table per
//! namespace, addressed by the key's stable hash.
//!
//! This is the heap backend's fast path (a window's keyed stage updates one accumulator per
//! partial aggregate): an update is one hash of the key, which the key group needs anyway,
//! and one probe, with no encoding. Bytes appear only in snapshots, which encode every entry
//! exactly as the sled backend stores it ([`entry`](super::entry)), and when a restored
//! state is first opened, which decodes them. The namespaces are kept sorted, and the last
//! one used is tried first: consecutive records almost always fall in the same window.

use std::any::Any;

use eddy_core::key::{key_group, KeyGroupRange, KeyHasher};
use hashbrown::hash_table::{Entry, HashTable};
use serde::de::DeserializeOwned;
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

use super::entry::EntryCodec;
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
}

impl<N: Ord + Clone, K: Serialize + Eq + Clone, V> TypedTable<N, K, V> {
    pub(crate) fn new(codec: EntryCodec) -> Self {
        TypedTable { codec, namespaces: Vec::new(), last: 0, hasher: KeyHasher::default() }
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
        insert(self.entries_mut(namespace), hash, key.clone(), value);
        Ok(())
    }

    /// Removes a whole namespace, returning its entries.
    pub(crate) fn take_namespace(&mut self, namespace: &N) -> Option<Entries<K, V>> {
        let at = self.find(namespace).ok()?;
        Some(self.namespaces.remove(at).1)
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
}
