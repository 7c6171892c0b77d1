//! The on-disk layout of a snapshot: tree names, entry keys, checksums and fingerprints.

use xxhash_rust::xxh3::{xxh3_64, Xxh3};

/// Identifies an eddy snapshot's metadata, so a foreign sled database is refused clearly.
pub const MAGIC: &str = "eddy-snapshot";

/// The snapshot format this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 3;

/// The oldest snapshot format this build reads: version 1, before incremental checkpoints.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// An incremental checkpoint takes a chunk over from an earlier checkpoint only if that
/// checkpoint's id is at most this much lower; an older chunk is written again. This bounds
/// how many checkpoint directories unchanged state keeps alive (Flink's changelog backend
/// materializes periodically for the same reason).
pub const REWRITE_AFTER: u64 = 8;

/// A changelog checkpoint ([`write_changelog`](super::write_changelog)) writes a keyed part
/// in full again (materialises it) once every this many ids, staggered by key group, and
/// at the latest when something it refers to is this many ids old: a restore applies at
/// most this many deltas per part, and at each checkpoint about one part in this many is
/// rewritten. Larger means less written per checkpoint (the state divided by it, besides
/// the change) but longer delta chains and more old checkpoints kept alive (Flink's
/// changelog backend materializes every 10 minutes by default, for the same trade).
pub const MATERIALIZE_AFTER: u64 = 32;

/// The sled tree of keyed state entries.
pub(crate) const KEYED_TREE: &str = "keyed";

/// The sled tree of keyed parts' deltas (format version 3): one per part a checkpoint
/// changed without storing it in full, under the part's chunk key with number 0.
pub(crate) const DELTAS_TREE: &str = "deltas";

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

/// A keyed chunk is closed after this many entries or once its frames reach
/// [`CHUNK_TARGET_BYTES`], whichever comes first (the sizes are measured: see the module docs).
pub(crate) const CHUNK_MAX_ENTRIES: usize = 1024;

/// A keyed chunk is closed once its frames reach this many bytes; one entry larger than
/// this is a chunk of its own.
pub(crate) const CHUNK_TARGET_BYTES: usize = 64 << 10;

/// A keyed chunk also ends after a key whose xxh3-64 has these bits all zero (one key in
/// 512 on average), so chunk boundaries follow the keys: see [`ends_chunk`].
pub(crate) const CHUNK_BOUNDARY_MASK: u64 = 0x1ff;

/// Whether a chunk ends after `key` whatever its size: content-defined chunking, so that
/// inserting or changing a few entries leaves the other chunks of their part unchanged.
pub(crate) fn ends_chunk(key: &[u8]) -> bool {
    xxh3_64(key) & CHUNK_BOUNDARY_MASK == 0
}

/// The longest key or value a frame's u32 length can say.
pub(crate) const MAX_FRAMED_LEN: usize = u32::MAX as usize;

/// A keyed chunk's key: `uid prefix | key_group u16 BE | state_len u16 BE | state | chunk u32 BE`.
///
/// The key group comes before the state name so that a subtask's key-group range is one
/// contiguous scan whatever states the operator has; the chunk number last, so a state's
/// chunks in a key group follow each other in key order.
pub(crate) fn chunk_key(uid_prefix: &[u8], key_group: u16, state: &str, chunk: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(uid_prefix.len() + 8 + state.len());
    out.extend_from_slice(uid_prefix);
    out.extend_from_slice(&key_group.to_be_bytes());
    push_name(&mut out, state);
    out.extend_from_slice(&chunk.to_be_bytes());
    out
}

/// The first possible chunk key of `key_group` for an operator: where a range scan starts.
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

/// A keyed chunk's key with its operator's prefix removed, split into its parts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ChunkKey<'a> {
    /// The key group.
    pub key_group: u16,
    /// The state name's bytes (not checked to be UTF-8: names are compared as bytes).
    pub state: &'a [u8],
    /// The chunk's number within its state and key group, from 0.
    pub chunk: u32,
}

/// Splits the part of a chunk key after the uid prefix; `None` if it is malformed.
pub(crate) fn parse_chunk_key(rest: &[u8]) -> Option<ChunkKey<'_>> {
    let (key_group, rest) = split_u16(rest)?;
    let (state, rest) = split_name(rest)?;
    let chunk = u32::from_be_bytes(rest.try_into().ok()?);
    Some(ChunkKey { key_group, state, chunk })
}

/// Appends one entry's frame, `key_len u32 BE | key | value_len u32 BE | value`, to a chunk;
/// callers check both lengths are at most [`MAX_FRAMED_LEN`] first.
pub(crate) fn push_frame(chunk: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    chunk.extend_from_slice(&(key.len() as u32).to_be_bytes());
    chunk.extend_from_slice(key);
    chunk.extend_from_slice(&(value.len() as u32).to_be_bytes());
    chunk.extend_from_slice(value);
}

