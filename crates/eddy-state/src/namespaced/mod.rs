//! `NamespacedState<N, K, V>`: a value per namespace and key, grouped by namespace — the
//! state a window operator keeps (Flink's window state, whose namespace is the window).
//!
//! Unlike the other handles it does not follow the store's current key: an operator names
//! the key of each access, and visits or drops a whole namespace at once (every key's
//! accumulator of a window that fires). And it does not borrow the store: an operator opens
//! it once, keeps it, and hands each access the store (the one it was opened from, which is
//! checked). Where it lives depends on the backend:
//!
//! - the heap backend keeps live values, one hash table per namespace ([`table`]), so an
//!   update costs one hash of the key and no encoding;
//! - the sled backend stores each value as an entry ([`entry`]), a namespace being one
//!   contiguous range per key group, so a window's contents need not fit in memory.
//!
//! Both snapshot to the same bytes, so a snapshot of one restores into the other.

mod changes;
mod entry;
mod stored;
pub(crate) mod table;

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub(crate) use self::entry::EntryCodec;
use self::table::{for_each_mut, into_pairs, TypedTable};
use crate::backend::StateBackend;
use crate::descriptor::{NamespacedStateDescriptor, StateKind, Types};
use crate::error::{Result, StateError};
use crate::store::KeyedStateStore;

/// A `V` per namespace `N` and key `K`, opened with [`KeyedStateStore::namespaced_state`]
/// and used with that store.
///
/// ```
/// use eddy_state::{HeapBackend, KeyedStateStore, NamespacedStateDescriptor};
/// let store = KeyedStateStore::new(HeapBackend::new(128)?);
/// // A count per (window start, word).
/// let counts = store.namespaced_state(&NamespacedStateDescriptor::<i64, String, u64>::new("counts"))?;
/// for (window, word) in [(0, "to"), (0, "be"), (0, "to"), (5_000, "be")] {
///     counts.update(&store, &window, &word.to_string(), || 0, |n, _| *n += 1)?;
/// }
/// assert_eq!(counts.namespaces(&store)?, vec![0, 5_000]);
/// // Window 0 fires: its counts go, the later window's stay.
/// let mut fired = Vec::new();
/// counts.drain_namespace(&store, &0, |word, n| {
///     fired.push((word, n));
///     Ok::<_, eddy_state::StateError>(())
/// })?;
/// fired.sort();
/// assert_eq!(fired, [("be".to_string(), 1), ("to".to_string(), 2)]);
/// assert_eq!(counts.namespaces(&store)?, vec![5_000]);
/// # Ok::<(), eddy_state::StateError>(())
/// ```
pub struct NamespacedState<N, K, V> {
    /// The store it was opened from.
    store: u64,
    /// Where the heap backend keeps the values; `None`: in the backend.
    table: Option<usize>,
    codec: EntryCodec,
    _types: Types<N, K, V>,
}

impl<B: StateBackend> KeyedStateStore<B> {
    /// Opens a [`NamespacedState`], to be kept and used with this store. With the heap
    /// backend its values live in a typed table; the first open after a restore decodes the
    /// restored entries into it.
    pub fn namespaced_state<N, K, V>(
        &self,
        descriptor: &NamespacedStateDescriptor<N, K, V>,
    ) -> Result<NamespacedState<N, K, V>>
    where
        N: Serialize + DeserializeOwned + Ord + Clone + Send + 'static,
        K: Serialize + DeserializeOwned + Eq + Clone + Send + 'static,
        V: Serialize + DeserializeOwned + Send + 'static,
    {
        let id = self.register(&descriptor.spec, StateKind::Namespaced, std::any::type_name::<(N, K, V)>())?;
        let codec = EntryCodec::new(&descriptor.spec.name)?;
        let table = self.open_table(id, || Box::new(TypedTable::<N, K, V>::new(codec.clone())))?;
        Ok(NamespacedState::new(self.id(), table, codec))
    }
}

impl<N, K, V> std::fmt::Debug for NamespacedState<N, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamespacedState").field("name", &self.codec.name).finish_non_exhaustive()
    }
}

