//! A window task's incremental checkpoints: at each commit, an object per key group that
//! changed since the last one, and a manifest naming every key group's newest object.
//!
//! ```text
//! state/<branch>/<p>/<offset>.bin                   the manifest of the checkpoint at <offset>
//! state/<branch>/<p>/groups/<group>/<offset>.bin    a key group's open windows, as of <offset>
//! ```
//!
//! The manifest is named by the repartition offset the task's transaction commits, and
//! written before it, so the committed offset always names a complete checkpoint. A key
//! group whose windows did not change is not written again: the new manifest points at its
//! object from an earlier checkpoint. Objects superseded by a checkpoint, and the previous
//! manifest, are deleted only once its transaction has committed (never by a task that was
//! fenced), so whatever the committed manifest names is there. A restore reads the manifest,
//! then one object per key group with open windows.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ClusterError, Result};
use crate::group_snapshot::GroupFormat;
use crate::store::CheckpointStore;
use crate::window_state::WindowState;

/// Where a window task's checkpoint objects are, and which to delete after the next commit.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    branch: String,
    partition: i32,
    /// Key group → the offset of its newest object.
    groups: BTreeMap<u32, i64>,
    /// The offset of the newest committed manifest.
    manifest: Option<i64>,
    /// Key group objects the checkpoint being committed supersedes.
    superseded: Vec<(u32, i64)>,
}

impl Checkpoints {
    /// The state of branch `branch`'s window task `partition` as of the checkpoint at
    /// `committed` (empty without one), and its checkpoints' bookkeeping.
    pub(crate) fn restore<K, A>(
        store: &CheckpointStore,
        branch: &str,
        partition: i32,
        committed: Option<i64>,
        producers: usize,
        format: &GroupFormat,
    ) -> Result<(WindowState<K, A>, Self)>
    where
        K: Ord + Clone + Serialize + DeserializeOwned + Send + 'static,
        A: Clone + Default + Serialize + DeserializeOwned + Send + 'static,
    {
        let mut checkpoints = Checkpoints {
            branch: branch.to_string(),
            partition,
            groups: BTreeMap::new(),
            manifest: committed,
            superseded: Vec::new(),
        };
        let Some(offset) = committed else { return Ok((WindowState::new(producers), checkpoints)) };
        let missing = |path: object_store::path::Path| {
            ClusterError::Checkpoint(format!(
                "{path}, which the committed offset {offset} of window task {branch}/{partition} needs, is missing from the checkpoint store: was it emptied? Start over with a new --application-id"
            ))
        };
        let manifest = store
            .get_state(branch, partition, offset)?
            .ok_or_else(|| missing(CheckpointStore::state_path(branch, partition, offset)))?;
        let read = |group, at| {
            store
                .get_group(branch, partition, group, at)?
                .ok_or_else(|| missing(CheckpointStore::group_path(branch, partition, group, at)))
        };
        let (state, groups) = WindowState::restore(&manifest, producers, format, read).map_err(|e| match e {
            ClusterError::Checkpoint(why) => {
                ClusterError::Checkpoint(format!("{} {why}", CheckpointStore::state_path(branch, partition, offset)))
            }
            other => other,
        })?;
        checkpoints.groups = groups;
        Ok((state, checkpoints))
    }

    /// Writes the checkpoint at `offset`: the key groups changed since the last one, then the
    /// manifest.
    pub(crate) fn write<K, A>(
        &mut self,
        store: &CheckpointStore,
        state: &mut WindowState<K, A>,
        format: &GroupFormat,
        offset: i64,
    ) -> Result<()>
    where
        K: Ord + Clone + Serialize + DeserializeOwned + Send + 'static,
        A: Clone + Default + Serialize + DeserializeOwned + Send + 'static,
    {
        for (group, entries) in state.take_changes(format)? {
            let previous = match entries {
                Some(bytes) => {
                    store.put_group(&self.branch, self.partition, group, offset, bytes)?;
                    self.groups.insert(group, offset)
                }
                None => self.groups.remove(&group),
            };
            self.superseded.extend(previous.filter(|&at| at != offset).map(|at| (group, at)));
        }
        store.put_state(&self.branch, self.partition, offset, state.manifest(&self.groups))
    }

