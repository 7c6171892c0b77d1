//! The keyed state store: one operator subtask's backend, current key, registered states and
//! timers, and the typed handles opened from it.
//!
//! As in Flink, the operator sets the current key before it calls user code for a record (or
//! a timer), and every handle reads and writes the state of that key. The store caches the
//! key's bincode bytes and key group, so a handle's access is: build the entry key (a
//! memcpy), one backend call, one bincode encode or decode.
//!
//! Handles borrow the store (`&self`), so any number of them can be open at once and kept
//! across keys; the store's mutable parts sit in a `RefCell`, held only for the length of
//! one access and never while user code (a reduce function, an aggregate function, an
//! iterator's consumer) runs.
//!
//! Each typed state's own file adds the method that opens it (`value_state` in `value.rs`,
//! `namespaced_state` in `namespaced/`, …), so the store knows registrations
//! ([`state_info`]), not the handle types built on it.

use std::cell::{RefCell, RefMut};
use std::collections::HashMap;
use std::ops::ControlFlow;

use eddy_core::key::{key_group, KeyGroupRange};
use eddy_core::key_encoding::encode_key;
use eddy_core::Timestamp;
use serde::de::DeserializeOwned;
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

use self::state_info::{Cursor, StateInfo};
use crate::backend::{layout, StateBackend};
use crate::cell::{self, Cell, CodecError, Frames, Liveness};
use crate::cleanup;
use crate::descriptor::{Spec, StateKind};
use crate::error::{Result, StateError};
use crate::namespaced::table::HeapTable;
use crate::query::QueryInbox;
use crate::snapshot::KeyGroupSnapshot;
use crate::timer_service::TimerService;
use crate::timers::{TimeDomain, Timer};
use crate::ttl::{Clock, SystemClock};

mod changes;
pub(crate) mod state_info;

pub use self::changes::StoreChanges;

/// Keyed state of one operator subtask: a backend, the key groups it owns, the current key,
/// the registered states and the timers.
///
/// ```
/// use eddy_state::{HeapBackend, KeyedStateStore, ValueStateDescriptor};
/// let store = KeyedStateStore::new(HeapBackend::new(128)?);
/// let count = store.value_state(&ValueStateDescriptor::<u64>::new("count"))?;
/// store.set_current_key("apple")?;
/// count.update(count.value()?.unwrap_or(0) + 1)?;
/// store.set_current_key("pear")?;
/// assert_eq!(count.value()?, None);
/// # Ok::<(), eddy_state::StateError>(())
/// ```
pub struct KeyedStateStore<B> {
    /// Unique in the process: handles kept apart from the store check they are used with it.
    id: u64,
    max_parallelism: usize,
    key_groups: KeyGroupRange,
    pub(crate) inner: RefCell<Inner<B>>,
    /// The heap backend's namespaced states, as live values (see [`NamespacedState`](crate::NamespacedState)); held
    /// apart from `inner` so an update borrows only its table.
    tables: RefCell<Vec<Box<dyn HeapTable>>>,
    /// Reads from outside the job, answered by [`KeyedStateStore::serve_queries`].
    queries: Option<QueryInbox>,
}

/// The store's mutable parts.
pub(crate) struct Inner<B> {
    pub(crate) backend: B,
    key_groups: KeyGroupRange,
    pub(crate) clock: Box<dyn Clock>,
    /// The current key's bincode bytes and key group (`None` until one is set).
    current_key: Vec<u8>,
    current_group: Option<usize>,
    /// Scratch for encoding a new current key.
    spare_key: Vec<u8>,
    pub(crate) states: Vec<StateInfo>,
    pub(crate) by_name: HashMap<String, usize>,
    /// Scratch for entry keys and values.
    key_buf: Vec<u8>,
    value_buf: Vec<u8>,
    timers: TimerService,
    /// Whether changes are tracked for incremental checkpoints (then every typed table
    /// opened tracks them too).
    tracks_changes: bool,
}

/// One state's view of the store during one access: the backend, the entry key of the
/// current key (plus a user-map key, for maps) and the time for TTL.
pub(crate) struct Access<'a, B> {
    backend: &'a mut B,
    pub(crate) state: &'a StateInfo,
    /// `key_group | name | key_len | key`, then the user key once one is set.
    key: &'a mut Vec<u8>,
    /// Length of the part before the user key.
    prefix_len: usize,
    buf: &'a mut Vec<u8>,
    now: Timestamp,
}

