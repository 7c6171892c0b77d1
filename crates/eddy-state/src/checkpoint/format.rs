//! The on-disk layout of a snapshot: tree names, entry keys, checksums and fingerprints.

use xxhash_rust::xxh3::{xxh3_64, Xxh3};

/// Identifies an eddy snapshot's metadata, so a foreign sled database is refused clearly.
pub const MAGIC: &str = "eddy-snapshot";

/// The snapshot format this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// The sled tree of keyed state entries.
pub(crate) const KEYED_TREE: &str = "keyed";

/// The sled tree of operator-state list items.
pub(crate) const LISTS_TREE: &str = "lists";

/// The key, in the default tree, of the metadata; written last, so its presence marks a
/// complete snapshot.
pub(crate) const METADATA_KEY: &[u8] = b"metadata";

/// The longest uid or state name the u16 length prefixes can hold.
pub(crate) const MAX_NAME_LEN: usize = u16::MAX as usize;

/// `uid_len u16 BE | uid`: every key of an operator, in both trees, starts with it, so an
/// operator's entries are one contiguous key range.
pub(crate) fn uid_prefix(uid: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + uid.len());
    push_name(&mut out, uid);
    out
}

/// Appends `len u16 BE | name`; callers check `name.len() <= MAX_NAME_LEN` first.
fn push_name(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
}

/// A keyed entry's key: `uid prefix | key_group u16 BE | state_len u16 BE | state | key`.
///
/// The key group comes before the state name so that a subtask's key-group range is one
/// contiguous scan whatever states the operator has.
pub(crate) fn keyed_key(uid_prefix: &[u8], key_group: u16, state: &str, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(uid_prefix.len() + 4 + state.len() + key.len());
    out.extend_from_slice(uid_prefix);
    out.extend_from_slice(&key_group.to_be_bytes());
    push_name(&mut out, state);
    out.extend_from_slice(key);
    out
}

/// The first possible keyed key of `key_group` for an operator: where a range scan starts.
pub(crate) fn keyed_scan_start(uid_prefix: &[u8], key_group: u16) -> Vec<u8> {
    [uid_prefix, &key_group.to_be_bytes()].concat()
}

/// `uid prefix | name_len u16 BE | name`: the prefix of every item of one list.
pub(crate) fn list_prefix(uid_prefix: &[u8], name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(uid_prefix.len() + 2 + name.len());
    out.extend_from_slice(uid_prefix);
    push_name(&mut out, name);
    out
}

/// A list item's key: `list prefix | old_subtask u32 BE | index u32 BE`, so a list reads
/// back subtask by subtask, in item order.
pub(crate) fn list_key(list_prefix: &[u8], subtask: u32, index: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(list_prefix.len() + 8);
    out.extend_from_slice(list_prefix);
    out.extend_from_slice(&subtask.to_be_bytes());
    out.extend_from_slice(&index.to_be_bytes());
    out
}

/// A keyed key with its operator's prefix removed, split into its parts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct KeyedKey<'a> {
    /// The key group.
    pub key_group: u16,
    /// The state name's bytes (not checked to be UTF-8: names are compared as bytes).
    pub state: &'a [u8],
    /// The user's key bytes.
    pub key: &'a [u8],
}

/// Splits the part of a keyed key after the uid prefix; `None` if it is malformed.
pub(crate) fn parse_keyed_key(rest: &[u8]) -> Option<KeyedKey<'_>> {
    let (key_group, rest) = split_u16(rest)?;
    let (state, key) = split_name(rest)?;
    Some(KeyedKey { key_group, state, key })
}

/// Splits the part of a list key after the uid prefix into `(name, subtask, index)`.
pub(crate) fn parse_list_key(rest: &[u8]) -> Option<(&[u8], u32, u32)> {
    let (name, rest) = split_name(rest)?;
    let rest: [u8; 8] = rest.try_into().ok()?;
    let subtask = u32::from_be_bytes(rest[..4].try_into().ok()?);
    let index = u32::from_be_bytes(rest[4..].try_into().ok()?);
    Some((name, subtask, index))
}

/// Splits a u16 BE off the front.
fn split_u16(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<2>()?;
    Some((u16::from_be_bytes(*head), rest))
}

/// Splits a `len u16 BE | name` off the front.
fn split_name(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = split_u16(bytes)?;
    let len = usize::from(len);
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The checksum of one operator: xxh3-64 over its stored `(key, value)` pairs in sled key
/// order, first the `keyed` tree, then the `lists` tree. Each pair is framed as
/// `key_len u32 BE | key | value_len u32 BE | value`, so moving bytes between a key and its
/// value changes the checksum.
pub(crate) struct EntryChecksum(Box<Xxh3>);

impl EntryChecksum {
    /// An empty checksum.
    pub fn new() -> Self {
        EntryChecksum(Box::new(Xxh3::new()))
    }

    /// Adds one stored pair.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        self.0.update(&(key.len() as u32).to_be_bytes());
        self.0.update(key);
        self.0.update(&(value.len() as u32).to_be_bytes());
        self.0.update(value);
    }

    /// The checksum of everything added.
    pub fn digest(&self) -> u64 {
        self.0.digest()
    }
}

/// The job fingerprint: xxh3-64 of the sorted operator uids, each length-prefixed (u32 BE)
/// so `["ab", "c"]` and `["a", "bc"]` differ.
pub fn fingerprint<'a>(uids: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut uids: Vec<&str> = uids.into_iter().collect();
    uids.sort_unstable();
    let mut bytes = Vec::new();
    for uid in uids {
        bytes.extend_from_slice(&(uid.len() as u32).to_be_bytes());
        bytes.extend_from_slice(uid.as_bytes());
    }
    xxh3_64(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_back_into_their_parts() {
        let prefix = uid_prefix("op");
        let key = keyed_key(&prefix, 300, "count", b"k\x00y");
        let parsed = parse_keyed_key(key.strip_prefix(&prefix[..]).unwrap()).unwrap();
        assert_eq!(parsed, KeyedKey { key_group: 300, state: b"count", key: b"k\x00y" });
        let list = list_key(&list_prefix(&prefix, "offsets"), 7, 9);
        assert_eq!(parse_list_key(list.strip_prefix(&prefix[..]).unwrap()), Some((&b"offsets"[..], 7, 9)));
    }

    #[test]
    fn malformed_keys_are_none() {
        assert_eq!(parse_keyed_key(&[0]), None);
        assert_eq!(parse_keyed_key(&[0, 1, 0, 9, b'x']), None);
        assert_eq!(parse_list_key(&[0, 1, b'x', 0, 0, 0, 1]), None);
        assert_eq!(parse_list_key(&[0, 1, b'x', 0, 0, 0, 1, 0, 0, 0, 2, 5]), None);
    }

    #[test]
    fn key_groups_order_as_numbers() {
        // Big-endian key groups make sled's byte order the key-group order (256 after 255).
        let prefix = uid_prefix("op");
        assert!(keyed_key(&prefix, 255, "z", b"") < keyed_key(&prefix, 256, "a", b""));
    }

    #[test]
    fn fingerprint_ignores_order_but_not_boundaries() {
        assert_eq!(fingerprint(["a", "b"]), fingerprint(["b", "a"]));
        assert_ne!(fingerprint(["ab", "c"]), fingerprint(["a", "bc"]));
    }
}
