//! `MapState<K, V>`: a map per key, each entry stored (and expiring) on its own.

use std::borrow::Borrow;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::backend::StateBackend;
use crate::cell::{self, Cell};
use crate::descriptor::{MapStateDescriptor, StateKind};
use crate::error::Result;
use crate::store::KeyedStateStore;

/// How many entries an iterator fetches from the backend at a time (Flink's RocksDB map
/// iterator uses the same number).
const CHUNK: usize = 128;

/// A map from `K` to `V` per key (Flink's `MapState`), for the store's current key.
///
/// Each entry is its own backend entry (`… | key | user key`), so `get` and `put` touch one
/// entry however large the map is, and a map need not fit in memory with the sled backend.
/// Iteration order is the order of the user keys' bincode bytes, not `K`'s `Ord`.
///
/// ```
/// use eddy_state::{HeapBackend, KeyedStateStore, MapStateDescriptor};
/// let store = KeyedStateStore::new(HeapBackend::new(128)?);
/// let visits = store.map_state(&MapStateDescriptor::<String, u32>::new("visits-per-page"))?;
/// store.set_current_key("user-1")?;
/// visits.put("/home".to_string(), 2)?;
/// visits.put("/cart".to_string(), 1)?;
/// assert_eq!(visits.get(&"/home".to_string())?, Some(2));
/// let mut pages: Vec<String> = visits.keys()?.collect::<Result<_, _>>()?;
/// pages.sort();
/// assert_eq!(pages, ["/cart", "/home"]);
/// visits.remove(&"/home".to_string())?;
/// assert!(!visits.contains(&"/home".to_string())?);
/// # Ok::<(), eddy_state::StateError>(())
/// ```
pub struct MapState<'s, K, V, B> {
    store: &'s KeyedStateStore<B>,
    id: usize,
    _type: PhantomData<fn() -> (K, V)>,
}

impl<B: StateBackend> KeyedStateStore<B> {
    /// Opens a [`MapState`].
    pub fn map_state<K, V>(&self, descriptor: &MapStateDescriptor<K, V>) -> Result<MapState<'_, K, V, B>>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        let id = self.register(&descriptor.spec, StateKind::Map, std::any::type_name::<(K, V)>())?;
        Ok(MapState::new(self, id))
    }
}

impl<'s, K, V, B> MapState<'s, K, V, B>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
    B: StateBackend,
{
    pub(crate) fn new(store: &'s KeyedStateStore<B>, id: usize) -> Self {
        MapState { store, id, _type: PhantomData }
    }

    /// The value under `key` in the current key's map.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        self.store.access(self.id, true, |access| {
            access.set_user_key(key)?;
            access.read()
        })
    }

    /// Whether the current key's map has `key` (a read, for TTL purposes).
    pub fn contains(&self, key: &K) -> Result<bool> {
        self.store.access(self.id, true, |access| {
            access.set_user_key(key)?;
            access.contains()
        })
    }

    /// Sets `key` to `value` (accepts owned values or references).
    pub fn put(&self, key: impl Borrow<K>, value: impl Borrow<V>) -> Result<()> {
        self.store.access(self.id, true, |access| {
            access.set_user_key(key.borrow())?;
            access.write(value.borrow())
        })
    }

    /// Sets every `(key, value)` pair.
    pub fn put_all<I, Q, W>(&self, entries: I) -> Result<()>
    where
        I: IntoIterator<Item = (Q, W)>,
        Q: Borrow<K>,
        W: Borrow<V>,
    {
        for (key, value) in entries {
            self.put(key, value)?;
        }
        Ok(())
    }

    /// Removes `key` from the current key's map.
    pub fn remove(&self, key: &K) -> Result<()> {
        self.store.access(self.id, true, |access| {
            access.set_user_key(key)?;
            access.delete()
        })
    }

    /// Whether the current key's map has no (live) entry.
    pub fn is_empty(&self) -> Result<bool> {
        self.store.access(self.id, true, |access| access.any_live_entry().map(|live| !live))
    }

    /// Removes the current key's whole map.
    pub fn clear(&self) -> Result<()> {
        self.store.access(self.id, true, |access| access.delete_all())
    }

    /// The current key's entries. The iterator fetches entries in chunks, holding the store
    /// only while it fetches, so the loop body may use state (even change the current key:
    /// the iterator stays on the map it started on).
    pub fn entries(&self) -> Result<impl Iterator<Item = Result<(K, V)>> + 's> {
        let state = self.store.access(self.id, false, |access| Ok(access.state.name.clone()))?;
        Ok(self.raw_entries()?.map(move |entry| {
            let (user_key, bytes) = entry?;
            Ok((decode::<K>(&state, &user_key)?, decode_cell::<V>(&state, &bytes)?))
        }))
    }

    /// The current key's map keys (see [`entries`](MapState::entries)).
    pub fn keys(&self) -> Result<impl Iterator<Item = Result<K>> + 's> {
        let state = self.store.access(self.id, false, |access| Ok(access.state.name.clone()))?;
        Ok(self.raw_entries()?.map(move |entry| decode::<K>(&state, &entry?.0)))
    }

    /// The current key's map values (see [`entries`](MapState::entries)).
    pub fn values(&self) -> Result<impl Iterator<Item = Result<V>> + 's> {
        let state = self.store.access(self.id, false, |access| Ok(access.state.name.clone()))?;
        Ok(self.raw_entries()?.map(move |entry| decode_cell::<V>(&state, &entry?.1)))
    }

    fn raw_entries(&self) -> Result<RawEntries<'s, B>> {
        let prefix = self.store.access(self.id, false, |access| Ok(access.key_prefix().to_vec()))?;
        let chunk = Vec::new().into_iter();
        Ok(RawEntries { store: self.store, id: self.id, prefix, after: None, chunk, done: false })
    }
}

/// Decodes a user key.
fn decode<T: DeserializeOwned>(state: &str, bytes: &[u8]) -> Result<T> {
    cell::decode_value(bytes).map_err(|e| codec_error::<T>(state, e))
}

/// Decodes a map value from its cell.
fn decode_cell<T: DeserializeOwned>(state: &str, bytes: &[u8]) -> Result<T> {
    Cell::parse(bytes).and_then(|cell| cell::decode_value(cell.payload)).map_err(|e| codec_error::<T>(state, e))
}

fn codec_error<T>(state: &str, error: cell::CodecError) -> crate::StateError {
    match error {
        cell::CodecError::Decode(source) => {
            crate::StateError::Decode { state: state.into(), type_name: std::any::type_name::<T>(), source }
        }
        cell::CodecError::Corrupted(reason) => crate::StateError::Corrupted { state: state.into(), reason },
    }
}

/// A map's `(user key, cell)` pairs, fetched `CHUNK` at a time.
struct RawEntries<'s, B> {
    store: &'s KeyedStateStore<B>,
    id: usize,
    /// The entry-key prefix of the key whose map this is.
    prefix: Vec<u8>,
    after: Option<Vec<u8>>,
    chunk: std::vec::IntoIter<(Vec<u8>, Vec<u8>)>,
    done: bool,
}

impl<B: StateBackend> Iterator for RawEntries<'_, B> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.chunk.next() {
                return Some(Ok(entry));
            }
            if self.done {
                return None;
            }
            match self.store.map_chunk(self.id, &self.prefix, self.after.as_deref(), CHUNK) {
                Ok(chunk) => {
                    self.done = chunk.resume.is_none();
                    self.after = chunk.resume;
                    self.chunk = chunk.entries.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