impl<B: StateBackend> Access<'_, B> {
    /// The current key's entry-key prefix (without user key).
    pub(crate) fn key_prefix(&self) -> &[u8] {
        &self.key[..self.prefix_len]
    }

    /// Points the access at the map entry `user_key` of the current key.
    pub(crate) fn set_user_key<K: Serialize + ?Sized>(&mut self, user_key: &K) -> Result<()> {
        self.key.truncate(self.prefix_len);
        encode_key(user_key, self.key).map_err(|e| StateError::KeyEncoding(e.to_string()))
    }

    /// The timestamp new cells get: now for a state with a TTL.
    fn stamp(&self) -> Option<Timestamp> {
        self.state.ttl.map(|_| self.now)
    }

    /// Reads the cell under the entry key, applying TTL: expired cells are deleted and not
    /// returned, refreshed ones rewritten.
    pub(crate) fn read<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        let Access { backend, state, key, buf, now, .. } = self;
        let ttl = state.ttl.as_ref();
        buf.clear();
        let found = backend.get(key, |bytes| -> Result<Option<(T, bool)>, CodecError> {
            let cell = Cell::parse(bytes)?;
            match cell.liveness(ttl, *now) {
                Liveness::Expired => Ok(None),
                Liveness::Live => Ok(Some((cell::decode_value(cell.payload)?, false))),
                Liveness::Refresh => {
                    let value = cell::decode_value(cell.payload)?;
                    cell::write_refreshed(buf, &cell, *now);
                    Ok(Some((value, true)))
                }
            }
        })?;
        match found {
            None => Ok(None),
            Some(Err(e)) => Err(state.codec_error::<T>(e)),
            Some(Ok(None)) => {
                backend.delete(key)?;
                Ok(None)
            }
            Some(Ok(Some((value, refreshed)))) => {
                if refreshed {
                    backend.put(key, buf)?;
                }
                Ok(Some(value))
            }
        }
    }

    /// Whether a live cell is stored under the entry key (a read, for TTL purposes).
    pub(crate) fn contains(&mut self) -> Result<bool> {
        let Access { backend, state, key, buf, now, .. } = self;
        let ttl = state.ttl.as_ref();
        buf.clear();
        let found = backend.get(key, |bytes| -> Result<Liveness, CodecError> {
            let cell = Cell::parse(bytes)?;
            let liveness = cell.liveness(ttl, *now);
            if liveness == Liveness::Refresh {
                cell::write_refreshed(buf, &cell, *now);
            }
            Ok(liveness)
        })?;
        match found {
            None => Ok(false),
            Some(Err(e)) => Err(state.codec_error::<()>(e)),
            Some(Ok(Liveness::Expired)) => {
                backend.delete(key)?;
                Ok(false)
            }
            Some(Ok(Liveness::Refresh)) => {
                backend.put(key, buf)?;
                Ok(true)
            }
            Some(Ok(Liveness::Live)) => Ok(true),
        }
    }

    /// Stores `value` as the cell under the entry key.
    pub(crate) fn write<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.buf.clear();
        let stamp = self.stamp();
        cell::write_cell(self.buf, stamp, value).map_err(|e| self.state.encode_error(e))?;
        self.backend.put(self.key, self.buf)
    }

    /// Deletes the entry under the entry key.
    pub(crate) fn delete(&mut self) -> Result<()> {
        self.backend.delete(self.key)
    }

    /// Deletes every entry under the current key's prefix (a map's entries).
    pub(crate) fn delete_all(&mut self) -> Result<()> {
        self.backend.delete_prefix(&self.key[..self.prefix_len]).map(drop)
    }

    /// Encodes `values` as list frames into the scratch buffer.
    fn frames<'v, T: Serialize + 'v>(&mut self, values: impl IntoIterator<Item = &'v T>) -> Result<()> {
        self.buf.clear();
        let stamp = self.stamp();
        for value in values {
            cell::push_framed_cell(self.buf, stamp, value).map_err(|e| self.state.encode_error(e))?;
        }
        Ok(())
    }

    /// Appends `values` to the list under the entry key.
    pub(crate) fn append<'v, T: Serialize + 'v>(&mut self, values: impl IntoIterator<Item = &'v T>) -> Result<()> {
        self.frames(values)?;
        if self.buf.is_empty() {
            return Ok(());
        }
        self.backend.append(self.key, self.buf)
    }

    /// Replaces the list under the entry key with `values` (deleting it when empty).
    pub(crate) fn replace_list<'v, T: Serialize + 'v>(
        &mut self,
        values: impl IntoIterator<Item = &'v T>,
    ) -> Result<()> {
        self.frames(values)?;
        if self.buf.is_empty() {
            return self.backend.delete(self.key);
        }
        self.backend.put(self.key, self.buf)
    }

    /// Reads the list under the entry key, dropping expired elements and refreshing read
    /// ones as the TTL says (rewriting the list if anything changed).
    pub(crate) fn read_list<T: DeserializeOwned>(&mut self) -> Result<Vec<T>> {
        let Access { backend, state, key, buf, now, .. } = self;
        let ttl = state.ttl.as_ref();
        buf.clear();
        let found = backend.get(key, |bytes| -> Result<(Vec<T>, bool), CodecError> {
            let mut values = Vec::new();
            let mut changed = false;
            for frame in Frames::new(bytes) {
                let frame = frame?;
                let cell = Cell::parse(frame)?;
                match cell.liveness(ttl, *now) {
                    Liveness::Expired => changed = true,
                    Liveness::Live => {
                        values.push(cell::decode_value(cell.payload)?);
                        cell::push_frame(buf, frame);
                    }
                    Liveness::Refresh => {
                        values.push(cell::decode_value(cell.payload)?);
                        changed = true;
                        let mut refreshed = Vec::with_capacity(frame.len() + 8);
                        cell::write_refreshed(&mut refreshed, &cell, *now);
                        cell::push_frame(buf, &refreshed);
                    }
                }
            }
            Ok((values, changed))
        })?;
        match found {
            None => Ok(Vec::new()),
            Some(Err(e)) => Err(state.codec_error::<T>(e)),
            Some(Ok((values, changed))) => {
                if changed {
                    if buf.is_empty() {
                        backend.delete(key)?;
                    } else {
                        backend.put(key, buf)?;
                    }
                }
                Ok(values)
            }
        }
    }

    /// Whether the current key's map has a live entry; expired entries met on the way are
    /// deleted (nothing is refreshed).
    pub(crate) fn any_live_entry(&mut self) -> Result<bool> {
        let ttl = self.state.ttl;
        let now = self.now;
        let mut live = false;
        let mut damaged = None;
        let mut expired = Vec::new();
        let prefix = &self.key[..self.prefix_len];
        self.backend.scan(prefix, None, |user_key, bytes| match Cell::parse(bytes) {
            Ok(cell) if ttl.is_some_and(|ttl| cell.is_expired(&ttl, now)) => {
                expired.push([prefix, user_key].concat());
                ControlFlow::Continue(())
            }
            Ok(_) => {
                live = true;
                ControlFlow::Break(())
            }
            Err(e) => {
                damaged = Some(e);
                ControlFlow::Break(())
            }
        })?;
        for key in expired {
            self.backend.delete(&key)?;
        }
        match damaged {
            Some(e) => Err(self.state.codec_error::<()>(e)),
            None => Ok(live),
        }
    }
}

