//! An in-memory per-key table addressed by a hash the caller computes (any hash that equal
//! keys share: it never leaves the process): a window pre-aggregation's
//! partial accumulators of one pane. (Keyed operators keep their state in the keyed state
//! store, whose heap backend has tables like this one.)

use hashbrown::hash_table::{Entry, HashTable};

struct Slot<K, V> {
    hash: u64,
    key: K,
    value: V,
}

/// Values by key; the caller supplies each key's hash.
pub(crate) struct KeyedTable<K, V> {
    table: HashTable<Slot<K, V>>,
}

impl<K, V> Default for KeyedTable<K, V> {
    fn default() -> Self {
        KeyedTable { table: HashTable::new() }
    }
}

impl<K: Eq + Clone, V> KeyedTable<K, V> {
    /// The value of `key` (whose hash is `hash`), created by `init` if absent.
    #[inline]
    pub(crate) fn get_or_insert_with(&mut self, hash: u64, key: &K, init: impl FnOnce() -> V) -> &mut V {
        match self.table.entry(hash, |s| s.key == *key, |s| s.hash) {
            Entry::Occupied(slot) => &mut slot.into_mut().value,
            Entry::Vacant(vacant) => {
                &mut vacant.insert(Slot { hash, key: key.clone(), value: init() }).into_mut().value
            }
        }
    }

    /// The number of entries.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Removes and yields every entry.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (K, V)> + '_ {
        self.table.drain().map(|s| (s.key, s.value))
    }
}
