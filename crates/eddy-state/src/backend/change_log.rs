//! Change tracking for the heap backend: the keys written or removed since a checkpoint,
//! so that the next incremental checkpoint copies only those (a changelog, as Flink's
//! changelog state backend keeps).
//!
//! Each key group keeps the keys changed since the last barrier (`current`) with the length
//! its value had before the first change (`None`: it had none), which is what the writer
//! needs to keep a part's counts without reading it. A checkpoint may fail after its
//! barrier; its changes are then still needed by the next one. So the keys of the last
//! barrier's checkpoint are kept (`pending`) until the next barrier says which checkpoint
//! the next delta builds on: the last one (it completed: the pending keys are dropped) or
//! the one before (it failed: the current keys are added to the pending ones).

use std::collections::HashMap;

/// Changed keys (without their key-group bytes) and the length each one's value had before.
pub(crate) type Changed = HashMap<Box<[u8]>, Option<u32>>;

/// The keys changed since a checkpoint, per key group.
#[derive(Debug, Clone)]
pub(crate) struct ChangeLog {
    /// Changed since the barrier of the last checkpoint.
    current: Vec<Changed>,
    /// Changed between the checkpoint a delta builds on and the last checkpoint.
    pending: Vec<Changed>,
    barriers: Barriers,
}

impl ChangeLog {
    /// An empty log over `key_groups` key groups; until a barrier cuts it, it can build no delta.
    pub(crate) fn new(key_groups: usize) -> Self {
        ChangeLog {
            current: vec![Changed::new(); key_groups],
            pending: vec![Changed::new(); key_groups],
            barriers: Barriers::default(),
        }
    }

    /// Notes that `key` of `group` changes, its value being `before` bytes long (`None`: absent).
    #[inline]
    pub(crate) fn touch(&mut self, group: usize, key: &[u8], before: Option<usize>) {
        let changed = &mut self.current[group];
        if !changed.contains_key(key) {
            changed.insert(key.into(), before.map(|len| len as u32));
        }
    }

    /// Cuts the log at the barrier of `checkpoint`: the keys changed since checkpoint `base`
    /// (the one the next incremental checkpoint builds on), per key group, or `None` when
    /// the log does not reach back to `base` (no base: the checkpoint is full). Either way
    /// the log starts counting again from `checkpoint`.
    pub(crate) fn cut(&mut self, checkpoint: u64, base: Option<u64>) -> Option<&[Changed]> {
        match self.barriers.cut(checkpoint, base) {
            Cut::Completed => {
                std::mem::swap(&mut self.pending, &mut self.current);
                self.current.iter_mut().for_each(Changed::clear);
            }
            Cut::Failed => {
                for (pending, current) in self.pending.iter_mut().zip(&mut self.current) {
                    for (key, before) in current.drain() {
                        // The older length is the one the base holds.
                        pending.entry(key).or_insert(before);
                    }
                }
            }
            Cut::Unreachable => {
                self.current.iter_mut().chain(&mut self.pending).for_each(Changed::clear);
                return None;
            }
        }
        Some(&self.pending[..])
    }
}

/// What a barrier does to a log of changes ([`Barriers::cut`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// The last checkpoint completed and is the base: the changes since its barrier are
    /// the delta (`pending` becomes `current`, and `current` starts empty).
    Completed,
    /// The last checkpoint failed, the one before is the base: the delta is `pending` and
    /// `current` together (`current` goes into `pending`, older lengths winning).
    Failed,
    /// The log does not reach back to the base (or there is none): forget everything, the
    /// checkpoint is full.
    Unreachable,
}

/// The checkpoints a log of changes counts from: every log (the heap backend's, each
/// namespaced state's) cuts at the same barriers, so they share this bookkeeping.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Barriers {
    /// The last checkpoint whose barrier cut the log.
    last: Option<u64>,
    /// The checkpoint `pending` counts from.
    since: Option<u64>,
}

impl Barriers {
    /// The barrier of `checkpoint`, whose delta builds on `base`: what the log must do.
    /// From now on the log counts from `checkpoint`.
    pub(crate) fn cut(&mut self, checkpoint: u64, base: Option<u64>) -> Cut {
        let cut = match base {
            Some(base) if Some(base) == self.last => {
                self.since = self.last;
                Cut::Completed
            }
            Some(base) if Some(base) == self.since && self.last.is_some() => Cut::Failed,
            _ => {
                self.since = None;
                Cut::Unreachable
            }
        };
        self.last = Some(checkpoint);
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(changed: &[Changed]) -> Vec<(usize, Vec<u8>, Option<u32>)> {
        let mut out: Vec<_> = changed
            .iter()
            .enumerate()
            .flat_map(|(group, keys)| keys.iter().map(move |(key, before)| (group, key.to_vec(), *before)))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_delta_counts_from_the_base_even_after_a_failed_checkpoint() {
        let mut log = ChangeLog::new(2);
        log.touch(0, b"a", None);
        assert!(log.cut(1, None).is_none(), "no base: full");
        log.touch(0, b"a", Some(3));
        log.touch(1, b"b", None);
        log.touch(0, b"a", Some(5));
        assert_eq!(keys(log.cut(2, Some(1)).unwrap()), vec![(0, b"a".to_vec(), Some(3)), (1, b"b".to_vec(), None)]);
        // Checkpoint 2 failed: checkpoint 3 builds on 1 and needs 2's changes too.
        log.touch(1, b"b", Some(1));
        log.touch(1, b"c", Some(2));
        let since_1 = keys(log.cut(3, Some(1)).unwrap());
        assert_eq!(since_1, vec![(0, b"a".to_vec(), Some(3)), (1, b"b".to_vec(), None), (1, b"c".to_vec(), Some(2))]);
        // Checkpoint 3 completed: 4 builds on it.
        log.touch(0, b"d", None);
        assert_eq!(keys(log.cut(4, Some(3)).unwrap()), vec![(0, b"d".to_vec(), None)]);
        // A base the log does not reach: full, and counting again from 5.
        assert!(log.cut(5, Some(2)).is_none());
        assert_eq!(keys(log.cut(6, Some(5)).unwrap()), vec![]);
    }
}
