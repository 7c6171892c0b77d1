//! Resharding, parent first: a shard that was split or merged from others is read only after
//! those parents are read to their end, so the records of one partition key come out in the
//! order they were written (Flink's Kinesis source and the KCL do the same).
//!
//! A parent and its child are often owned by different subtasks (see [`crate::owner`]), so
//! the readers of one run of a job share a [`FinishedShards`]: a reader that reads a closed
//! shard to its end marks it there, and the owner of a child waits until all the child's
//! parents are marked (or no longer listed: past the stream's retention).
//!
//! **Checkpoints.** A mark carries the newest checkpoint whose barrier the finishing reader
//! had passed, `k`. A child's reader starts only once it has itself passed barrier `k`. So in
//! every checkpoint in which the child has started, the parent's reader had already finished
//! the parent before its barrier: no checkpoint holds a started child next to an unfinished
//! parent, and a restore never reads a parent's tail after its child's head.
//!
//! Marks live as long as the run: a restarted job starts with a fresh set, filled from its
//! checkpoint's finished shards, never with the marks of the failed run.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Shards read to their end in this run, with the checkpoint their reader had passed then.
#[derive(Debug, Default)]
pub(crate) struct FinishedShards {
    marks: Mutex<HashMap<String, u64>>,
    /// Shards a bounded run stopped reading before their end: their children do not start.
    stopped: Mutex<HashSet<String>>,
}

impl FinishedShards {
    /// `shard` was read to its end by a reader that had passed checkpoint `passed` (0: none
    /// in this run, or a shard a checkpoint restored as finished).
    pub fn mark(&self, shard: &str, passed: u64) {
        let mut marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        marks.entry(shard.to_string()).or_insert(passed);
    }

    /// The checkpoint its reader had passed when `shard` was finished; `None` while it is not.
    pub fn finished_after(&self, shard: &str) -> Option<u64> {
        self.marks.lock().unwrap_or_else(PoisonError::into_inner).get(shard).copied()
    }

    /// A bounded run stopped reading `shard` before its end.
    pub fn stop(&self, shard: &str) {
        self.stopped.lock().unwrap_or_else(PoisonError::into_inner).insert(shard.to_string());
    }

    /// Whether a bounded run stopped reading `shard` before its end.
    pub fn is_stopped(&self, shard: &str) -> bool {
        self.stopped.lock().unwrap_or_else(PoisonError::into_inner).contains(shard)
    }

    /// Whether a reader that has passed checkpoint `passed` may start a shard with these
    /// `parents`; `listed` says whether a shard is still in the stream.
    pub fn may_start(&self, parents: &[String], listed: impl Fn(&str) -> bool, passed: u64) -> bool {
        may_start(parents, listed, |p| self.finished_after(p), passed)
    }
}

/// The rule itself: every parent is gone from the stream, or finished by a reader whose
/// checkpoint this reader has passed too.
pub(crate) fn may_start(
    parents: &[String],
    listed: impl Fn(&str) -> bool,
    finished_after: impl Fn(&str) -> Option<u64>,
    passed: u64,
) -> bool {
    parents.iter().all(|parent| !listed(parent) || finished_after(parent).is_some_and(|k| k <= passed))
}

/// Where a source keeps the [`FinishedShards`] of its current run. The readers of a run hold
/// it; when the run ends they are dropped, and the next run's readers get a fresh one.
#[derive(Debug, Default)]
pub(crate) struct RunSlot(Mutex<Weak<FinishedShards>>);

impl RunSlot {
    /// The current run's set, or a new one if no reader holds one.
    pub fn join(&self) -> Arc<FinishedShards> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(current) = slot.upgrade() {
            return current;
        }
        let fresh = Arc::new(FinishedShards::default());
        *slot = Arc::downgrade(&fresh);
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assignment::owner;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_new_run_does_not_see_the_marks_of_the_last() {
        let slot = RunSlot::default();
        let (a, b) = (slot.join(), slot.join());
        a.mark("shardId-000000000000", 3);
        assert_eq!(b.finished_after("shardId-000000000000"), Some(3), "readers of one run share marks");
        drop((a, b));
        assert_eq!(slot.join().finished_after("shardId-000000000000"), None);
    }

