//! Keys and key groups: where a key's records go and where its state is filed.
//!
//! A key's stable hash is xxh3 of its bincode bytes (never std's `DefaultHasher`, which
//! changes between builds). The hash picks one of `max_parallelism` key groups, and a key
//! group picks a subtask, exactly as Flink's `KeyGroupRangeAssignment` does. Because state is
//! filed per key group, a savepoint can be restored at any parallelism up to
//! `max_parallelism`.

use std::hash::Hasher;

use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

use crate::key_encoding::{encode_key, hash_key};
use crate::{Error, Result};

/// The default number of key groups (Flink's default lower bound, too).
pub const DEFAULT_MAX_PARALLELISM: usize = 128;

/// Computes stable key hashes, reusing one encoding buffer so hashing does not allocate.
#[derive(Debug, Default, Clone)]
pub struct KeyHasher {
    buf: Vec<u8>,
}

impl KeyHasher {
    /// xxh3-64 of the key's bincode (standard config) encoding.
    #[inline]
    pub fn hash<K: Serialize + ?Sized>(&mut self, key: &K) -> Result<u64> {
        self.buf.clear();
        encode_key(key, &mut self.buf).map_err(|e| Error::KeyEncoding(e.to_string()))?;
        Ok(xxh3_64(&self.buf))
    }
}

/// A fast hash of a key for tables that stay in memory in one process (a pre-aggregation's
/// partials, say): the key's bincode bytes fed to FxHash as they are encoded, with no buffer
/// to copy them into. It is **not** stable (it may change with the `rustc-hash` version), so
/// it never picks a key group or files state: [`KeyHasher`] does that. Keys that are equal
/// have equal hashes, as with the stable hash, because both hash the same bytes.
#[inline]
pub fn local_hash<K: Serialize + ?Sized>(key: &K) -> Result<u64> {
    let mut hasher = rustc_hash::FxHasher::default();
    hash_key(key, &mut hasher).map_err(|e| Error::KeyEncoding(e.to_string()))?;
    Ok(hasher.finish())
}

/// The key group of a key hash: `hash % max_parallelism`.
#[inline]
pub fn key_group(hash: u64, max_parallelism: usize) -> usize {
    (hash % max_parallelism as u64) as usize
}

/// The subtask that owns a key group: `key_group * parallelism / max_parallelism`.
#[inline]
pub fn subtask_for_key_group(key_group: usize, max_parallelism: usize, parallelism: usize) -> usize {
    key_group * parallelism / max_parallelism
}

/// The contiguous key groups `start..=end` owned by one subtask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGroupRange {
    /// First key group (inclusive).
    pub start: usize,
    /// Last key group (inclusive).
    pub end: usize,
}

impl KeyGroupRange {
    /// The key groups of `subtask` out of `parallelism`, the inverse of [`subtask_for_key_group`].
    pub fn of_subtask(subtask: usize, max_parallelism: usize, parallelism: usize) -> Self {
        KeyGroupRange {
            start: (subtask * max_parallelism).div_ceil(parallelism),
            end: ((subtask + 1) * max_parallelism - 1) / parallelism,
        }
    }

    /// Whether `key_group` lies in this range.
    pub fn contains(&self, key_group: usize) -> bool {
        (self.start..=self.end).contains(&key_group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hash_is_stable_across_builds() {
        // Pinned value: if this changes, savepoints taken by older builds route keys differently.
        let mut h = KeyHasher::default();
        assert_eq!(h.hash("word").unwrap(), xxh3_64(&[4, b'w', b'o', b'r', b'd']));
        assert_eq!(h.hash(&String::from("word")).unwrap(), h.hash("word").unwrap());
    }

    proptest! {
        #[test]
        fn ranges_partition_key_groups_and_match_the_assignment(
            max_p in 1usize..300, p_raw in 1usize..300,
        ) {
            let p = p_raw.min(max_p);
            let mut next = 0;
            for subtask in 0..p {
                let range = KeyGroupRange::of_subtask(subtask, max_p, p);
                prop_assert_eq!(range.start, next);
                for kg in range.start..=range.end {
                    prop_assert_eq!(subtask_for_key_group(kg, max_p, p), subtask);
                }
                next = range.end + 1;
            }
            prop_assert_eq!(next, max_p);
        }
    }
}
