//! A namespaced state's entries as backend bytes: the same for the sled backend, which
//! stores them, and the heap backend, which writes them only into snapshots.
//!
//! ```text
//! key   = key_group | name_len | name | ns_len u32 | bincode(namespace) | bincode(key)
//! value = cell: 0x00 | bincode(value)
//! ```
//!
//! This is the [entry-key layout](crate::backend::layout) with the namespace in its *key*
//! field and the key in its *user key* field: everything of one namespace in a key group is
//! one contiguous range (a window fires with one prefix scan per key group), while the key
//! group still comes from the key, so the entries move with their keys on rescaling.

use eddy_core::key_encoding::encode_key;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::backend::layout;
use crate::cell::{self, Cell, CodecError};
use crate::error::{Result, StateError};

/// What encodes and decodes one namespaced state's entries.
#[derive(Debug, Clone)]
pub(crate) struct EntryCodec {
    /// The state's name, for errors.
    pub(crate) name: String,
    /// `name_len | name`, as in every entry key.
    pub(crate) name_field: Vec<u8>,
}

impl EntryCodec {
    pub(crate) fn new(name: &str) -> Result<Self> {
        Ok(EntryCodec { name: name.to_string(), name_field: layout::name_field(name)? })
    }

    /// `key_group | name`: the prefix of the state's entries in a key group.
    pub(crate) fn state_prefix(&self, key_group: usize) -> Vec<u8> {
        let mut prefix = Vec::with_capacity(layout::KEY_GROUP_BYTES + self.name_field.len());
        prefix.extend_from_slice(&layout::key_group_prefix(key_group));
        prefix.extend_from_slice(&self.name_field);
        prefix
    }

    /// `key_group | name | ns_len | namespace`: the prefix of one namespace's entries.
    pub(crate) fn namespace_prefix(&self, key_group: usize, namespace: &[u8]) -> Result<Vec<u8>> {
        let mut prefix = self.state_prefix(key_group);
        layout::push_key(&mut prefix, namespace)?;
        Ok(prefix)
    }

    /// Appends `value`'s bincode bytes to `out`.
    pub(crate) fn encode_part<T: Serialize + ?Sized>(&self, value: &T, out: &mut Vec<u8>) -> Result<()> {
        encode_key(value, out).map_err(|e| StateError::KeyEncoding(format!("state '{}': {e}", self.name)))
    }

    /// A value as a stored cell.
    pub(crate) fn encode_value<V: Serialize>(&self, value: &V, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        cell::write_cell(out, None, value).map_err(|source| StateError::Encode { state: self.name.clone(), source })
    }

    /// Decodes a namespace or key from its bincode bytes.
    pub(crate) fn decode_part<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        cell::decode_value(bytes).map_err(|e| self.codec_error::<T>(e))
    }

    /// Decodes a value from its stored cell.
    pub(crate) fn decode_value<V: DeserializeOwned>(&self, bytes: &[u8]) -> Result<V> {
        Cell::parse(bytes).and_then(|cell| cell::decode_value(cell.payload)).map_err(|e| self.codec_error::<V>(e))
    }

    fn codec_error<T>(&self, error: CodecError) -> StateError {
        match error {
            CodecError::Decode(source) => {
                StateError::Decode { state: self.name.clone(), type_name: std::any::type_name::<T>(), source }
            }
            CodecError::Corrupted(reason) => StateError::Corrupted { state: self.name.clone(), reason },
        }
    }

    /// Splits what follows the state prefix into `(namespace bytes, key bytes)`.
    pub(crate) fn split<'a>(&self, rest: &'a [u8]) -> Result<(&'a [u8], &'a [u8])> {
        let damaged = || StateError::Corrupted {
            state: self.name.clone(),
            reason: format!("an entry key of {} bytes does not hold a namespace and a key", rest.len()),
        };
        let len = rest.get(..4).ok_or_else(damaged)?;
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let namespace = rest.get(4..4 + len).ok_or_else(damaged)?;
        Ok((namespace, &rest[4 + len..]))
    }
}

/// The smallest byte string after every string that starts with `prefix` (`None`: there is
/// none, the prefix is all `0xff`): where a scan resumes to skip a whole sub-range.
pub(crate) fn successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xff)?;
    let mut next = prefix[..=last].to_vec();
    next[last] += 1;
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_successor_of_a_prefix_follows_everything_it_starts() {
        assert_eq!(successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(successor(&[1, 0xff]), Some(vec![2]));
        assert_eq!(successor(&[0xff, 0xff]), None);
        for longer in [vec![1, 2, 0], vec![1, 2, 0xff, 0xff]] {
            assert!(longer.as_slice() < successor(&[1, 2]).unwrap().as_slice());
        }
    }
}
