//! A window task's state: the open tumbling windows of its key groups, and the watermark of
//! each source task that feeds it.
//!
//! Event time follows Flink: a record belongs to the window `[start, start + size)` with
//! `start = t - t mod size`; a window fires once the watermark reaches its last millisecond
//! (`end - 1`); a record whose window has already fired is late and dropped (no allowed
//! lateness). The task's watermark is the minimum over its producers' watermarks, so windows
//! fire only when every input partition has passed them.
//!
//! The windows are kept per key group, and the state knows which key groups changed since
//! it was last checkpointed ([`WindowState::take_changes`]): a checkpoint (the crate's
//! `checkpoint` module) writes those alone, each in eddy-state's per-key-group snapshot
//! format ([`group_snapshot`](crate::group_snapshot)).

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ClusterError, Result};
use crate::group_snapshot::{GroupFormat, Windows};
use crate::job::WindowedJob;

/// The open windows and producer watermarks of one window task.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowState<K, A> {
    /// Open windows per key group: `(window start, key)` → aggregate.
    groups: BTreeMap<u32, Windows<K, A>>,
    /// The key groups with an open window at each start, so windows fire in start order.
    starts: BTreeMap<i64, BTreeSet<u32>>,
    /// Each producing source task's newest watermark.
    watermarks: Vec<i64>,
    /// Records dropped as late.
    late: u64,
    /// The key groups changed since the last [`WindowState::take_changes`].
    changed: BTreeSet<u32>,
}

/// A checkpoint's manifest: what is not per key group, and where each key group's newest
/// entries are.
#[derive(Serialize, Deserialize)]
struct Manifest {
    watermarks: Vec<i64>,
    late: u64,
    /// `(key group, the offset its entries were written at)`, for the groups with open windows.
    groups: Vec<(u32, i64)>,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).expect("state serializes")
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(value, _)| value)
        .map_err(|e| ClusterError::Checkpoint(format!("does not decode ({e}): was it written by another job?")))
}

