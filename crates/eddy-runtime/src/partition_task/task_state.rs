//! What a partition task's operators hold at a checkpoint, as bytes a changelog or a
//! transaction can carry.

use eddy_core::key::KeyGroupRange;
use eddy_core::{Error, Result, Timestamp};
use eddy_state::{ListEntries, OperatorSnapshot, Redistribution, SnapshotHeader, SnapshotKind};
use serde::{Deserialize, Serialize};

use crate::checkpoint::restored::RestoredState;

/// The first bytes of every encoded [`TaskState`]: a name and a format version, so foreign
/// or future bytes are refused by name rather than misread.
const MAGIC: &[u8; 8] = b"eddyts\x00\x01";

/// The most bytes a [`TaskState`] may claim to hold: a damaged length is refused before
/// anything that large is allocated.
const LIMIT: usize = 1 << 30;

/// What one partition task's operators held at a checkpoint: task `partition` of
/// `partitions` of sub-topology `sub_topology`, after every record before checkpoint
/// `checkpoint`'s barrier.
///
/// Keyed entries carry their key group (see [`KeyedEntries`](eddy_state::KeyedEntries)), all
/// inside [`key_groups`](Self::key_groups): what a task that takes over some of those key
/// groups at another partition count would pick from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskState {
    /// The checkpoint.
    pub checkpoint: u64,
    /// The sub-topology the task runs.
    pub sub_topology: usize,
    /// The task's partition.
    pub partition: usize,
    /// Of how many.
    pub partitions: usize,
    /// The job's number of key groups.
    pub max_parallelism: usize,
    /// Each stateful operator's state, by uid: keyed entries, and its lists with this task's
    /// items at index `partition`.
    pub operators: Vec<OperatorSnapshot>,
    /// The input topics whose end the task had reached (a bounded run).
    pub ended_topics: Vec<String>,
    /// What the task had heard from the producing tasks of each repartition topic it reads:
    /// their positions lie before the checkpoint's input positions, so a restored task does
    /// not hear them again.
    pub producers: Vec<ProducerProgress>,
}

/// The producing tasks' watermarks and ends on one repartition topic, as a reading task had
/// them at a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerProgress {
    /// The repartition topic.
    pub topic: String,
    /// Each producing task's newest watermark.
    pub watermarks: Vec<Timestamp>,
    /// Whether each producing task had ended.
    pub ended: Vec<bool>,
}

impl TaskState {
    /// The key groups the task's keyed state covers.
    pub fn key_groups(&self) -> KeyGroupRange {
        KeyGroupRange::of_subtask(self.partition, self.max_parallelism, self.partitions)
    }

    /// The state as bytes, for [`from_bytes`](Self::from_bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        // Strings, integers and byte vectors: bincode's serde encoder cannot refuse them.
        bincode::serde::encode_into_std_write(self, &mut bytes, bincode::config::standard())
            .expect("a task state always encodes");
        bytes
    }

    /// The state `bytes` hold; damaged, truncated or foreign bytes are an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<TaskState> {
        let damaged = |why: String| Error::Checkpoint(format!("a task state does not decode: {why}"));
        let body = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| damaged("it does not start with eddy's task-state header (foreign bytes?)".into()))?;
        let config = bincode::config::standard().with_limit::<LIMIT>();
        let (state, read): (TaskState, usize) =
            bincode::serde::decode_from_slice(body, config).map_err(|e| damaged(e.to_string()))?;
        if read != body.len() {
            return Err(damaged(format!("{} bytes left over after the state", body.len() - read)));
        }
        Ok(state)
    }

    /// The snapshot the restored task `partition` reads its state from: its own lists come
    /// back to it whole (as the only subtask's, broadcast), its keyed entries by key group.
    pub(crate) fn restored(&self, job: &str) -> RestoredState {
        let header = SnapshotHeader {
            job: job.to_string(),
            id: self.checkpoint,
            kind: SnapshotKind::Checkpoint,
            created_ms: 0,
            max_parallelism: self.max_parallelism,
            finished: false,
        };
        let own = |list: &ListEntries| ListEntries {
            name: list.name.clone(),
            redistribution: Redistribution::Broadcast,
            items: vec![list.items.get(self.partition).cloned().unwrap_or_default()],
        };
        let operators = self
            .operators
            .iter()
            .map(|o| OperatorSnapshot { lists: o.lists.iter().map(own).collect(), ..o.clone() })
            .collect();
        RestoredState::from_memory(header, operators)
    }
}
