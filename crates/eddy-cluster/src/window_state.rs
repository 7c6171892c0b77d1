//! A window task's state: the open tumbling windows of its key groups, and the watermark of
//! each source task that feeds it.
//!
//! Event time follows Flink: a record belongs to the window `[start, start + size)` with
//! `start = t - t mod size`; a window fires once the watermark reaches its last millisecond
//! (`end - 1`); a record whose window has already fired is late and dropped (no allowed
//! lateness). The task's watermark is the minimum over its producers' watermarks, so windows
//! fire only when every input partition has passed them.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ClusterError, Result};
use crate::job::WindowedJob;
use crate::repartition::Partitioner;

/// The open windows and producer watermarks of one window task.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowState<K, A> {
    /// Open windows by start, then key.
    windows: BTreeMap<i64, BTreeMap<K, A>>,
    /// Each producing source task's newest watermark.
    watermarks: Vec<i64>,
    /// Records dropped as late.
    late: u64,
}

/// One open window of one key: `(window start, key, aggregate)`.
type Entry<K, A> = (i64, K, A);

/// What a checkpoint holds: the windows filed per key group.
#[derive(Serialize, Deserialize)]
struct Snapshot<K, A> {
    watermarks: Vec<i64>,
    late: u64,
    /// `(key group, its open windows)`, in key group order.
    key_groups: Vec<(u32, Vec<Entry<K, A>>)>,
}