impl<K, A> WindowState<K, A>
where
    K: Ord + Clone + Serialize + DeserializeOwned + Send + 'static,
    A: Clone + Default + Serialize + DeserializeOwned + Send + 'static,
{
    /// Empty state fed by `producers` source tasks, none of which has a watermark yet.
    pub fn new(producers: usize) -> Self {
        WindowState {
            groups: BTreeMap::new(),
            starts: BTreeMap::new(),
            watermarks: vec![i64::MIN; producers],
            late: 0,
            changed: BTreeSet::new(),
        }
    }

    /// The task's watermark: the minimum over its producers.
    pub fn watermark(&self) -> i64 {
        self.watermarks.iter().copied().min().unwrap_or(i64::MIN)
    }

    /// Whether every producer sent its final watermark (every window has fired).
    pub fn finished(&self) -> bool {
        self.watermark() == i64::MAX
    }

    /// Records dropped as late so far.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Adds `value` to the window of `key` (of key group `group`) in branch `branch`; a late
    /// one is counted and dropped.
    pub fn add<J: WindowedJob<Key = K, Accumulator = A>>(
        &mut self,
        job: &J,
        branch: usize,
        group: u32,
        key: K,
        value: J::Value,
        timestamp: i64,
    ) {
        let size = job.window_ms();
        let start = timestamp - timestamp.rem_euclid(size);
        if start.saturating_add(size - 1) <= self.watermark() {
            self.late += 1;
            return;
        }
        job.add(branch, self.groups.entry(group).or_default().entry((start, key)).or_default(), value);
        self.starts.entry(start).or_default().insert(group);
        self.changed.insert(group);
    }

    /// Takes producer `producer`'s watermark and appends the rows of every window of branch
    /// `branch` it fires to `out` (in window, then key order).
    pub fn advance<J: WindowedJob<Key = K, Accumulator = A>>(
        &mut self,
        job: &J,
        branch: usize,
        producer: u32,
        watermark: i64,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<()> {
        let producers = self.watermarks.len();
        let slot = self.watermarks.get_mut(producer as usize).ok_or_else(|| {
            ClusterError::Config(format!(
                "a watermark from input partition {producer}, but the input has {producers} partitions: was the input topic recreated? Use a new --application-id"
            ))
        })?;
        // A task that moved restarts its watermark from what it reads; keep the newest.
        *slot = (*slot).max(watermark);
        let watermark = self.watermark();
        let size = job.window_ms();
        while let Some(entry) = self.starts.first_entry() {
            let start = *entry.key();
            if start.saturating_add(size - 1) > watermark {
                break;
            }
            let end = start.saturating_add(size);
            let mut fired = Vec::new();
            for group in entry.remove() {
                let Some(windows) = self.groups.get_mut(&group) else { continue };
                // Earlier windows fired already, so this one's entries come first.
                while let Some(first) = windows.first_entry().filter(|first| first.key().0 == start) {
                    let ((_, key), accumulator) = first.remove_entry();
                    fired.push((key, accumulator));
                }
                if windows.is_empty() {
                    self.groups.remove(&group);
                }
                self.changed.insert(group);
            }
            fired.sort_by(|a, b| a.0.cmp(&b.0));
            out.extend(fired.into_iter().filter_map(|(key, acc)| job.format(branch, &key, start, end, &acc)));
        }
        Ok(())
    }

    /// The key groups changed since the last call, each with its open windows' bytes in
    /// `format` (`None`: it has none left).
    pub fn take_changes(&mut self, format: &GroupFormat) -> Result<Vec<(u32, Option<Vec<u8>>)>> {
        let changed = std::mem::take(&mut self.changed);
        let open = changed.iter().filter_map(|group| self.groups.get(group).map(|windows| (*group, windows)));
        let mut encoded: BTreeMap<u32, Vec<u8>> = format.encode(open)?.into_iter().collect();
        Ok(changed.into_iter().map(|group| (group, encoded.remove(&group))).collect())
    }

    /// The manifest's bytes: the watermarks, the late count and where each key group's
    /// entries are (`groups`: key group → the offset its entries were written at).
    pub fn manifest(&self, groups: &BTreeMap<u32, i64>) -> Vec<u8> {
        let groups = groups.iter().map(|(g, o)| (*g, *o)).collect();
        encode(&Manifest { watermarks: self.watermarks.clone(), late: self.late, groups })
    }

    /// State read back from a [`manifest`](WindowState::manifest) and the key groups' entries
    /// (`read(group, offset)`); returns it with where each key group's entries are.
    pub fn restore(
        manifest: &[u8],
        producers: usize,
        format: &GroupFormat,
        mut read: impl FnMut(u32, i64) -> Result<Vec<u8>>,
    ) -> Result<(Self, BTreeMap<u32, i64>)> {
        let manifest: Manifest = decode(manifest)?;
        if manifest.watermarks.len() != producers {
            return Err(ClusterError::Checkpoint(format!(
                "was taken with {} input partitions, the input now has {producers}: use a new --application-id",
                manifest.watermarks.len()
            )));
        }
        let mut state = WindowState::new(producers);
        state.watermarks = manifest.watermarks;
        state.late = manifest.late;
        for &(group, offset) in &manifest.groups {
            let windows: Windows<K, A> = format.decode(group, &read(group, offset)?)?;
            for (start, _) in windows.keys() {
                state.starts.entry(*start).or_default().insert(group);
            }
            if !windows.is_empty() {
                state.groups.insert(group, windows);
            }
        }
        Ok((state, manifest.groups.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_job::{Counting, FORMAT};

    /// The key group of `key` (of 128).
    fn group(key: &str) -> u32 {
        crate::repartition::Partitioner::new(128, 1).key_group(&key.to_string()) as u32
    }

    /// An object store's worth of checkpoints: key group entries by (group, offset).
    #[derive(Default)]
    struct Store {
        objects: BTreeMap<(u32, i64), Vec<u8>>,
        groups: BTreeMap<u32, i64>,
    }

    impl Store {
        /// Writes the changed key groups at `offset`; returns the manifest and how many key
        /// groups were written.
        fn checkpoint(&mut self, state: &mut WindowState<String, u64>, offset: i64) -> (Vec<u8>, usize) {
            let changes = state.take_changes(&FORMAT).unwrap();
            for (g, entries) in &changes {
                match entries {
                    Some(bytes) => {
                        self.objects.insert((*g, offset), bytes.clone());
                        self.groups.insert(*g, offset);
                    }
                    None => drop(self.groups.remove(g)),
                }
            }
            (state.manifest(&self.groups), changes.iter().filter(|(_, e)| e.is_some()).count())
        }

        fn restore(&self, manifest: &[u8], producers: usize) -> Result<WindowState<String, u64>> {
            let read = |g, o| Ok(self.objects[&(g, o)].clone());
            WindowState::restore(manifest, producers, &FORMAT, read).map(|(state, _)| state)
        }
    }

    fn rows(out: &[Vec<u8>]) -> Vec<String> {
        out.iter().map(|row| String::from_utf8(row.clone()).unwrap()).collect()
    }

    #[test]
    fn windows_fire_at_the_minimum_of_the_producers_watermarks() {
        let mut state = WindowState::new(2);
        let mut out = vec![];
        state.add(&Counting, 0, group("a"), "a".into(), 1, 3);
        state.add(&Counting, 0, group("b"), "b".into(), 1, 9);
        state.add(&Counting, 0, group("a"), "a".into(), 1, 12);
        state.add(&Counting, 0, group("a"), "a".into(), 1, -1);
        state.advance(&Counting, 0, 0, 100, &mut out).unwrap();
        assert!(out.is_empty(), "producer 1 has no watermark yet");
        state.advance(&Counting, 0, 1, 9, &mut out).unwrap();
        assert_eq!(rows(&out), ["-10,0,a,1", "0,10,a,1", "0,10,b,1"]);
        state.add(&Counting, 0, group("late"), "late".into(), 1, 5);
        assert_eq!(state.late(), 1);
        out.clear();
        state.advance(&Counting, 0, 1, i64::MAX, &mut out).unwrap();
        assert_eq!(rows(&out), ["10,20,a,1"]);
        assert!(!state.finished());
        state.advance(&Counting, 0, 0, i64::MAX, &mut out).unwrap();
        assert!(state.finished());
        assert!(state.advance(&Counting, 0, 2, 0, &mut out).is_err());
    }

    #[test]
    fn a_restored_state_fires_the_same_rows() {
        let mut state = WindowState::new(1);
        let mut store = Store::default();
        for (i, key) in ["a", "b", "c", "a"].into_iter().enumerate() {
            state.add(&Counting, 0, group(key), key.to_string(), 1, i as i64 * 7);
        }
        let (_, written) = store.checkpoint(&mut state, 1);
        assert_eq!(written, 3, "a, b and c");
        let mut fired = vec![];
        state.advance(&Counting, 0, 0, 9, &mut fired).unwrap();
        assert_eq!(rows(&fired), ["0,10,a,1", "0,10,b,1"]);
        state.add(&Counting, 0, group("c"), "c".into(), 1, 14);
        let (manifest, written) = store.checkpoint(&mut state, 2);
        assert_eq!(written, 2, "a (a window fired, one open) and c (added to) changed; b has none left");
        assert!(!store.groups.contains_key(&group("b")));
        assert_eq!(store.checkpoint(&mut state, 3).1, 0, "nothing changed");
        let mut restored = store.restore(&manifest, 1).unwrap();
        assert_eq!(restored, state);
        assert!(store.restore(&manifest, 2).is_err());
        let (mut a, mut b) = (vec![], vec![]);
        state.advance(&Counting, 0, 0, i64::MAX, &mut a).unwrap();
        restored.advance(&Counting, 0, 0, i64::MAX, &mut b).unwrap();
        assert_eq!(rows(&a), rows(&b));
        assert_eq!(rows(&a), ["10,20,c,2", "20,30,a,1"]);
    }

    /// An input of a window task: a record or a producer's watermark.
    #[derive(Debug, Clone)]
    enum Input {
        Record(u8, i64),
        Watermark(u32, i64),
    }

    fn inputs() -> impl proptest::strategy::Strategy<Value = Vec<Input>> {
        use proptest::prelude::*;
        let input = prop_oneof![
            3 => (0u8..4, 0i64..120).prop_map(|(k, t)| Input::Record(k, t)),
            1 => (0u32..3, 0i64..130).prop_map(|(p, w)| Input::Watermark(p, w)),
        ];
        proptest::collection::vec(input, 0..60)
    }

    proptest::proptest! {
        /// Against the obvious model: a record counts unless, when it came, every producer's
        /// newest watermark had passed its window; after the final watermarks every counted
        /// record is in exactly one row. Incremental checkpoints every few inputs, and a
        /// restore from the newest anywhere, change nothing.
        #[test]
        fn rows_match_a_brute_force_model(inputs in inputs(), cut in 0usize..60) {
            let mut newest = [i64::MIN; 3];
            let mut counts: BTreeMap<(i64, String), u64> = BTreeMap::new();
            let (mut state, mut out) = (WindowState::new(3), vec![]);
            let (mut store, mut manifest) = (Store::default(), None);
            for (i, input) in inputs.iter().enumerate() {
                if i % 7 == 3 || i == cut {
                    manifest = Some(store.checkpoint(&mut state, i as i64).0);
                }
                if i == cut {
                    state = store.restore(manifest.as_ref().unwrap(), 3).unwrap();
                }
                match input {
                    Input::Record(key, t) => {
                        let start = t - t % 10;
                        if start + 9 > *newest.iter().min().unwrap() {
                            *counts.entry((start, key.to_string())).or_default() += 1;
                        }
                        state.add(&Counting, 0, group(&key.to_string()), key.to_string(), 1, *t);
                    }
                    Input::Watermark(p, w) => {
                        newest[*p as usize] = newest[*p as usize].max(*w);
                        state.advance(&Counting, 0, *p, *w, &mut out).unwrap();
                    }
                }
            }
            for p in 0..3 {
                state.advance(&Counting, 0, p, i64::MAX, &mut out).unwrap();
            }
            let expected: Vec<String> =
                counts.iter().map(|((start, key), n)| format!("{start},{},{key},{n}", start + 10)).collect();
            let mut rows = rows(&out);
            rows.sort();
            let mut expected = expected;
            expected.sort();
            proptest::prop_assert_eq!(rows, expected);
            proptest::prop_assert!(state.finished());
        }
    }
}
