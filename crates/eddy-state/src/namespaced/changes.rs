//! Change tracking for a namespaced state on the heap: the (namespace, key) entries written
//! or removed since a checkpoint, so that an incremental checkpoint hands over only those
//! and not every window's contents.
//!
//! The table keeps live values, not bytes, so the log keeps typed marks: per namespace, the
//! keys touched since the last barrier (by the stable hash the table uses), each with the
//! length its stored cell had before the first change (`None`: it had none). A window that
//! fires touches every key it held, so its entries come out as removals (tombstones).
//! Failed checkpoints are handled as the heap backend's log does
//! ([`Barriers`](crate::backend::change_log::Barriers)): the marks of the last barrier are
//! kept until the next one says whether the delta builds on it.
//!
//! At the barrier ([`TableLog::cut`]) the marks become [`Change`]s: each key's entry bytes
//! and its stored cell now, encoded as a full snapshot would encode them. Only then is
//! anything encoded, so tracking costs an update one probe of the marks, plus one encoding
//! of the old value the first time an existing key changes after a barrier.

use std::collections::BTreeMap;

use hashbrown::hash_table::{Entry, HashTable};

use crate::backend::change_log::{Barriers, Cut};
use crate::error::Result;

/// A key touched since a barrier, and the length of its stored cell before.
pub(crate) struct Mark<K> {
    pub(crate) hash: u64,
    pub(crate) key: K,
    pub(crate) before: Option<u32>,
}

/// Marks by namespace.
pub(crate) type Marks<N, K> = BTreeMap<N, HashTable<Mark<K>>>;

/// The keys of a namespaced state touched since a checkpoint.
pub(crate) struct TableLog<N, K> {
    /// Touched since the barrier of the last checkpoint.
    current: Marks<N, K>,
    /// Touched between the checkpoint a delta builds on and the last checkpoint.
    pending: Marks<N, K>,
    barriers: Barriers,
    /// Scratch for encoding an old value to learn its length.
    scratch: Vec<u8>,
}

impl<N: Ord + Clone, K: Eq + Clone> TableLog<N, K> {
    /// An empty log; until a barrier cuts it, it can build no delta.
    pub(crate) fn new() -> Self {
        TableLog { current: Marks::new(), pending: Marks::new(), barriers: Barriers::default(), scratch: Vec::new() }
    }

    /// Notes that `key` (of stable hash `hash`) in `namespace` changes. `before` gives the
    /// length of its stored cell now (`None`: it has none), encoding into the scratch it is
    /// handed; it runs only the first time the key changes after a barrier.
    #[inline]
    pub(crate) fn touch(
        &mut self,
        namespace: &N,
        hash: u64,
        key: &K,
        before: impl FnOnce(&mut Vec<u8>) -> Result<Option<u32>>,
    ) -> Result<()> {
        let marks = match self.current.get_mut(namespace) {
            Some(marks) => marks,
            None => self.current.entry(namespace.clone()).or_default(),
        };
        if let Entry::Vacant(vacant) = marks.entry(hash, |m| m.key == *key, |m| m.hash) {
            let before = before(&mut self.scratch)?;
            vacant.insert(Mark { hash, key: key.clone(), before });
        }
        Ok(())
    }

    /// Cuts the log at the barrier of `checkpoint`: the marks since checkpoint `base`, or
    /// `None` when the log does not reach back to it (no base: the checkpoint is full).
    /// Either way the log counts again from `checkpoint`.
    pub(crate) fn cut(&mut self, checkpoint: u64, base: Option<u64>) -> Option<&Marks<N, K>> {
        match self.barriers.cut(checkpoint, base) {
            Cut::Completed => {
                self.pending = std::mem::take(&mut self.current);
            }
            Cut::Failed => {
                for (namespace, newer) in std::mem::take(&mut self.current) {
                    let older = self.pending.entry(namespace).or_default();
                    for mark in newer {
                        // The older length is the one the base holds.
                        if let Entry::Vacant(vacant) = older.entry(mark.hash, |m| m.key == mark.key, |m| m.hash) {
                            vacant.insert(mark);
                        }
                    }
                }
            }
            Cut::Unreachable => {
                self.current.clear();
                self.pending.clear();
                return None;
            }
        }
        Some(&self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(log: Option<&Marks<i64, &'static str>>) -> Vec<(i64, &'static str, Option<u32>)> {
        let mut out: Vec<_> =
            log.unwrap().iter().flat_map(|(ns, marks)| marks.iter().map(|m| (*ns, m.key, m.before))).collect();
        out.sort();
        out
    }

    fn touch(log: &mut TableLog<i64, &'static str>, namespace: i64, key: &'static str, before: Option<u32>) {
        log.touch(&namespace, key.len() as u64, &key, |_| Ok(before)).unwrap();
    }

    #[test]
    fn the_first_length_counts_and_a_failed_checkpoints_marks_come_again() {
        let mut log = TableLog::new();
        touch(&mut log, 0, "a", None);
        assert!(log.cut(1, None).is_none(), "no base: full");
        touch(&mut log, 0, "a", Some(3));
        touch(&mut log, 0, "a", Some(5));
        touch(&mut log, 7, "bb", None);
        assert_eq!(marks(log.cut(2, Some(1))), vec![(0, "a", Some(3)), (7, "bb", None)]);
        // Checkpoint 2 failed: checkpoint 3 builds on 1 and needs 2's marks too, with the
        // lengths checkpoint 1 holds.
        touch(&mut log, 7, "bb", Some(2));
        touch(&mut log, 7, "ccc", Some(4));
        assert_eq!(marks(log.cut(3, Some(1))), vec![(0, "a", Some(3)), (7, "bb", None), (7, "ccc", Some(4))]);
        // Checkpoint 3 completed: 4 builds on it.
        touch(&mut log, 1, "a", None);
        assert_eq!(marks(log.cut(4, Some(3))), vec![(1, "a", None)]);
        // A base the log does not reach: full, and counting again from 5.
        touch(&mut log, 1, "a", None);
        assert!(log.cut(5, Some(2)).is_none());
        assert_eq!(marks(log.cut(6, Some(5))), vec![]);
    }
}
