//! A namespaced state kept as backend entries (the sled backend): the [entry](super::entry)
//! bytes are what is stored, so nothing of it need fit in memory. A namespace is visited
//! in chunks, each one prefix scan, holding the store only while a chunk is read.

use std::ops::ControlFlow;

use eddy_core::key::key_group;
use serde::de::DeserializeOwned;
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

use super::entry::{successor, EntryCodec};
use crate::backend::StateBackend;
use crate::error::{Result, StateError};
use crate::store::Parts;

/// How many entries a visit of a namespace reads at a time.
pub(crate) const CHUNK: usize = 256;

/// Points `parts.key` at the entry of `key` in `namespace`, checking that this store owns
/// the key's group.
pub(crate) fn locate<N: Serialize, K: Serialize, B>(
    parts: &mut Parts<'_, B>,
    codec: &EntryCodec,
    namespace: &N,
    key: &K,
) -> Result<()> {
    parts.scratch.clear();
    codec.encode_part(key, parts.scratch)?;
    let group = key_group(xxh3_64(parts.scratch), parts.max_parallelism);
    if !parts.key_groups.contains(group) {
        let range = parts.key_groups;
        return Err(StateError::KeyGroupOutOfRange { key_group: group, start: range.start, end: range.end });
    }
    parts.value.clear();
    codec.encode_part(namespace, parts.value)?;
    *parts.key = codec.namespace_prefix(group, parts.value)?;
    parts.key.extend_from_slice(parts.scratch);
    Ok(())
}

/// The value at `parts.key`.
pub(crate) fn read<V: DeserializeOwned, B: StateBackend>(
    parts: &mut Parts<'_, B>,
    codec: &EntryCodec,
) -> Result<Option<V>> {
    parts.backend.get(parts.key, |bytes| codec.decode_value(bytes))?.transpose()
}

/// Stores `value` at `parts.key`.
pub(crate) fn write<V: Serialize, B: StateBackend>(
    parts: &mut Parts<'_, B>,
    codec: &EntryCodec,
    value: &V,
) -> Result<()> {
    codec.encode_value(value, parts.value)?;
    parts.backend.put(parts.key, parts.value)
}

/// Up to [`CHUNK`] entries of a namespace in a key group, after the key bytes `after`, as
/// `(key bytes, cell)`; `delete` removes them as it reads them.
pub(crate) fn chunk<B: StateBackend>(
    parts: &mut Parts<'_, B>,
    prefix: &[u8],
    after: Option<&[u8]>,
    delete: bool,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut entries = Vec::new();
    parts.backend.scan(prefix, after, |key, value| {
        entries.push((key.to_vec(), value.to_vec()));
        if entries.len() == CHUNK {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    if delete {
        for (key, _) in &entries {
            parts.key.clear();
            parts.key.extend_from_slice(prefix);
            parts.key.extend_from_slice(key);
            parts.backend.delete(parts.key)?;
        }
    }
    Ok(entries)
}

/// The first entry's stored value under `prefix`.
pub(crate) fn first<B: StateBackend>(parts: &mut Parts<'_, B>, prefix: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut first = None;
    parts.backend.scan(prefix, None, |_, value| {
        first = Some(value.to_vec());
        ControlFlow::Break(())
    })?;
    Ok(first)
}

/// The namespaces (their bytes) with entries in a key group: one seek per namespace, past
/// all of its entries to the next.
pub(crate) fn namespaces_in<B: StateBackend>(
    parts: &mut Parts<'_, B>,
    codec: &EntryCodec,
    key_group: usize,
) -> Result<Vec<Vec<u8>>> {
    let prefix = codec.state_prefix(key_group);
    let mut found = Vec::new();
    let mut from = Vec::new();
    loop {
        let mut first = None;
        parts.backend.scan_from(&prefix, &from, |rest, _| {
            first = Some(rest.to_vec());
            ControlFlow::Break(())
        })?;
        let Some(rest) = first else { break };
        let (namespace, _) = codec.split(&rest)?;
        let namespace_field = &rest[..4 + namespace.len()];
        found.push(namespace.to_vec());
        match successor(namespace_field) {
            Some(next) => from = next,
            None => break,
        }
    }
    Ok(found)
}
