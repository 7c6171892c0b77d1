//! Change tracking for a namespaced state on the heap: the (namespace, key) entries written
//! or removed since a checkpoint, so that an incremental checkpoint hands over only those
//! and not every window's contents.
//!
//! The table keeps live values, not bytes, so the log keeps typed marks, per namespace:
//!
//! - a namespace the table did not hold at the barrier (a window opened since) is *new*:
//!   every entry it holds at the next barrier is handed over, and nothing is marked per
//!   entry, so a window opened and fired between two barriers costs nothing but one lookup
//!   per write;
//! - in a namespace the table held, each key touched since the barrier is marked (by the
//!   stable hash the table uses) with the length its stored cell had before the first change
//!   (`None`: it had none). A window that fires marks every key it held, so its entries come
//!   out as removals (tombstones).
//!
//! Failed checkpoints are handled as the heap backend's log does
//! ([`Barriers`](crate::backend::change_log::Barriers)): the marks of the last barrier are
//! kept until the next one says whether the delta builds on it, and merged with the newer
//! ones if not (older lengths win; a namespace new since the older barrier stays new).
//!
//! At the barrier the table turns the marks into [`Change`](crate::backend::Change)s,
//! encoding only then each entry as a full snapshot would.

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

/// What changed in one namespace since a barrier.
pub(crate) struct NamespaceMarks<K> {
    /// The keys touched, in a namespace the table held at the barrier.
    pub(crate) keys: HashTable<Mark<K>>,
    /// Whether the table held the namespace at the barrier.
    held: bool,
    /// Whether, held at the barrier, it was emptied and opened again since (only after a
    /// failed checkpoint's marks are merged; within one interval, keys are marked).
    reopened: bool,
}

impl<K> NamespaceMarks<K> {
    /// Whether every entry the namespace holds now is changed (with no length before,
    /// unless its key is marked).
    pub(crate) fn all_live(&self) -> bool {
        !self.held || self.reopened
    }
}