    /// The checkpoint at `offset` is committed: deletes what it superseded.
    pub(crate) fn committed(&mut self, store: &CheckpointStore, offset: i64) -> Result<()> {
        for (group, at) in self.superseded.drain(..) {
            store.delete_group(&self.branch, self.partition, group, at)?;
        }
        if let Some(previous) = self.manifest.filter(|&previous| previous != offset) {
            store.delete_state(&self.branch, self.partition, previous)?;
        }
        self.manifest = Some(offset);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::repartition::Partitioner;
    use crate::test_job::{Counting, FORMAT};

    const PRODUCERS: usize = 2;

    /// A record `(key, time)` or a producer's watermark.
    #[derive(Debug, Clone)]
    enum Input {
        Record(u8, i64),
        Watermark(u32, i64),
    }

    fn inputs() -> impl Strategy<Value = Vec<Input>> {
        let input = prop_oneof![
            4 => (0u8..30, 0i64..100).prop_map(|(k, t)| Input::Record(k, t)),
            1 => (0u32..PRODUCERS as u32, 0i64..110).prop_map(|(p, w)| Input::Watermark(p, w)),
        ];
        proptest::collection::vec(input, 0..80)
    }

    /// The key group objects in the store.
    fn group_objects(dir: &std::path::Path) -> usize {
        let groups = dir.join("state/window/0/groups");
        let Ok(groups) = std::fs::read_dir(groups) else { return 0 };
        groups.map(|group| std::fs::read_dir(group.unwrap().path()).unwrap().count()).sum()
    }

    proptest! {
        /// A window task's state goes through a real checkpoint store (a directory),
        /// incrementally, committed every `every` inputs, and is restored from it at `cut`:
        /// against a sequential model of the open windows (a record counts unless its window
        /// had fired; a window fires when both producers' watermarks pass it), the rows fired,
        /// along the way and after the final watermarks, are the model's; the restored state
        /// is the one that was checkpointed; and the store keeps one object per key group with
        /// open windows.
        #[test]
        fn a_window_task_state_round_trips_through_the_store(inputs in inputs(), every in 1usize..6, cut in 0usize..80) {
            let dir = tempfile::tempdir().unwrap();
            let store = CheckpointStore::open(&format!("file://{}", dir.path().display()), None).unwrap();
            let (mut state, mut checkpoints) =
                Checkpoints::restore::<String, u64>(&store, "window", 0, None, PRODUCERS, &FORMAT).unwrap();
            let mut partitioner = Partitioner::new(FORMAT.max_parallelism, 1);
            let (mut newest, mut open) = ([i64::MIN; PRODUCERS], BTreeMap::<(i64, String), u64>::new());
            let (mut fired, mut rows) = (Vec::new(), Vec::new());
            let mut committed = None;
            for (i, input) in inputs.iter().enumerate() {
                let offset = i as i64;
                if i % every == 0 || i == cut {
                    checkpoints.write(&store, &mut state, &FORMAT, offset).unwrap();
                    checkpoints.committed(&store, offset).unwrap();
                    committed = Some(offset);
                    let groups: std::collections::BTreeSet<u32> =
                        open.keys().map(|(_, key)| partitioner.key_group(key) as u32).collect();
                    prop_assert_eq!(group_objects(dir.path()), groups.len());
                }
                if i == cut {
                    let (restored, again) =
                        Checkpoints::restore(&store, "window", 0, committed, PRODUCERS, &FORMAT).unwrap();
                    prop_assert_eq!(&restored, &state, "restored from the checkpoint just committed");
                    (state, checkpoints) = (restored, again);
                }
                match input {
                    Input::Record(key, t) => {
                        let (key, start) = (format!("k{key}"), t - t % 10);
                        if start + 9 > *newest.iter().min().unwrap() {
                            *open.entry((start, key.clone())).or_default() += 1;
                        }
                        let group = partitioner.key_group(&key) as u32;
                        state.add(&Counting, 0, group, key, 1, *t);
                    }
                    Input::Watermark(p, w) => {
                        newest[*p as usize] = newest[*p as usize].max(*w);
                        let watermark = *newest.iter().min().unwrap();
                        open.retain(|(start, key), count| {
                            let keep = start + 9 > watermark;
                            if !keep {
                                fired.push(format!("{start},{},{key},{count}", start + 10));
                            }
                            keep
                        });
                        state.advance(&Counting, 0, *p, *w, &mut rows).unwrap();
                    }
                }
            }
            for p in 0..PRODUCERS as u32 {
                state.advance(&Counting, 0, p, i64::MAX, &mut rows).unwrap();
            }
            fired.extend(open.iter().map(|((start, key), n)| format!("{start},{},{key},{n}", start + 10)));
            let mut rows: Vec<String> = rows.into_iter().map(|row| String::from_utf8(row).unwrap()).collect();
            rows.sort();
            fired.sort();
            prop_assert_eq!(rows, fired);
        }
    }
}