impl<B: StateBackend> KeyedStateStore<B> {
    /// A store owning every key group of `backend`, reading TTL time from the wall clock.
    pub fn new(backend: B) -> Self {
        let all = KeyGroupRange { start: 0, end: backend.max_parallelism() - 1 };
        Self::build(backend, all)
    }

    /// A store owning only `key_groups` (a subtask's range, see
    /// [`KeyGroupRange::of_subtask`]); a key of another key group is refused with
    /// [`StateError::KeyGroupOutOfRange`], which catches keys routed to the wrong subtask.
    pub fn with_key_groups(backend: B, key_groups: KeyGroupRange) -> Result<Self> {
        let max = backend.max_parallelism();
        if key_groups.start > key_groups.end || key_groups.end >= max {
            return Err(StateError::InvalidKeyGroupRange {
                start: key_groups.start,
                end: key_groups.end,
                max_parallelism: max,
            });
        }
        Ok(Self::build(backend, key_groups))
    }

    fn build(backend: B, key_groups: KeyGroupRange) -> Self {
        let max_parallelism = backend.max_parallelism();
        let timers = TimerService::for_backend(&backend);
        /// The next store's id.
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        KeyedStateStore {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            max_parallelism,
            key_groups,
            inner: RefCell::new(Inner {
                backend,
                key_groups,
                clock: Box::new(SystemClock),
                current_key: Vec::new(),
                current_group: None,
                spare_key: Vec::new(),
                states: Vec::new(),
                by_name: HashMap::new(),
                key_buf: Vec::new(),
                value_buf: Vec::new(),
                timers,
                tracks_changes: false,
            }),
            tables: RefCell::new(Vec::new()),
            queries: None,
        }
    }

