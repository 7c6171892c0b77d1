//! What a reader asks a subtask, and how the subtask answers from its store.
//!
//! Requests carry the key as encoded bytes and get stored bytes back (a value's bincode
//! payload): the subtask never needs the reader's types, and the reader decodes.

use std::ops::ControlFlow;

use eddy_core::key::key_group;
use xxhash_rust::xxh3::xxh3_64;

use super::error::QueryError;
use super::reply::Reply;
use crate::backend::{layout, StateBackend};
use crate::cell::Cell;
use crate::descriptor::StateKind;
use crate::store::KeyedStateStore;

/// A read waiting in a subtask's [`QueryInbox`](super::QueryInbox).
pub struct StateRequest(pub(crate) Request);

/// Where a scan goes on: a key group, and the entry-key part after which to start in it.
pub(crate) type Cursor = (usize, Vec<u8>);

/// A scan's chunk: `(encoded key, value payload)` pairs, and where to go on (`None`: done).
pub(crate) struct Chunk {
    pub(crate) entries: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) resume: Option<Cursor>,
}

/// A get's answer: the value's payload, if the key has one.
pub(crate) type GetAnswer = Result<Option<Vec<u8>>, QueryError>;

pub(crate) enum Request {
    /// The value of one key.
    Get { state: String, type_name: &'static str, key: Vec<u8>, reply: Reply<GetAnswer> },
    /// Up to `limit` keys and values, after `from` (from the start when `None`).
    Scan {
        state: String,
        type_name: &'static str,
        from: Option<Cursor>,
        limit: usize,
        reply: Reply<Result<Chunk, QueryError>>,
    },
}

impl<B: StateBackend> KeyedStateStore<B> {
    /// Answers the reads waiting in the store's inbox (see [`KeyedStateStore::with_queries`]).
    /// The operator calls it between batches and on ticks, never while user code runs; it
    /// costs one atomic load when nothing waits.
    pub fn serve_queries(&self) {
        let Some(inbox) = self.queries() else { return };
        while let Ok(StateRequest(request)) = inbox.try_recv() {
            match request {
                Request::Get { state, type_name, key, reply } => reply.send(self.query_get(&state, type_name, &key)),
                Request::Scan { state, type_name, from, limit, reply } => {
                    reply.send(self.query_scan(&state, type_name, from, limit))
                }
            }
        }
    }

    /// The store's parts, which are free between batches (where queries are served).
    fn inner_for_query(&self, state: &str) -> Result<std::cell::Ref<'_, crate::store::Inner<B>>, QueryError> {
        self.inner.try_borrow().map_err(|_| QueryError::Codec {
            state: state.to_string(),
            reason: "internal: the store is in use while a query is served".into(),
        })
    }

    /// The state's TTL check at read time: `Some(now)` when its values expire.
    fn query_check(
        &self,
        state: &str,
        type_name: &'static str,
    ) -> Result<Option<(crate::StateTtlConfig, i64)>, QueryError> {
        let inner = self.inner_for_query(state)?;
        let Some(&id) = inner.by_name.get(state) else { return Ok(None) };
        let info = &inner.states[id];
        // A namespaced state is a keyed operator's own (a window's contents); on the heap it
        // is not in the backend at all, so it is refused the same on both backends.
        if matches!(info.kind, StateKind::List | StateKind::Map | StateKind::Namespaced) {
            return Err(QueryError::UnsupportedKind { state: state.to_string(), kind: info.kind });
        }
        if info.type_name != type_name {
            return Err(QueryError::TypeMismatch {
                state: state.to_string(),
                registered: info.type_name,
                requested: type_name,
            });
        }
        Ok(info.ttl.map(|ttl| (ttl, inner.clock.now_ms())))
    }

    fn query_get(&self, state: &str, type_name: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, QueryError> {
        let ttl = self.query_check(state, type_name)?;
        let codec = |reason: String| QueryError::Codec { state: state.to_string(), reason };
        let group = key_group(xxh3_64(key), self.max_parallelism());
        if !self.key_groups().contains(group) {
            return Err(codec(format!("key group {group} is not this subtask's")));
        }
        let mut entry = Vec::new();
        layout::push_state_prefix(&mut entry, group, state.as_bytes()).map_err(|e| codec(e.to_string()))?;
        layout::push_key(&mut entry, key).map_err(|e| codec(e.to_string()))?;
        let inner = self.inner_for_query(state)?;
        let stored = inner.backend.get(&entry, |bytes| bytes.to_vec()).map_err(|e| codec(e.to_string()))?;
        stored.map(|bytes| live_payload(&bytes, ttl).map_err(codec)).transpose().map(Option::flatten)
    }

    fn query_scan(
        &self,
        state: &str,
        type_name: &'static str,
        from: Option<Cursor>,
        limit: usize,
    ) -> Result<Chunk, QueryError> {
        let ttl = self.query_check(state, type_name)?;
        let codec = |reason: String| QueryError::Codec { state: state.to_string(), reason };
        let range = self.key_groups();
        let (first, mut after) = match from {
            Some((group, after)) => (group, Some(after)),
            None => (range.start, None),
        };
        let inner = self.inner_for_query(state)?;
        let mut entries = Vec::new();
        for group in first.max(range.start)..=range.end {
            let mut prefix = Vec::new();
            layout::push_state_prefix(&mut prefix, group, state.as_bytes()).map_err(|e| codec(e.to_string()))?;
            let mut resume = None;
            let mut damaged = None;
            let scanned = inner.backend.scan(&prefix, after.take().as_deref(), |rest, bytes| {
                let Some(key) = value_key(rest) else { return ControlFlow::Continue(()) };
                match live_payload(bytes, ttl) {
                    Ok(Some(payload)) => entries.push((key.to_vec(), payload)),
                    Ok(None) => {}
                    Err(reason) => {
                        damaged = Some(reason);
                        return ControlFlow::Break(());
                    }
                }
                if entries.len() >= limit {
                    resume = Some((group, rest.to_vec()));
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            });
            scanned.map_err(|e| codec(e.to_string()))?;
            if let Some(reason) = damaged {
                return Err(codec(reason));
            }
            if resume.is_some() {
                return Ok(Chunk { entries, resume });
            }
        }
        Ok(Chunk { entries, resume: None })
    }
}

/// The encoded key of a value-like entry (`key_len | key`, nothing after it); `None` for
/// anything else stored under the name (a map's entries).
fn value_key(rest: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    (rest.len() == 4 + len).then(|| &rest[4..])
}

/// A stored cell's payload, unless its TTL has run out (a read never refreshes it).
fn live_payload(cell: &[u8], ttl: Option<(crate::StateTtlConfig, i64)>) -> Result<Option<Vec<u8>>, String> {
    let cell = Cell::parse(cell).map_err(|e| format!("{e:?}"))?;
    match (ttl, cell.last_access) {
        (Some((ttl, now)), Some(_)) if cell.is_expired(&ttl, now) => Ok(None),
        _ => Ok(Some(cell.payload.to_vec())),
    }
}