impl<K: Ord + Clone + Serialize + DeserializeOwned, A: Clone + Default + Serialize + DeserializeOwned>
    WindowState<K, A>
{
    /// Empty state fed by `producers` source tasks, none of which has a watermark yet.
    pub fn new(producers: usize) -> Self {
        WindowState { windows: BTreeMap::new(), watermarks: vec![i64::MIN; producers], late: 0 }
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

    /// Adds `value` to its key's window of branch `branch`; a late one is counted and dropped.
    pub fn add<J: WindowedJob<Key = K, Accumulator = A>>(
        &mut self,
        job: &J,
        branch: usize,
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
        job.add(branch, self.windows.entry(start).or_default().entry(key).or_default(), value);
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
        while let Some(entry) = self.windows.first_entry() {
            let start = *entry.key();
            if start.saturating_add(size - 1) > watermark {
                break;
            }
            let end = start.saturating_add(size);
            let rows = entry.remove().into_iter().filter_map(|(key, acc)| job.format(branch, &key, start, end, &acc));
            out.extend(rows);
        }
        Ok(())
    }

    /// The state's bytes, filed per key group.
    pub fn snapshot(&self, partitioner: &mut Partitioner) -> Vec<u8> {
        let mut key_groups: BTreeMap<u32, Vec<Entry<K, A>>> = BTreeMap::new();
        for (start, keys) in &self.windows {
            for (key, accumulator) in keys {
                let group = partitioner.key_group(key) as u32;
                key_groups.entry(group).or_default().push((*start, key.clone(), accumulator.clone()));
            }
        }
        let snapshot = Snapshot {
            watermarks: self.watermarks.clone(),
            late: self.late,
            key_groups: key_groups.into_iter().collect(),
        };
        bincode::serde::encode_to_vec(&snapshot, bincode::config::standard()).expect("state serializes")
    }

    /// State read back from [`WindowState::snapshot`]'s bytes.
    pub fn restore(bytes: &[u8], producers: usize) -> Result<Self> {
        let (snapshot, _): (Snapshot<K, A>, _) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .map_err(|e| ClusterError::Checkpoint(format!("does not decode ({e}): was it written by another job?")))?;
        if snapshot.watermarks.len() != producers {
            return Err(ClusterError::Checkpoint(format!(
                "was taken with {} input partitions, the input now has {producers}: use a new --application-id",
                snapshot.watermarks.len()
            )));
        }
        let mut windows: BTreeMap<i64, BTreeMap<K, A>> = BTreeMap::new();
        for (start, key, accumulator) in snapshot.key_groups.into_iter().flat_map(|(_, entries)| entries) {
            windows.entry(start).or_default().insert(key, accumulator);
        }
        Ok(WindowState { windows, watermarks: snapshot.watermarks, late: snapshot.late })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{InputRecord, Keyed};

    /// Counts per key in 10 ms windows, rows `start,end,key,count`.
    struct Counting;

    impl WindowedJob for Counting {
        type Key = String;
        type Value = u64;
        type Accumulator = u64;

        fn window_ms(&self) -> i64 {
            10
        }

        fn extract(&self, _: &InputRecord<'_>, _: &mut Vec<Keyed<String, u64>>) {}

        fn add(&self, _: usize, accumulator: &mut u64, value: u64) {
            *accumulator += value;
        }

        fn format(&self, _: usize, key: &String, start: i64, end: i64, count: &u64) -> Option<Vec<u8>> {
            Some(format!("{start},{end},{key},{count}").into_bytes())
        }
    }

    fn rows(out: &[Vec<u8>]) -> Vec<String> {
        out.iter().map(|row| String::from_utf8(row.clone()).unwrap()).collect()
    }

    #[test]
    fn windows_fire_at_the_minimum_of_the_producers_watermarks() {
        let mut state = WindowState::new(2);
        let mut out = vec![];
        state.add(&Counting, 0, "a".into(), 1, 3);
        state.add(&Counting, 0, "b".into(), 1, 9);
        state.add(&Counting, 0, "a".into(), 1, 12);
        state.add(&Counting, 0, "a".into(), 1, -1);
        state.advance(&Counting, 0, 0, 100, &mut out).unwrap();
        assert!(out.is_empty(), "producer 1 has no watermark yet");
        state.advance(&Counting, 0, 1, 9, &mut out).unwrap();
        assert_eq!(rows(&out), ["-10,0,a,1", "0,10,a,1", "0,10,b,1"]);
        state.add(&Counting, 0, "late".into(), 1, 5);
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
        for (i, key) in ["x", "y", "z", "x"].into_iter().enumerate() {
            state.add(&Counting, 0, key.to_string(), 1, i as i64 * 7);
        }
        state.advance(&Counting, 0, 0, 5, &mut vec![]).unwrap();
        let bytes = state.snapshot(&mut Partitioner::new(128, 4));
        let mut restored = WindowState::<String, u64>::restore(&bytes, 1).unwrap();
        assert_eq!(restored, state);
        assert!(WindowState::<String, u64>::restore(&bytes, 2).is_err());
        let (mut a, mut b) = (vec![], vec![]);
        state.advance(&Counting, 0, 0, i64::MAX, &mut a).unwrap();
        restored.advance(&Counting, 0, 0, i64::MAX, &mut b).unwrap();
        assert_eq!(rows(&a), rows(&b));
        assert_eq!(rows(&a), ["0,10,x,1", "0,10,y,1", "10,20,z,1", "20,30,x,1"]);
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
        /// record is in exactly one row. A snapshot taken and restored anywhere changes nothing.
        #[test]
        fn rows_match_a_brute_force_model(inputs in inputs(), cut in 0usize..60) {
            let mut newest = [i64::MIN; 3];
            let mut counts: BTreeMap<(i64, String), u64> = BTreeMap::new();
            let (mut state, mut out) = (WindowState::new(3), vec![]);
            for (i, input) in inputs.iter().enumerate() {
                if i == cut {
                    let bytes = state.snapshot(&mut Partitioner::new(128, 3));
                    state = WindowState::restore(&bytes, 3).unwrap();
                }
                match input {
                    Input::Record(key, t) => {
                        let start = t - t % 10;
                        if start + 9 > *newest.iter().min().unwrap() {
                            *counts.entry((start, key.to_string())).or_default() += 1;
                        }
                        state.add(&Counting, 0, key.to_string(), 1, *t);
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
