//! The reader's side: a typed handle on one state of one keyed operator.

use std::marker::PhantomData;
use std::ops::RangeBounds;
use std::time::Duration;

use eddy_core::key::key_group;
use eddy_core::key_encoding::encode_key;
use serde::de::DeserializeOwned;
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

use super::error::QueryError;
use super::registry::{unavailable, QueryRegistry};
use super::reply::{reply, Answer};
use super::request::{Chunk, Cursor, GetAnswer, Request, StateRequest};
use crate::cell::decode_value;

/// How long a blocking read waits for its subtask by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Keys a scan asks a subtask for at once: small enough that a subtask answers between two
/// batches without holding up its records.
const SCAN_CHUNK: usize = 1024;

/// Reads the state `name` (keys `K`, values `V`) of the keyed operator `uid` of a running job
/// (see the [module docs](super)). Get one from `JobHandle::state`. Each read goes to the
/// subtask that owns the key; blocking reads wait at most their timeout (10 s by default),
/// async ones as long as they are awaited (wrap them in your runtime's timeout).
pub struct QueryableState<K, V> {
    registry: QueryRegistry,
    uid: String,
    state: String,
    timeout: Duration,
    _types: PhantomData<fn(K) -> V>,
}

impl<K, V> Clone for QueryableState<K, V> {
    fn clone(&self) -> Self {
        QueryableState {
            registry: self.registry.clone(),
            uid: self.uid.clone(),
            state: self.state.clone(),
            timeout: self.timeout,
            _types: PhantomData,
        }
    }
}

impl<K: Serialize + DeserializeOwned, V: DeserializeOwned> QueryableState<K, V> {
    /// A reader of state `state` of operator `uid`; fails if no keyed operator has that uid.
    pub fn new(registry: QueryRegistry, uid: &str, state: &str) -> Result<Self, QueryError> {
        registry.check(uid)?;
        Ok(QueryableState {
            registry,
            uid: uid.to_string(),
            state: state.to_string(),
            timeout: DEFAULT_TIMEOUT,
            _types: PhantomData,
        })
    }

    /// Makes blocking reads wait at most `timeout` for their subtask.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The value of `key` now (`None`: the key has none), waiting for the owning subtask.
    pub fn get(&self, key: &K) -> Result<Option<V>, QueryError> {
        let answer = self.ask_get(key)?;
        self.decode_value(self.wait(answer)??)
    }

    /// As [`QueryableState::get`], for async code: the wait never blocks a thread.
    pub async fn get_async(&self, key: &K) -> Result<Option<V>, QueryError> {
        let answer = self.ask_get(key)?;
        self.decode_value(answer.await.ok_or_else(|| unavailable(&self.uid))??)
    }

    /// Every key and its value, subtask by subtask (in no particular order).
    pub fn scan(&self) -> Result<Vec<(K, V)>, QueryError> {
        let mut out = Vec::new();
        for subtask in 0..self.registry.subtasks(&self.uid)?.len() {
            let mut cursor = None;
            loop {
                let chunk = self.wait(self.ask_scan(subtask, cursor)?)??;
                cursor = self.take_chunk(chunk, &mut out)?;
                if cursor.is_none() {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// As [`QueryableState::scan`], for async code.
    pub async fn scan_async(&self) -> Result<Vec<(K, V)>, QueryError> {
        let mut out = Vec::new();
        for subtask in 0..self.registry.subtasks(&self.uid)?.len() {
            let mut cursor = None;
            loop {
                let chunk = self.ask_scan(subtask, cursor)?.await.ok_or_else(|| unavailable(&self.uid))??;
                cursor = self.take_chunk(chunk, &mut out)?;
                if cursor.is_none() {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The keys in `range` and their values, sorted by key. Keys are spread over subtasks by
    /// hash, so this visits every key and keeps those in the range.
    pub fn scan_range(&self, range: impl RangeBounds<K>) -> Result<Vec<(K, V)>, QueryError>
    where
        K: Ord,
    {
        let mut all = self.scan()?;
        all.retain(|(key, _)| range.contains(key));
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    /// As [`QueryableState::scan_range`], for async code.
    pub async fn scan_range_async(&self, range: impl RangeBounds<K>) -> Result<Vec<(K, V)>, QueryError>
    where
        K: Ord,
    {
        let mut all = self.scan_async().await?;
        all.retain(|(key, _)| range.contains(key));
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    fn codec(&self, reason: impl std::fmt::Display) -> QueryError {
        QueryError::Codec { state: self.state.clone(), reason: reason.to_string() }
    }

    fn ask_get(&self, key: &K) -> Result<Answer<GetAnswer>, QueryError> {
        let mut encoded = Vec::new();
        encode_key(key, &mut encoded).map_err(|e| self.codec(format!("the key cannot be encoded: {e}")))?;
        let group = key_group(xxh3_64(&encoded), self.registry.max_parallelism(&self.uid)?);
        let owner = self.registry.owner(&self.uid, group)?;
        let (reply, answer) = reply();
        let request =
            Request::Get { state: self.state.clone(), type_name: std::any::type_name::<V>(), key: encoded, reply };
        owner.send(StateRequest(request)).map_err(|_| unavailable(&self.uid))?;
        Ok(answer)
    }

    fn ask_scan(&self, subtask: usize, from: Option<Cursor>) -> Result<Answer<Result<Chunk, QueryError>>, QueryError> {
        let inbox = self.registry.subtasks(&self.uid)?.swap_remove(subtask);
        let (reply, answer) = reply();
        let request = Request::Scan {
            state: self.state.clone(),
            type_name: std::any::type_name::<V>(),
            from,
            limit: SCAN_CHUNK,
            reply,
        };
        inbox.send(StateRequest(request)).map_err(|_| unavailable(&self.uid))?;
        Ok(answer)
    }

    fn wait<T>(&self, answer: Answer<T>) -> Result<T, QueryError> {
        answer.wait(self.timeout).map_err(|timed_out| match timed_out {
            true => QueryError::Unavailable {
                uid: self.uid.clone(),
                reason: format!("its subtask did not answer within {:?} (is the job stalled?)", self.timeout),
            },
            false => unavailable(&self.uid),
        })
    }

    fn decode_value(&self, payload: Option<Vec<u8>>) -> Result<Option<V>, QueryError> {
        payload.map(|bytes| decode_value(&bytes).map_err(|e| self.codec(self.decode_error::<V>(e)))).transpose()
    }

    fn decode_error<T>(&self, error: crate::cell::CodecError) -> String {
        format!("a stored value does not decode as {}: {error:?}", std::any::type_name::<T>())
    }

    /// Decodes a chunk into `out`; returns where to go on.
    fn take_chunk(&self, chunk: Chunk, out: &mut Vec<(K, V)>) -> Result<Option<Cursor>, QueryError> {
        for (key, value) in chunk.entries {
            let key: K = decode_value(&key).map_err(|e| self.codec(self.decode_error::<K>(e)))?;
            let value: V = decode_value(&value).map_err(|e| self.codec(self.decode_error::<V>(e)))?;
            out.push((key, value));
        }
        Ok(chunk.resume)
    }
}