impl<N, K, V> NamespacedState<N, K, V>
where
    N: Serialize + DeserializeOwned + Ord + Clone + Send + 'static,
    K: Serialize + DeserializeOwned + Eq + Clone + Send + 'static,
    V: Serialize + DeserializeOwned + Send + 'static,
{
    pub(crate) fn new(store: u64, table: Option<usize>, codec: EntryCodec) -> Self {
        NamespacedState { store, table, codec, _types: PhantomData }
    }

    /// The state's name.
    pub fn name(&self) -> &str {
        &self.codec.name
    }

    /// An error unless `store` is the one this state was opened from.
    #[inline]
    fn check<B: StateBackend>(&self, store: &KeyedStateStore<B>) -> Result<()> {
        if store.id() == self.store {
            Ok(())
        } else {
            Err(StateError::ForeignStore { state: self.codec.name.clone() })
        }
    }

    /// Runs `f` on the typed table at `index`.
    fn typed<R, B: StateBackend>(
        &self,
        store: &KeyedStateStore<B>,
        index: usize,
        f: impl FnOnce(&mut TypedTable<N, K, V>) -> R,
    ) -> Result<R> {
        let mut tables = store.tables()?;
        let table =
            tables[index].as_any().downcast_mut::<TypedTable<N, K, V>>().ok_or_else(|| StateError::TypeMismatch {
                name: self.codec.name.clone(),
                registered: "another namespace, key or value type",
                requested: std::any::type_name::<(N, K, V)>(),
            })?;
        Ok(f(table))
    }

    /// Updates the value of `key` in `namespace`: `f` gets it, or a new one from `init` (and
    /// then `true`). This is the per-record call, so `f` should be quick; it runs while the
    /// store is held and must not use it.
    #[inline]
    pub fn update<R, B: StateBackend>(
        &self,
        store: &KeyedStateStore<B>,
        namespace: &N,
        key: &K,
        init: impl FnOnce() -> V,
        f: impl FnOnce(&mut V, bool) -> R,
    ) -> Result<R> {
        self.check(store)?;
        if let Some(index) = self.table {
            return self.typed(store, index, |table| table.update(namespace, key, init, f))?;
        }
        let stored = store.parts(|parts| {
            stored::locate(parts, &self.codec, namespace, key)?;
            stored::read::<V, B>(parts, &self.codec)
        })?;
        let (mut value, fresh) = match stored {
            Some(value) => (value, false),
            None => (init(), true),
        };
        let result = f(&mut value, fresh);
        store.parts(|parts| {
            stored::locate(parts, &self.codec, namespace, key)?;
            stored::write(parts, &self.codec, &value)
        })?;
        Ok(result)
    }

    /// The value of `key` in `namespace`.
    pub fn get<B: StateBackend>(&self, store: &KeyedStateStore<B>, namespace: &N, key: &K) -> Result<Option<V>>
    where
        V: Clone,
    {
        self.check(store)?;
        if let Some(index) = self.table {
            return self.typed(store, index, |table| table.get(namespace, key).map(|v| v.cloned()))?;
        }
        store.parts(|parts| {
            stored::locate(parts, &self.codec, namespace, key)?;
            stored::read(parts, &self.codec)
        })
    }

    /// Removes the value of `key` in `namespace` and returns it.
    pub fn take<B: StateBackend>(&self, store: &KeyedStateStore<B>, namespace: &N, key: &K) -> Result<Option<V>> {
        self.check(store)?;
        if let Some(index) = self.table {
            return self.typed(store, index, |table| table.take(namespace, key))?;
        }
        store.parts(|parts| {
            stored::locate(parts, &self.codec, namespace, key)?;
            let value = stored::read(parts, &self.codec)?;
            if value.is_some() {
                parts.backend.delete(parts.key)?;
            }
            Ok(value)
        })
    }

    /// Sets the value of `key` in `namespace`.
    pub fn put<B: StateBackend>(&self, store: &KeyedStateStore<B>, namespace: &N, key: &K, value: V) -> Result<()> {
        self.check(store)?;
        if let Some(index) = self.table {
            return self.typed(store, index, |table| table.put(namespace, key, value))?;
        }
        store.parts(|parts| {
            stored::locate(parts, &self.codec, namespace, key)?;
            stored::write(parts, &self.codec, &value)
        })
    }

    /// Removes every value of `namespace`, handing each to `f` with its key (in no
    /// particular order). The store is not held while `f` runs.
    pub fn drain_namespace<E: From<StateError>, B: StateBackend>(
        &self,
        store: &KeyedStateStore<B>,
        namespace: &N,
        mut f: impl FnMut(K, V) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        self.check(store)?;
        if let Some(index) = self.table {
            let Some(entries) = self.typed(store, index, |table| table.take_namespace(namespace))?? else {
                return Ok(());
            };
            return into_pairs(entries).try_for_each(|(key, value)| f(key, value));
        }
        for prefix in self.namespace_prefixes(store, namespace)? {
            loop {
                let chunk = store.parts(|parts| stored::chunk(parts, &prefix, None, true))?;
                if chunk.is_empty() {
                    break;
                }
                for (key, value) in chunk {
                    f(self.codec.decode_part(&key)?, self.codec.decode_value(&value)?)?;
                }
            }
        }
        Ok(())
    }

    /// Hands every value of `namespace` to `f` to change in place, with its key (in no
    /// particular order). The store is not held while `f` runs.
    pub fn update_namespace<E: From<StateError>, B: StateBackend>(
        &self,
        store: &KeyedStateStore<B>,
        namespace: &N,
        mut f: impl FnMut(&K, &mut V) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        self.check(store)?;
        if let Some(index) = self.table {
            let Some(mut entries) = self.typed(store, index, |table| table.take_namespace(namespace))?? else {
                return Ok(());
            };
            let result = for_each_mut(&mut entries, &mut f);
            self.typed(store, index, |table| table.restore_namespace(namespace, entries))?;
            return result;
        }
        for prefix in self.namespace_prefixes(store, namespace)? {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let chunk = store.parts(|parts| stored::chunk(parts, &prefix, after.as_deref(), false))?;
                let Some((last, _)) = chunk.last() else { break };
                after = Some(last.clone());
                let mut changed = Vec::with_capacity(chunk.len());
                for (key_bytes, value) in chunk {
                    let key: K = self.codec.decode_part(&key_bytes)?;
                    let mut value: V = self.codec.decode_value(&value)?;
                    f(&key, &mut value)?;
                    changed.push((key_bytes, value));
                }
                store.parts(|parts| {
                    for (key_bytes, value) in &changed {
                        parts.key.clear();
                        parts.key.extend_from_slice(&prefix);
                        parts.key.extend_from_slice(key_bytes);
                        stored::write(parts, &self.codec, value)?;
                    }
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    /// One value of `namespace`, if it has any (which one is not specified): what all of a
    /// namespace's values share, read without reading them all.
    pub fn peek_namespace<B: StateBackend>(&self, store: &KeyedStateStore<B>, namespace: &N) -> Result<Option<V>>
    where
        V: Clone,
    {
        self.check(store)?;
        if let Some(index) = self.table {
            return self.typed(store, index, |table| table.peek(namespace).cloned());
        }
        for prefix in self.namespace_prefixes(store, namespace)? {
            let first = store.parts(|parts| stored::first(parts, &prefix))?;
            if let Some(value) = first {
                return self.codec.decode_value(&value).map(Some);
            }
        }
        Ok(None)
    }

    /// The namespaces that hold values, sorted (with sled: one seek per namespace and key
    /// group, never a full read).
    pub fn namespaces<B: StateBackend>(&self, store: &KeyedStateStore<B>) -> Result<Vec<N>> {
        self.check(store)?;
        if let Some(index) = self.table {
            return self.typed(store, index, |table| table.namespaces());
        }
        let range = store.key_groups();
        let mut found = std::collections::BTreeSet::new();
        for key_group in range.start..=range.end {
            found.extend(store.parts(|parts| stored::namespaces_in(parts, &self.codec, key_group))?);
        }
        let mut namespaces = found.iter().map(|bytes| self.codec.decode_part(bytes)).collect::<Result<Vec<N>>>()?;
        namespaces.sort();
        namespaces.dedup();
        Ok(namespaces)
    }

    /// The entry prefix of `namespace` in every key group of the store.
    fn namespace_prefixes<B: StateBackend>(&self, store: &KeyedStateStore<B>, namespace: &N) -> Result<Vec<Vec<u8>>> {
        let mut bytes = Vec::new();
        self.codec.encode_part(namespace, &mut bytes)?;
        let range = store.key_groups();
        (range.start..=range.end).map(|key_group| self.codec.namespace_prefix(key_group, &bytes)).collect()
    }
}
