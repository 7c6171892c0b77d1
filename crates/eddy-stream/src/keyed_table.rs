//! An in-memory per-key table addressed by the key's stable hash, which is computed once
//! per record and reused both for the key group and for the table lookup.

use hashbrown::hash_table::{Entry, HashTable};

struct Slot<K, V> {
    hash: u64,
    key: K,
    value: V,
}

/// Values by key; the caller supplies each key's stable hash.
pub(crate) struct KeyedTable<K, V> {
    table: HashTable<Slot<K, V>>,
}

impl<K, V> Default for KeyedTable<K, V> {
    fn default() -> Self {
        KeyedTable { table: HashTable::new() }
    }
}

impl<K: Eq + Clone, V> KeyedTable<K, V> {
    /// The value of `key` (whose stable hash is `hash`), created by `init` if absent.
    #[inline]
    pub(crate) fn get_or_insert_with(&mut self, hash: u64, key: &K, init: impl FnOnce() -> V) -> &mut V {
        match self.table.entry(hash, |s| s.key == *key, |s| s.hash) {
            Entry::Occupied(slot) => &mut slot.into_mut().value,
            Entry::Vacant(vacant) => {
                &mut vacant.insert(Slot { hash, key: key.clone(), value: init() }).into_mut().value
            }
        }
    }

    /// The value of `key` (whose stable hash is `hash`), if present.
    pub(crate) fn get_mut(&mut self, hash: u64, key: &K) -> Option<&mut V> {
        self.table.find_mut(hash, |s| s.key == *key).map(|s| &mut s.value)
    }

    /// Removes and returns the value of `key`, if present.
    pub(crate) fn remove(&mut self, hash: u64, key: &K) -> Option<V> {
        self.table.find_entry(hash, |s| s.key == *key).ok().map(|e| e.remove().0.value)
    }

    /// Every entry with its key's stable hash.
    pub(crate) fn iter_hashed(&self) -> impl Iterator<Item = (u64, &K, &V)> + '_ {
        self.table.iter().map(|s| (s.hash, &s.key, &s.value))
    }

    /// Every entry.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.table.iter().map(|s| (&s.key, &s.value))
    }

    /// Removes and yields every entry.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (K, V)> + '_ {
        self.table.drain().map(|s| (s.key, s.value))
    }
}