    /// Answers reads of its state from outside the job (queryable state, see
    /// [`crate::query`]) taken from `inbox`, whenever the operator calls
    /// [`KeyedStateStore::serve_queries`].
    pub fn with_queries(mut self, inbox: QueryInbox) -> Self {
        self.queries = Some(inbox);
        self
    }

    pub(crate) fn queries(&self) -> Option<&QueryInbox> {
        self.queries.as_ref()
    }

    /// Reads TTL time from `clock` instead of the wall clock (tests use a
    /// [`ManualClock`](crate::ManualClock)).
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.inner.get_mut().clock = Box::new(clock);
        self
    }

    fn inner(&self) -> Result<RefMut<'_, Inner<B>>> {
        self.inner.try_borrow_mut().map_err(|_| StateError::Reentrant)
    }

    /// This store's process-unique id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The heap backend's typed tables.
    pub(crate) fn tables(&self) -> Result<RefMut<'_, Vec<Box<dyn HeapTable>>>> {
        self.tables.try_borrow_mut().map_err(|_| StateError::Reentrant)
    }

    /// Runs `f` on the backend with the store's key groups and scratch buffers (a namespaced
    /// state's access in the backend).
    pub(crate) fn parts<R>(&self, f: impl FnOnce(&mut Parts<'_, B>) -> Result<R>) -> Result<R> {
        let mut inner = self.inner()?;
        let inner = &mut *inner;
        f(&mut Parts {
            backend: &mut inner.backend,
            key_groups: inner.key_groups,
            max_parallelism: self.max_parallelism,
            key: &mut inner.key_buf,
            value: &mut inner.value_buf,
            scratch: &mut inner.spare_key,
        })
    }

    /// The number of key groups.
    pub fn max_parallelism(&self) -> usize {
        self.max_parallelism
    }

    /// The key groups this store owns.
    pub fn key_groups(&self) -> KeyGroupRange {
        self.key_groups
    }

    /// Makes `key` the current key: every handle now reads and writes its state. Returns its
    /// key group. Setting the same key again is cheap (the encoding is compared, not hashed).
    pub fn set_current_key<K: Serialize + ?Sized>(&self, key: &K) -> Result<usize> {
        let mut inner = self.inner()?;
        let inner = &mut *inner;
        inner.spare_key.clear();
        encode_key(key, &mut inner.spare_key).map_err(|e| StateError::KeyEncoding(e.to_string()))?;
        if let Some(group) = inner.current_group {
            if inner.spare_key == inner.current_key {
                return Ok(group);
            }
        }
        let group = key_group(xxh3_64(&inner.spare_key), self.max_parallelism);
        inner.check_owned(group)?;
        std::mem::swap(&mut inner.current_key, &mut inner.spare_key);
        inner.current_group = Some(group);
        Ok(group)
    }

    /// Makes an already encoded key the current key (a fired timer's key, say).
    pub fn set_current_key_encoded(&self, key_group: usize, key: &[u8]) -> Result<()> {
        let mut inner = self.inner()?;
        inner.check_owned(key_group)?;
        inner.current_key.clear();
        inner.current_key.extend_from_slice(key);
        inner.current_group = Some(key_group);
        Ok(())
    }

    /// The current key's key group, if a key is set.
    pub fn current_key_group(&self) -> Option<usize> {
        self.inner.try_borrow().ok().and_then(|inner| inner.current_group)
    }

    /// The current key, decoded as `K`, if a key is set.
    pub fn current_key<K: DeserializeOwned>(&self) -> Result<Option<K>> {
        let inner = self.inner()?;
        if inner.current_group.is_none() {
            return Ok(None);
        }
        cell::decode_value(&inner.current_key).map(Some).map_err(|e| match e {
            CodecError::Decode(source) => {
                StateError::Decode { state: "<current key>".into(), type_name: std::any::type_name::<K>(), source }
            }
            CodecError::Corrupted(reason) => StateError::Corrupted { state: "<current key>".into(), reason },
        })
    }

    /// Registers a state (or finds it registered with the same kind, type and TTL).
    pub(crate) fn register(&self, spec: &Spec, kind: StateKind, type_name: &'static str) -> Result<usize> {
        if spec.name.starts_with('\0') {
            return Err(StateError::ReservedName { name: spec.name.escape_debug().to_string() });
        }
        let mut inner = self.inner()?;
        if let Some(&id) = inner.by_name.get(&spec.name) {
            let known = &inner.states[id];
            if known.kind != kind {
                return Err(StateError::KindMismatch {
                    name: spec.name.clone(),
                    registered: known.kind,
                    requested: kind,
                });
            }
            if known.type_name != type_name {
                return Err(StateError::TypeMismatch {
                    name: spec.name.clone(),
                    registered: known.type_name,
                    requested: type_name,
                });
            }
            if known.ttl != spec.ttl {
                return Err(StateError::TtlMismatch {
                    name: spec.name.clone(),
                    registered: known.ttl,
                    requested: spec.ttl,
                });
            }
            return Ok(id);
        }
        let info = StateInfo {
            name: spec.name.clone(),
            name_field: layout::name_field(&spec.name)?,
            kind,
            type_name,
            ttl: spec.ttl,
            cursor: Cursor::new(inner.key_groups.start),
            table: None,
        };
        let id = inner.states.len();
        inner.states.push(info);
        inner.by_name.insert(spec.name.clone(), id);
        Ok(id)
    }

    /// The typed table of namespaced state `id` on the heap backend, made by `new_table` and
    /// filled with the state's restored entries the first time (`None` on other backends).
    pub(crate) fn open_table(
        &self,
        id: usize,
        new_table: impl FnOnce() -> Box<dyn HeapTable>,
    ) -> Result<Option<usize>> {
        let mut inner = self.inner()?;
        let inner = &mut *inner;
        if inner.states[id].table.is_none() && inner.backend.is_in_memory() {
            let mut table = new_table();
            if inner.tracks_changes {
                table.track_changes();
            }
            for key_group in self.key_groups.start..=self.key_groups.end {
                load_key_group(&mut inner.backend, table.as_mut(), key_group)?;
            }
            let mut tables = self.tables()?;
            inner.states[id].table = Some(tables.len());
            tables.push(table);
        }
        Ok(inner.states[id].table)
    }

    /// Runs one access of state `id` for the current key; then, for a state with a TTL,
    /// one step of incremental cleanup when `cleanup` is set.
    pub(crate) fn access<R>(
        &self,
        id: usize,
        cleanup: bool,
        f: impl FnOnce(&mut Access<'_, B>) -> Result<R>,
    ) -> Result<R> {
        let mut inner = self.inner()?;
        let inner = &mut *inner;
        let state = &inner.states[id];
        let Some(group) = inner.current_group else {
            return Err(StateError::NoCurrentKey { state: state.name.clone() });
        };
        inner.key_buf.clear();
        inner.key_buf.extend_from_slice(&layout::key_group_prefix(group));
        inner.key_buf.extend_from_slice(&state.name_field);
        layout::push_key(&mut inner.key_buf, &inner.current_key)?;
        let now = if state.ttl.is_some() { inner.clock.now_ms() } else { 0 };
        let cleanup = cleanup && state.ttl.is_some_and(|ttl| ttl.cleanup_size > 0);
        let mut access = Access {
            backend: &mut inner.backend,
            state,
            prefix_len: inner.key_buf.len(),
            key: &mut inner.key_buf,
            buf: &mut inner.value_buf,
            now,
        };
        let result = f(&mut access)?;
        if cleanup {
            let key_groups = inner.key_groups;
            cleanup::step(&mut inner.backend, &mut inner.states[id], key_groups, now)?;
        }
        Ok(result)
    }

    /// Up to `limit` entries of a map after `after` (user-key bytes) under the entry-key
    /// `prefix`, as `(user key, cell)`; expired entries are deleted and skipped, read ones
    /// refreshed as the TTL says. Also returns where to resume: the last user key visited
    /// when the scan stopped at `limit`, `None` when it reached the end.
    pub(crate) fn map_chunk(&self, id: usize, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<MapChunk> {
        let mut inner = self.inner()?;
        let inner = &mut *inner;
        let state = &inner.states[id];
        let mut raw = Vec::new();
        inner.backend.scan(prefix, after, |user_key, cell| {
            raw.push((user_key.to_vec(), cell.to_vec()));
            if raw.len() == limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        let last = if raw.len() == limit { raw.last().map(|(user_key, _)| user_key.clone()) } else { None };
        let Some(ttl) = state.ttl.as_ref() else { return Ok(MapChunk { entries: raw, resume: last }) };
        let now = inner.clock.now_ms();
        let mut live = Vec::with_capacity(raw.len());
        for (user_key, bytes) in raw {
            let Ok(cell) = Cell::parse(&bytes) else {
                // Damaged: the caller reports it when it decodes the entry.
                live.push((user_key, bytes));
                continue;
            };
            let key = [prefix, &user_key].concat();
            match cell.liveness(Some(ttl), now) {
                Liveness::Expired => {
                    inner.backend.delete(&key)?;
                    continue;
                }
                Liveness::Refresh => {
                    inner.value_buf.clear();
                    cell::write_refreshed(&mut inner.value_buf, &cell, now);
                    inner.backend.put(&key, &inner.value_buf)?;
                }
                Liveness::Live => {}
            }
            live.push((user_key, bytes));
        }
        Ok(MapChunk { entries: live, resume: last })
    }

    /// Removes every expired value, list element and map entry of `key_group`, for the
    /// states registered with a TTL (a state not yet opened since a restore is cleaned once
    /// it is). Runs before every snapshot; returns how many entries were deleted or rewritten.
    pub fn cleanup_expired(&self, key_group: usize) -> Result<usize> {
        let mut inner = self.inner()?;
        let inner = &mut *inner;
        inner.check_owned(key_group)?;
        let now = inner.clock.now_ms();
        let mut changed = 0;
        for state in &inner.states {
            changed += cleanup::key_group(&mut inner.backend, state, key_group, now)?;
        }
        Ok(changed)
    }

    /// Everything of `key_group` (state entries and timers), after removing expired state:
    /// the key group's part of a checkpoint. (To snapshot every key group of the store,
    /// [`snapshot_key_groups`](Self::snapshot_key_groups) visits the heap's namespaced states
    /// once instead of once per key group.)
    pub fn snapshot_key_group(&self, key_group: usize) -> Result<KeyGroupSnapshot> {
        let range = KeyGroupRange { start: key_group, end: key_group };
        Ok(self.snapshot_range(range)?.pop().expect("one key group"))
    }

    /// Every key group this store owns, in order: the subtask's part of a checkpoint.
    pub fn snapshot_key_groups(&self) -> Result<Vec<KeyGroupSnapshot>> {
        self.snapshot_range(self.key_groups)
    }

    fn snapshot_range(&self, range: KeyGroupRange) -> Result<Vec<KeyGroupSnapshot>> {
        for key_group in range.start..=range.end {
            self.cleanup_expired(key_group)?;
        }
        self.snapshot_parts(range, true)
    }

    /// The snapshots of `range`: the timers, and with `entries` the backend's entries and
    /// the namespaced states on the heap.
    fn snapshot_parts(&self, range: KeyGroupRange, entries: bool) -> Result<Vec<KeyGroupSnapshot>> {
        let mut snapshots = Vec::with_capacity(range.end + 1 - range.start);
        for key_group in range.start..=range.end {
            let inner = self.inner()?;
            let mut entries = if entries { inner.backend.snapshot_key_group(key_group)? } else { Vec::new() };
            entries.retain(|(key, _)| !inner.timers.is_timer_entry(key));
            let timers = inner.timers.snapshot_key_group(&inner.backend, key_group)?;
            snapshots.push(KeyGroupSnapshot { key_group, entries, timers });
        }
        let tables = self.tables()?;
        if entries && tables.iter().any(|table| !table.is_empty()) {
            let mut typed = vec![Vec::new(); snapshots.len()];
            for table in tables.iter() {
                table.snapshot(self.max_parallelism, range, self.key_groups, &mut typed)?;
            }
            for (snapshot, mut entries) in snapshots.iter_mut().zip(typed) {
                entries.sort_unstable();
                snapshot.entries = merge_sorted(std::mem::take(&mut snapshot.entries), entries);
            }
        }
        Ok(snapshots)
    }

    /// Replaces everything of a key group with a snapshot's (from this or another subtask,
    /// this or the other backend). The key group must be one this store owns.
    pub fn restore_key_group(&self, snapshot: KeyGroupSnapshot) -> Result<()> {
        let mut inner = self.inner()?;
        let inner = &mut *inner;
        inner.check_owned(snapshot.key_group)?;
        inner.backend.restore_key_group(snapshot.key_group, snapshot.entries)?;
        let mut tables = self.tables()?;
        for table in tables.iter_mut() {
            table.clear_key_group(snapshot.key_group, self.max_parallelism);
            load_key_group(&mut inner.backend, table.as_mut(), snapshot.key_group)?;
        }
        inner.timers.restore_key_group(&mut inner.backend, snapshot.key_group, snapshot.timers)
    }

    /// Registers a timer for the current key in `namespace` (use `&()` for none); `false`
    /// if the same (timestamp, key, namespace) was already registered.
    pub fn register_timer<N: Serialize + ?Sized>(
        &self,
        domain: TimeDomain,
        timestamp: Timestamp,
        namespace: &N,
    ) -> Result<bool> {
        let mut inner = self.inner()?;
        let inner = &mut *inner;
        let (group, timer) = inner.timer(timestamp, namespace)?;
        inner.timers.register(&mut inner.backend, domain, group, timer)
    }

    /// Deletes a timer of the current key; `false` if there was none.
    pub fn delete_timer<N: Serialize + ?Sized>(
        &self,
        domain: TimeDomain,
        timestamp: Timestamp,
        namespace: &N,
    ) -> Result<bool> {
        let mut inner = self.inner()?;
        let inner = &mut *inner;
        let (group, timer) = inner.timer(timestamp, namespace)?;
        inner.timers.delete(&mut inner.backend, domain, group, &timer)
    }

    /// Removes the earliest timer due at `up_to` (the watermark, or the wall clock) and
    /// makes its key the current key, as Flink does before calling `onTimer`. Call it until
    /// `None` to fire every due timer in timestamp order.
    pub fn pop_due_timer(&self, domain: TimeDomain, up_to: Timestamp) -> Result<Option<FiredTimer>> {
        let mut inner = self.inner()?;
        let inner = &mut *inner;
        let Some((key_group, timer)) = inner.timers.pop_due(&mut inner.backend, domain, up_to)? else {
            return Ok(None);
        };
        inner.current_key.clear();
        inner.current_key.extend_from_slice(&timer.key);
        inner.current_group = Some(key_group);
        Ok(Some(FiredTimer { domain, key_group, timer }))
    }

    /// The earliest registered timer's timestamp of a domain.
    pub fn next_timer(&self, domain: TimeDomain) -> Result<Option<Timestamp>> {
        Ok(self.inner()?.timers.next_timestamp(domain))
    }

    /// The number of registered timers of a domain.
    pub fn timer_count(&self, domain: TimeDomain) -> Result<usize> {
        Ok(self.inner()?.timers.len(domain))
    }

    /// Runs `f` on the backend itself (for tools, tests and backend-specific calls).
    pub fn with_backend<R>(&self, f: impl FnOnce(&mut B) -> R) -> Result<R> {
        Ok(f(&mut self.inner()?.backend))
    }

    /// The backend, with everything stored in it.
    pub fn into_backend(self) -> B {
        self.inner.into_inner().backend
    }
}

impl<B> Inner<B> {
    /// An error unless this store owns `key_group`.
    fn check_owned(&self, key_group: usize) -> Result<()> {
        if self.key_groups.contains(key_group) {
            Ok(())
        } else {
            Err(StateError::KeyGroupOutOfRange { key_group, start: self.key_groups.start, end: self.key_groups.end })
        }
    }

    /// A timer of the current key, with its key group.
    fn timer<N: Serialize + ?Sized>(&self, timestamp: Timestamp, namespace: &N) -> Result<(usize, Timer)> {
        let group = self.current_group.ok_or_else(|| StateError::NoCurrentKey { state: "<timer>".into() })?;
        let mut encoded = Vec::new();
        encode_key(namespace, &mut encoded).map_err(|e| StateError::KeyEncoding(e.to_string()))?;
        Ok((group, Timer { timestamp, key: self.current_key.clone(), namespace: encoded }))
    }
}

/// Decodes the entries of `table`'s state in `key_group` from the backend into the table,
/// and removes them from the backend (the table now holds them).
fn load_key_group<B: StateBackend>(backend: &mut B, table: &mut dyn HeapTable, key_group: usize) -> Result<()> {
    let prefix = table.codec().state_prefix(key_group);
    let mut stored = Vec::new();
    backend.scan(&prefix, None, |rest, value| {
        stored.push((rest.to_vec(), value.to_vec()));
        ControlFlow::Continue(())
    })?;
    if stored.is_empty() {
        return Ok(());
    }
    for (rest, value) in &stored {
        table.load(rest, value)?;
    }
    backend.delete_prefix(&prefix).map(drop)
}

/// Two lists of entries in key order as one (keys are unique across them).
fn merge_sorted(a: Vec<(Vec<u8>, Vec<u8>)>, b: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    if a.is_empty() {
        return b;
    }
    let mut merged = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        let next = if x.0 <= y.0 { a.next() } else { b.next() };
        merged.extend(next);
    }
    merged.extend(a);
    merged.extend(b);
    merged
}

/// The backend with what a namespaced state's access in it needs.
pub(crate) struct Parts<'a, B> {
    pub(crate) backend: &'a mut B,
    pub(crate) key_groups: KeyGroupRange,
    pub(crate) max_parallelism: usize,
    /// Scratch for the entry key.
    pub(crate) key: &'a mut Vec<u8>,
    /// Scratch for the value (and the namespace's bytes while the key is built).
    pub(crate) value: &'a mut Vec<u8>,
    /// Scratch for the key's bytes.
    pub(crate) scratch: &'a mut Vec<u8>,
}

/// A chunk of a map's entries, `(user key, cell)`, and the user key to resume after.
pub(crate) struct MapChunk {
    pub(crate) entries: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) resume: Option<Vec<u8>>,
}

/// A timer that is due, popped by [`KeyedStateStore::pop_due_timer`] (its key is now the
/// store's current key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredTimer {
    /// The clock it followed.
    pub domain: TimeDomain,
    /// The key group of its key.
    pub key_group: usize,
    /// The timer: timestamp, key and namespace bytes.
    pub timer: Timer,
}

impl FiredTimer {
    /// The timer's key, decoded as `K`.
    pub fn key<K: DeserializeOwned>(&self) -> Result<K> {
        decode_part(&self.timer.key, "<timer key>")
    }

    /// The timer's namespace, decoded as `N`.
    pub fn namespace<N: DeserializeOwned>(&self) -> Result<N> {
        decode_part(&self.timer.namespace, "<timer namespace>")
    }
}

/// Decodes a timer's key or namespace bytes.
fn decode_part<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    cell::decode_value(bytes).map_err(|e| match e {
        CodecError::Decode(source) => {
            StateError::Decode { state: what.into(), type_name: std::any::type_name::<T>(), source }
        }
        CodecError::Corrupted(reason) => StateError::Corrupted { state: what.into(), reason },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AnyBackend, HeapBackend, SledBackend};

    #[test]
    fn a_store_can_move_to_its_subtask_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<KeyedStateStore<HeapBackend>>();
        assert_send::<KeyedStateStore<SledBackend>>();
        assert_send::<KeyedStateStore<AnyBackend>>();
    }
}
