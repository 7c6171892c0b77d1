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
    ) -> Result<(WindowState<K, A>, Self)>
    where
        K: Ord + Clone + Serialize + DeserializeOwned,
        A: Clone + Default + Serialize + DeserializeOwned,
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
        let (state, groups) = WindowState::restore(&manifest, producers, read).map_err(|e| match e {
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
        offset: i64,
    ) -> Result<()>
    where
        K: Ord + Clone + Serialize + DeserializeOwned,
        A: Clone + Default + Serialize + DeserializeOwned,
    {
        for (group, entries) in state.take_changes() {
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
