//! Commit markers: how the exactly-once sink learns from Kafka alone which of its
//! transactions committed.
//!
//! Every transaction a sink subtask writes for a checkpoint also commits an offset of the
//! consumer group `<prefix>-<subtask>.commits` (with `send_offsets_to_transaction`): partition
//! 0 of a topic the transaction wrote to, with the metadata `<lineage>:<token>:<checkpoint>`.
//! That offset commit is part of the transaction, so the group shows it exactly when the
//! transaction committed, and from then on until the subtask's next transaction commits:
//!
//! - `checkpoint`: the checkpoint whose barrier closed the transaction (`u64::MAX` for the
//!   final one, at the end of a bounded input);
//! - `token`: the writer (one per subtask, attempt and process), which tells this
//!   transaction from another writer's that closed a checkpoint with the same id;
//! - `lineage`: the job's history. It is made at a fresh start and carried on through
//!   checkpoints, restarts and restores, so that a restore is not misled by what an unrelated
//!   run with the same prefix committed.
//!
//! Two questions are answered from markers. Did a transaction of a completed checkpoint
//! commit (`Marker::committed`)? A recovery writes its records again if not. Which
//! checkpoint did each subtask of a history commit last (`last_commits`)? A restore from an
//! older snapshot would produce that output again.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use eddy_core::BoxError;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::client::Context;
use crate::sink_spec::SinkSpec;

/// Where a transaction's commit marker goes, and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The consumer group, `<prefix>-<subtask>.commits`.
    pub group: String,
    /// A topic the transaction wrote to (offsets can only be committed for partitions that
    /// exist).
    pub topic: String,
    /// The group's metadata once the transaction committed.
    pub commit: Commit,
}

/// A committed transaction, as its marker names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The job history the transaction belongs to.
    pub lineage: String,
    /// The writer that wrote it.
    pub token: String,
    /// The checkpoint whose barrier closed it (`u64::MAX`: the final checkpoint).
    pub checkpoint: u64,
}

impl fmt::Display for Commit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.lineage, self.token, self.checkpoint)
    }
}

impl Commit {
    /// Whether `later` is a later transaction of the same writer.
    fn followed_by(&self, later: &Commit) -> bool {
        later.lineage == self.lineage && later.token == self.token && later.checkpoint > self.checkpoint
    }

    /// Reads a marker's metadata; `None` for anything else (an empty group, another format).
    fn parse(metadata: &str) -> Option<Commit> {
        let (rest, checkpoint) = metadata.rsplit_once(':')?;
        let (lineage, token) = rest.split_once(':')?;
        Some(Commit { lineage: lineage.into(), token: token.into(), checkpoint: checkpoint.parse().ok()? })
    }
}

/// The marker group of subtask `subtask` of the sink with transactional id prefix `prefix`.
pub(crate) fn group(prefix: &str, subtask: usize) -> String {
    format!("{prefix}-{subtask}.commits")
}

/// The subtask whose marker group `group` is, for prefix `prefix`.
fn subtask_of(prefix: &str, group: &str) -> Option<usize> {
    group.strip_prefix(prefix)?.strip_prefix('-')?.strip_suffix(".commits")?.parse().ok()
}

/// A consumer of `group` that never subscribes: it reads the group's offsets, or lends its
/// group metadata to a transaction.
pub(crate) fn client<T: 'static>(spec: &SinkSpec<T>, group: &str) -> Result<BaseConsumer<Context>, BoxError> {
    let config = spec.settings.config(&[("group.id", group), ("enable.auto.commit", "false")]);
    Ok(config.create_with_context(Context::default())?)
}

impl Marker {
    /// The offset commit to add to the transaction.
    pub(crate) fn offsets(&self) -> Result<TopicPartitionList, BoxError> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.topic, 0, Offset::Offset(0))?;
        if let Some(mut element) = list.find_partition(&self.topic, 0) {
            element.set_metadata(self.commit.to_string());
        }
        Ok(list)
    }

    /// Whether the transaction committed: its group shows this marker, or a later one of the
    /// same writer (a writer's transactions commit in checkpoint order). A later marker of
    /// another writer proves nothing: it may belong to a run restored from an older snapshot,
    /// which never committed this transaction. Then the transaction counts as not committed
    /// and its records are written again: a duplicate at worst, never a loss (and only after a
    /// restore that `allow_duplicate_output` let through).
    pub(crate) fn committed<T: 'static>(&self, spec: &SinkSpec<T>) -> Result<bool, BoxError> {
        let shown = read(spec, &self.group, std::slice::from_ref(&self.topic))?;
        Ok(shown.iter().any(|c| c == &self.commit || self.commit.followed_by(c)))
    }
}

/// What the markers of `group` on partition 0 of `topics` say.
fn read<T: 'static>(spec: &SinkSpec<T>, group: &str, topics: &[String]) -> Result<Vec<Commit>, BoxError> {
    let mut list = TopicPartitionList::new();
    for topic in topics {
        list.add_partition_offset(topic, 0, Offset::Invalid)?;
    }
    let committed = client(spec, group)?
        .committed_offsets(list, spec.timeout)
        .map_err(|e| format!("Kafka sink: cannot read commit marker group {group}: {e}"))?;
    Ok(committed.elements().iter().filter_map(|e| Commit::parse(e.metadata())).collect())
}

/// The last transaction each subtask of history `lineage` committed, by subtask: the
/// subtasks `known`, and every other one whose marker group the brokers list (a run after a
/// rescale may have had more). Markers are looked for on partition 0 of `topics`.
pub(crate) fn last_commits<T: 'static>(
    spec: &SinkSpec<T>,
    lineage: &str,
    known: impl IntoIterator<Item = usize>,
    topics: &[String],
) -> Result<BTreeMap<usize, Commit>, BoxError> {
    let prefix = &spec.transactional_id_prefix;
    let lister = client(spec, &group(prefix, 0))?;
    let groups = lister
        .fetch_group_list(None, spec.timeout)
        .map_err(|e| format!("Kafka sink at {}: cannot list consumer groups: {e}", spec.settings.brokers))?;
    let listed = groups.groups().iter().filter_map(|g| subtask_of(prefix, g.name()));
    let subtasks: BTreeSet<usize> = known.into_iter().chain(listed).collect();
    let mut last = BTreeMap::new();
    for subtask in subtasks {
        let commits = read(spec, &group(prefix, subtask), topics)?;
        let newest = commits.into_iter().filter(|c| c.lineage == lineage).max_by_key(|c| c.checkpoint);
        if let Some(commit) = newest {
            last.insert(subtask, commit);
        }
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_reads_back_what_it_writes() {
        for checkpoint in [0, 7, u64::MAX] {
            let commit = Commit { lineage: "18f3a-2c".into(), token: "18f3b-2c-3".into(), checkpoint };
            assert_eq!(Commit::parse(&commit.to_string()), Some(commit));
        }
        for other in ["", "7", "a:7", "a:b:c", "a:b:-1"] {
            assert_eq!(Commit::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn only_the_prefix_s_own_groups_name_subtasks() {
        assert_eq!(subtask_of("taxi", "taxi-3.commits"), Some(3));
        assert_eq!(subtask_of("taxi", "taxi-pickups-3.commits"), None);
        assert_eq!(subtask_of("taxi-pickups", "taxi-3.commits"), None);
        assert_eq!(subtask_of("taxi", "taxi-3"), None);
        assert_eq!(subtask_of("a", "a-1-0.commits"), None, "prefix a-1's subtask 0 is not a's");
    }
}
