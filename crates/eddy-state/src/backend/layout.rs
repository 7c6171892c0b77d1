//! Backend keys: how (key group, state name, key, user-map key) becomes one sortable byte string.
//!
//! ```text
//! key_group: u16 BE | name_len: u16 BE | name (UTF-8) | key_len: u32 BE | key | user key (map state only)
//! ```
//!
//! - The key group comes first, so everything of one key group is one contiguous range of
//!   keys: a snapshot of a key group is a single prefix scan, and restoring a key group at
//!   another parallelism moves whole ranges.
//! - Within a key group, everything of one state is one range (`key_group | name`), and
//!   everything of one key of one state is one range (`… | key_len | key`): a map state's
//!   entries for the current key are a prefix scan, and `clear` deletes a prefix.
//! - The length prefixes make the layout unambiguous whatever the key types: state `"ab"`
//!   can never see entries of state `"abc"`, nor key `[1]` those of key `[1, 2]`.
//! - `key` and `user key` are bincode (standard config) bytes,
//!   [`eddy_core::key_encoding::encode_key`], the same bytes the key group is hashed from.
//!
//! Both backends use this layout; snapshot entries carry these keys unchanged, so a snapshot
//! of one backend restores into the other.

use crate::error::{Result, StateError};

/// Bytes of the key-group prefix.
pub const KEY_GROUP_BYTES: usize = 2;

/// The most key groups the layout can address (the key group is a `u16`).
pub const MAX_KEY_GROUPS: usize = 1 << 16;

/// The parts of an entry key, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryKey<'a> {
    /// The key group.
    pub key_group: usize,
    /// The state's name.
    pub state: &'a str,
    /// The key's bincode bytes.
    pub key: &'a [u8],
    /// The user-map key's bincode bytes (empty for states other than maps).
    pub user_key: &'a [u8],
}

impl<'a> EntryKey<'a> {
    /// Parses an entry key; `None` when the bytes do not follow the layout.
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        let key_group = key_group_of(bytes)?;
        let rest = &bytes[KEY_GROUP_BYTES..];
        let name_len = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize;
        let state = std::str::from_utf8(rest.get(2..2 + name_len)?).ok()?;
        let rest = &rest[2 + name_len..];
        let key_len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let key = rest.get(4..4 + key_len)?;
        Some(EntryKey { key_group, state, key, user_key: &rest[4 + key_len..] })
    }

    /// The entry key's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        push_state_prefix(&mut out, self.key_group, self.state.as_bytes())?;
        push_key(&mut out, self.key)?;
        out.extend_from_slice(self.user_key);
        Ok(out)
    }
}

/// The key group an entry key starts with.
pub fn key_group_of(bytes: &[u8]) -> Option<usize> {
    Some(u16::from_be_bytes(bytes.get(..KEY_GROUP_BYTES)?.try_into().ok()?) as usize)
}

/// The prefix shared by every entry of `key_group`.
pub fn key_group_prefix(key_group: usize) -> [u8; KEY_GROUP_BYTES] {
    (key_group as u16).to_be_bytes()
}

/// `name_len | name`, the part of a key that names the state.
pub(crate) fn name_field(name: &str) -> Result<Vec<u8>> {
    let len = u16::try_from(name.len())
        .map_err(|_| StateError::NameTooLong { name: name.chars().take(40).collect(), len: name.len() })?;
    let mut out = Vec::with_capacity(2 + name.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    Ok(out)
}

/// Appends `key_group | name_len | name` to `out`.
pub(crate) fn push_state_prefix(out: &mut Vec<u8>, key_group: usize, name: &[u8]) -> Result<()> {
    let len = u16::try_from(name.len()).map_err(|_| StateError::NameTooLong {
        name: String::from_utf8_lossy(&name[..name.len().min(40)]).into_owned(),
        len: name.len(),
    })?;
    out.extend_from_slice(&key_group_prefix(key_group));
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(name);
    Ok(())
}

/// Appends `key_len | key` to `out`.
pub(crate) fn push_key(out: &mut Vec<u8>, key: &[u8]) -> Result<()> {
    let len = u32::try_from(key.len())
        .map_err(|_| StateError::KeyEncoding(format!("a key of {} bytes is too long (at most 4 GiB)", key.len())))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(key);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_key_round_trips_and_sorts_by_key_group_first() {
        let entry = EntryKey { key_group: 300, state: "counts", key: &[3, b'a', b'b', b'c'], user_key: &[7] };
        let bytes = entry.to_bytes().unwrap();
        assert_eq!(&bytes[..2], &[1, 44]);
        assert_eq!(EntryKey::parse(&bytes), Some(entry));
        let later = EntryKey { key_group: 301, state: "a", key: &[], user_key: &[] }.to_bytes().unwrap();
        assert!(bytes < later);
        assert_eq!(EntryKey::parse(&bytes[..5]), None);
    }
}