    #[test]
    fn a_child_waits_for_every_listed_parent_and_for_the_barrier() {
        let finished = FinishedShards::default();
        let parents = vec!["p0".to_string(), "p1".to_string()];
        let all_listed = |_: &str| true;
        assert!(!finished.may_start(&parents, all_listed, 10));
        finished.mark("p0", 2);
        assert!(!finished.may_start(&parents, all_listed, 10), "p1 is not finished");
        assert!(finished.may_start(&parents, |s| s != "p1", 10), "an expired parent does not hold it back");
        finished.mark("p1", 5);
        assert!(!finished.may_start(&parents, all_listed, 4), "p1's reader passed checkpoint 5, this one only 4");
        assert!(finished.may_start(&parents, all_listed, 5));
        assert!(finished.may_start(&[], all_listed, 0), "a shard without parents starts at once");
    }

    /// A resharding history: shard i > roots has parents among the shards before it.
    fn history() -> impl Strategy<Value = (usize, Vec<Vec<usize>>)> {
        (
            1usize..4,
            proptest::collection::vec(
                (any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<bool>()),
                0..6,
            ),
        )
            .prop_map(|(roots, steps)| {
                let mut parents: Vec<Vec<usize>> = vec![Vec::new(); roots];
                for (a, b, merge) in steps {
                    let n = parents.len();
                    let (a, b) = (a.index(n), b.index(n));
                    parents.push(if merge && a != b { vec![a.min(b), a.max(b)] } else { vec![a] });
                }
                (roots, parents)
            })
    }

    proptest! {
        /// Readers at random speeds, barriers injected at random moments and taken by each
        /// reader between its polls: no child record is read
        /// before its parents' last, and no checkpoint shows a started child next to an
        /// unfinished parent.
        #[test]
        fn children_follow_parents_in_reads_and_in_checkpoints(
            (_, parents) in history(),
            parallelism in 1usize..4,
            records in 1usize..4,
            schedule in proptest::collection::vec((0usize..4, 0u8..10), 1..300),
        ) {
            let name = |i: usize| format!("shardId-{i:012}");
            let shards = parents.len();
            let finished = FinishedShards::default();
            // Per shard: records read so far.
            let mut read = vec![0usize; shards];
            let mut passed = vec![0u64; parallelism];
            let mut first_read = vec![None; shards];
            let mut last_read = vec![None; shards];
            // Checkpoint n → each reader's snapshot of its shards (read count).
            let mut snapshots: BTreeMap<u64, Vec<(usize, usize)>> = BTreeMap::new();
            let mut next_checkpoint = 1u64;
            let mut pending_barrier: Vec<bool> = vec![false; parallelism];
            for (step, (reader, action)) in schedule.into_iter().enumerate() {
                let reader = reader % parallelism;
                if action == 0 {
                    // The master injects a new barrier into every reader.
                    pending_barrier.iter_mut().for_each(|b| *b = true);
                    next_checkpoint += 1;
                    continue;
                }
                // A reader takes a waiting barrier only between polls (action 1); a poll
                // that began before the barrier came reads on without it.
                if action == 1 {
                    if !std::mem::replace(&mut pending_barrier[reader], false) {
                        continue;
                    }
                    let checkpoint = next_checkpoint - 1;
                    passed[reader] = checkpoint;
                    let owned = (0..shards).filter(|&s| owner(&name(s), parallelism) == reader).map(|s| (s, read[s]));
                    snapshots.entry(checkpoint).or_default().extend(owned);
                    continue;
                }
                // Read one record of the first owned shard that may be read.
                let readable = (0..shards).find(|&s| {
                    owner(&name(s), parallelism) == reader
                        && read[s] < records
                        && finished.may_start(&parents[s].iter().map(|&p| name(p)).collect::<Vec<_>>(), |_| true, passed[reader])
                });
                if let Some(s) = readable {
                    read[s] += 1;
                    first_read[s].get_or_insert(step);
                    last_read[s] = Some(step);
                    if read[s] == records {
                        finished.mark(&name(s), passed[reader]);
                    }
                }
            }
            for child in 0..shards {
                for &parent in &parents[child] {
                    if let Some(first) = first_read[child] {
                        prop_assert!(read[parent] == records && last_read[parent].unwrap() < first,
                            "shard {} read before its parent {} was finished", child, parent);
                    }
                }
            }
            for (checkpoint, snapshot) in &snapshots {
                if snapshot.len() < shards {
                    continue; // not every reader took part: the checkpoint never completed
                }
                let at: BTreeMap<usize, usize> = snapshot.iter().copied().collect();
                for child in 0..shards {
                    for &parent in &parents[child] {
                        prop_assert!(at[&child] == 0 || at[&parent] == records,
                            "checkpoint {} has child {} started and parent {} at {}", checkpoint, child, parent, at[&parent]);
                    }
                }
            }
        }
    }
}