/// A chunk whose bytes are not one or more whole frames.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BrokenFrames;

/// The `(key, value)` entries of a stored chunk, in order. A chunk is one or more whole
/// frames: an empty chunk, or one whose lengths run past its end, yields one
/// [`BrokenFrames`] and stops.
pub(crate) fn frames(chunk: &[u8]) -> Frames<'_> {
    Frames { rest: chunk, started: false }
}

/// The iterator [`frames`] returns.
pub(crate) struct Frames<'a> {
    rest: &'a [u8],
    /// Whether a frame was read, to tell an empty chunk (broken: the writer never stores
    /// one) from the end of a good one.
    started: bool,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), BrokenFrames>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() && self.started {
            return None;
        }
        self.started = true;
        let frame = split_framed(self.rest).and_then(|(key, rest)| {
            let (value, rest) = split_framed(rest)?;
            Some((key, value, rest))
        });
        match frame {
            Some((key, value, rest)) => {
                self.rest = rest;
                Some(Ok((key, value)))
            }
            None => {
                // Nothing after a broken frame can be trusted: stop.
                self.rest = &[];
                Some(Err(BrokenFrames))
            }
        }
    }
}

/// Splits a `len u32 BE | bytes` off the front.
fn split_framed(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    (rest.len() >= len).then(|| rest.split_at(len))
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
/// order, first the `keyed` tree (one pair per chunk: its key and its whole run of frames),
/// then the `lists` tree. Each pair is framed as `key_len u32 BE | key | value_len u32 BE |
/// value`, so moving bytes between a key and its value changes the checksum.
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
        let key = chunk_key(&prefix, 300, "count", 7);
        let parsed = parse_chunk_key(key.strip_prefix(&prefix[..]).unwrap()).unwrap();
        assert_eq!(parsed, ChunkKey { key_group: 300, state: b"count", chunk: 7 });
        let list = list_key(&list_prefix(&prefix, "offsets"), 7, 9);
        assert_eq!(parse_list_key(list.strip_prefix(&prefix[..]).unwrap()), Some((&b"offsets"[..], 7, 9)));
    }

    #[test]
    fn malformed_keys_are_none() {
        assert_eq!(parse_chunk_key(&[0]), None);
        assert_eq!(parse_chunk_key(&[0, 1, 0, 9, b'x']), None);
        assert_eq!(parse_chunk_key(&[0, 1, 0, 1, b'x', 0, 0, 0]), None);
        assert_eq!(parse_chunk_key(&[0, 1, 0, 1, b'x', 0, 0, 0, 0, 0]), None);
        assert_eq!(parse_list_key(&[0, 1, b'x', 0, 0, 0, 1]), None);
        assert_eq!(parse_list_key(&[0, 1, b'x', 0, 0, 0, 1, 0, 0, 0, 2, 5]), None);
    }

    #[test]
    fn key_groups_order_as_numbers() {
        // Big-endian key groups and chunk numbers make sled's byte order numeric order.
        let prefix = uid_prefix("op");
        assert!(chunk_key(&prefix, 255, "z", 9) < chunk_key(&prefix, 256, "a", 0));
        assert!(chunk_key(&prefix, 1, "a", 255) < chunk_key(&prefix, 1, "a", 256));
    }

    #[test]
    fn frames_read_back_what_was_pushed() {
        let mut chunk = Vec::new();
        push_frame(&mut chunk, b"k1", b"");
        push_frame(&mut chunk, b"", b"value");
        let read: Vec<_> = frames(&chunk).collect();
        assert_eq!(read, vec![Ok((&b"k1"[..], &b""[..])), Ok((&b""[..], &b"value"[..]))]);
    }

    #[test]
    fn broken_frames_end_with_an_error() {
        let mut chunk = Vec::new();
        push_frame(&mut chunk, b"key", b"value");
        // Empty, cut anywhere, a length past the end, or trailing bytes: never a panic.
        assert_eq!(frames(&[]).collect::<Vec<_>>(), vec![Err(BrokenFrames)]);
        for len in 1..chunk.len() {
            let read: Vec<_> = frames(&chunk[..len]).collect();
            assert_eq!(read.last(), Some(&Err(BrokenFrames)), "cut at {len}");
        }
        let mut long = chunk.clone();
        long[3] = 200;
        assert_eq!(frames(&long).collect::<Vec<_>>(), vec![Err(BrokenFrames)]);
        chunk.push(0);
        assert_eq!(frames(&chunk).collect::<Vec<_>>(), vec![Ok((&b"key"[..], &b"value"[..])), Err(BrokenFrames)]);
    }

    #[test]
    fn fingerprint_ignores_order_but_not_boundaries() {
        assert_eq!(fingerprint(["a", "b"]), fingerprint(["b", "a"]));
        assert_ne!(fingerprint(["ab", "c"]), fingerprint(["a", "bc"]));
    }
}