/// Marks by namespace.
pub(crate) type Marks<N, K> = BTreeMap<N, NamespaceMarks<K>>;

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

    /// The key marks of `namespace`, or `None` when it is new since the barrier (nothing to
    /// mark); `held` tells whether the table holds it now, asked the first time it is touched.
    #[inline]
    fn keys(&mut self, namespace: &N, held: impl FnOnce() -> bool) -> Option<&mut HashTable<Mark<K>>> {
        if !self.current.contains_key(namespace) {
            // Not touched since the barrier: the table holds it now if and only if it held
            // it then, since taking its last entry would have touched it.
            let marks = NamespaceMarks { keys: HashTable::new(), held: held(), reopened: false };
            self.current.insert(namespace.clone(), marks);
        }
        let marks = self.current.get_mut(namespace).expect("inserted above");
        marks.held.then_some(&mut marks.keys)
    }

    /// Notes that `key` (of stable hash `hash`) in `namespace` changes; `held` tells whether
    /// the table holds the namespace now, and `before` gives the length of the key's stored
    /// cell now (`None`: it has none), encoding into the scratch it is handed. Each runs only
    /// the first time its namespace or key is touched after a barrier.
    #[inline]
    pub(crate) fn touch(
        &mut self,
        namespace: &N,
        hash: u64,
        key: &K,
        held: impl FnOnce() -> bool,
        before: impl FnOnce(&mut Vec<u8>) -> Result<Option<u32>>,
    ) -> Result<()> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = match self.keys(namespace, held) {
            Some(keys) => mark(keys, hash, key, || before(&mut scratch)),
            None => Ok(()),
        };
        self.scratch = scratch;
        result
    }

    /// Notes that every entry of `namespace` (which the table holds) changes: `entries`
    /// gives each one's hash, key and value, `before` the length of a value's stored cell.
    pub(crate) fn touch_all<'e, V: 'e>(
        &mut self,
        namespace: &N,
        entries: impl Iterator<Item = (u64, &'e K, &'e V)>,
        mut before: impl FnMut(&'e V, &mut Vec<u8>) -> Result<u32>,
    ) -> Result<()>
    where
        K: 'e,
    {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut result = Ok(());
        if let Some(keys) = self.keys(namespace, || true) {
            for (hash, key, value) in entries {
                result = mark(keys, hash, key, || before(value, &mut scratch).map(Some));
                if result.is_err() {
                    break;
                }
            }
        }
        self.scratch = scratch;
        result
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
                    match self.pending.entry(namespace) {
                        std::collections::btree_map::Entry::Vacant(vacant) => {
                            vacant.insert(newer);
                        }
                        std::collections::btree_map::Entry::Occupied(mut older) => merge(older.get_mut(), newer),
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

/// Marks `key` unless it is marked; `before` gives its length then.
#[inline]
fn mark<K: Eq + Clone>(
    keys: &mut HashTable<Mark<K>>,
    hash: u64,
    key: &K,
    before: impl FnOnce() -> Result<Option<u32>>,
) -> Result<()> {
    if let Entry::Vacant(vacant) = keys.entry(hash, |m| m.key == *key, |m| m.hash) {
        let before = before()?;
        vacant.insert(Mark { hash, key: key.clone(), before });
    }
    Ok(())
}

/// Adds a namespace's newer marks (since the barrier of a checkpoint that failed) to its
/// older ones (since the base).
fn merge<K: Eq>(older: &mut NamespaceMarks<K>, newer: NamespaceMarks<K>) {
    if !older.held {
        // New since the base: whatever it holds now is new, whatever it lost was too.
        return;
    }
    if !newer.held {
        // Held at the base, emptied by the failed barrier (every key it held is marked) and
        // opened again: everything it holds now is changed too.
        older.reopened = true;
        return;
    }
    // Held at both: the older lengths are the base's. A key the older marks miss held at
    // the failed barrier what it held at the base, unless the namespace was emptied since
    // the base: every key it held then is marked, so the others had nothing there.
    for mut mark in newer.keys {
        if let Entry::Vacant(vacant) = older.keys.entry(mark.hash, |m| m.key == mark.key, |m| m.hash) {
            if older.reopened {
                mark.before = None;
            }
            vacant.insert(mark);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Log = TableLog<i64, &'static str>;

    /// The marked keys (namespace, key, length before), and the namespaces whose every
    /// entry is changed.
    type Seen = (Vec<(i64, &'static str, Option<u32>)>, Vec<i64>);

    fn seen(log: Option<&Marks<i64, &'static str>>) -> Seen {
        let log = log.expect("the log reaches the base");
        let mut keys: Vec<_> =
            log.iter().flat_map(|(ns, marks)| marks.keys.iter().map(|m| (*ns, m.key, m.before))).collect();
        keys.sort();
        (keys, log.iter().filter(|(_, marks)| marks.all_live()).map(|(ns, _)| *ns).collect())
    }

    /// Touches `key` of `namespace`, which the table holds now or not, its length `before`.
    fn touch(log: &mut Log, namespace: i64, key: &'static str, held: bool, before: Option<u32>) {
        log.touch(&namespace, key.len() as u64, &key, || held, |_| Ok(before)).unwrap();
    }

    #[test]
    fn the_first_length_counts_new_windows_are_not_marked_and_failed_checkpoints_come_again() {
        let mut log = Log::new();
        touch(&mut log, 0, "a", true, None);
        assert!(log.cut(1, None).is_none(), "no base: full");
        touch(&mut log, 0, "a", true, Some(3));
        touch(&mut log, 0, "a", true, Some(5));
        // A window opened since the barrier: nothing marked, all of it handed over.
        touch(&mut log, 7, "bb", false, None);
        assert_eq!(seen(log.cut(2, Some(1))), (vec![(0, "a", Some(3))], vec![7]));
        // Checkpoint 2 failed: checkpoint 3 builds on 1 and needs 2's marks too, with the
        // lengths checkpoint 1 holds; window 7 is still new since checkpoint 1.
        touch(&mut log, 7, "bb", true, Some(2));
        touch(&mut log, 9, "x", true, Some(4));
        assert_eq!(seen(log.cut(3, Some(1))), (vec![(0, "a", Some(3)), (9, "x", Some(4))], vec![7]));
        // Checkpoint 3 completed: 4 builds on it.
        touch(&mut log, 0, "a", true, Some(1));
        assert_eq!(seen(log.cut(4, Some(3))), (vec![(0, "a", Some(1))], vec![]));
        // Checkpoint 4 failed after window 0 fired (its keys marked); opened again since:
        // checkpoint 5 hands over the old keys and everything window 0 holds now.
        touch(&mut log, 0, "d", false, None);
        assert_eq!(seen(log.cut(5, Some(3))), (vec![(0, "a", Some(1))], vec![0]));
        // Checkpoint 5 failed too, and window 0 fired again: the key it got after the base
        // had nothing at the base, whatever it had at the failed barriers.
        touch(&mut log, 0, "d", true, Some(9));
        assert_eq!(seen(log.cut(6, Some(3))), (vec![(0, "a", Some(1)), (0, "d", None)], vec![0]));
        // A base the log does not reach: full, and counting again from 7.
        touch(&mut log, 1, "a", true, None);
        assert!(log.cut(7, Some(2)).is_none());
        assert_eq!(seen(log.cut(8, Some(7))), (vec![], vec![]));
    }
}
