//! A keyed part's delta: the entries that changed between two checkpoints, and how a
//! restore applies it on top of the part's chunks.
//!
//! A delta is stored like a chunk, as frames `key_len u32 │ key │ value_len u32 │ value` in
//! key order, each key once; its value is `1 │ the new value` for a key written and `0` for
//! a key removed (a tombstone).

use xxhash_rust::xxh3::xxh3_64;

use super::format::{frames, push_frame};
use super::metadata::DeltaRef;

/// The tag of a written value.
const PUT: u8 = 1;

/// The tag of a removed key.
const REMOVED: u8 = 0;

/// One change of a delta: a key and its new value, or `None` if it was removed.
pub(crate) type Change<'a> = (&'a [u8], Option<&'a [u8]>);

/// The stored bytes of a delta; `changes` must be in key order, each key once.
pub(crate) fn encode<'a>(changes: impl IntoIterator<Item = Change<'a>>) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut value = Vec::new();
    for (key, new) in changes {
        value.clear();
        match new {
            Some(new) => {
                value.push(PUT);
                value.extend_from_slice(new);
            }
            None => value.push(REMOVED),
        }
        push_frame(&mut bytes, key, &value);
    }
    bytes
}

/// The changes of a stored delta, checked against what its metadata says (`expected`): whole
/// frames, tags, keys in order, its count and checksum. The error says what is wrong.
pub(crate) fn decode<'a>(bytes: &'a [u8], expected: &DeltaRef) -> Result<Vec<Change<'a>>, String> {
    if (bytes.len() as u64, xxh3_64(bytes)) != (expected.bytes, expected.checksum) {
        return Err("does not match its checksum".into());
    }
    let mut changes: Vec<Change<'a>> = Vec::new();
    for frame in frames(bytes) {
        let (key, value) = frame.map_err(|_| "is not a run of whole entries".to_string())?;
        let change = match value.split_first() {
            Some((&PUT, new)) => Some(new),
            Some((&REMOVED, [])) => None,
            _ => return Err("has an entry that is neither a value nor a removal".into()),
        };
        if changes.last().is_some_and(|(last, _)| *last >= key) {
            return Err("has keys out of order".into());
        }
        changes.push((key, change));
    }
    if changes.len() as u64 != u64::from(expected.changes) {
        return Err(format!("has {} changes, its metadata says {}", changes.len(), expected.changes));
    }
    Ok(changes)
}

/// Applies changes in key order to entries in key order: a merge, linear in both.
pub(crate) fn apply(entries: Vec<(Vec<u8>, Vec<u8>)>, changes: &[Change<'_>]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::with_capacity(entries.len() + changes.len());
    let mut changes = changes.iter().peekable();
    for (key, value) in entries {
        while let Some((changed, new)) = changes.next_if(|(changed, _)| *changed < &key[..]) {
            if let Some(new) = new {
                out.push((changed.to_vec(), new.to_vec()));
            }
        }
        match changes.next_if(|(changed, _)| *changed == &key[..]) {
            Some((_, Some(new))) => out.push((key, new.to_vec())),
            Some((_, None)) => {}
            None => out.push((key, value)),
        }
    }
    for (changed, new) in changes {
        if let Some(new) = new {
            out.push((changed.to_vec(), new.to_vec()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta_ref(bytes: &[u8], changes: u32) -> DeltaRef {
        DeltaRef { stored_in: 1, changes, bytes: bytes.len() as u64, checksum: xxh3_64(bytes) }
    }

    #[test]
    fn a_delta_reads_back_and_applies_in_key_order() {
        let bytes = encode([(&b"a"[..], Some(&b"1"[..])), (b"c", None), (b"d", Some(b""))]);
        let changes = decode(&bytes, &delta_ref(&bytes, 3)).unwrap();
        assert_eq!(changes, vec![(&b"a"[..], Some(&b"1"[..])), (b"c", None), (b"d", Some(b""))]);
        let base = vec![(b"b".to_vec(), b"x".to_vec()), (b"c".to_vec(), b"y".to_vec()), (b"e".to_vec(), b"z".to_vec())];
        let applied = apply(base, &changes);
        let expected = [(&b"a"[..], &b"1"[..]), (b"b", b"x"), (b"d", b""), (b"e", b"z")];
        assert_eq!(applied, expected.map(|(k, v)| (k.to_vec(), v.to_vec())));
    }

    #[test]
    fn a_damaged_delta_is_an_error() {
        let bytes = encode([(&b"a"[..], Some(&b"1"[..])), (b"b", None)]);
        assert!(decode(&bytes, &delta_ref(&bytes, 3)).is_err(), "count");
        let mut flipped = bytes.clone();
        flipped[5] ^= 1;
        assert!(decode(&flipped, &delta_ref(&bytes, 2)).is_err(), "checksum");
        let mut bad_tag = Vec::new();
        push_frame(&mut bad_tag, b"a", &[7]);
        assert!(decode(&bad_tag, &delta_ref(&bad_tag, 1)).is_err(), "tag");
        let unordered = encode([(&b"b"[..], None), (b"a", None)]);
        assert!(decode(&unordered, &delta_ref(&unordered, 2)).is_err(), "order");
    }
}
