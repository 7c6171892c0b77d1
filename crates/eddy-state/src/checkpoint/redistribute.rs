//! Sharing an operator-state list out among the subtasks of a restored job.

use crate::operator_snapshot::Redistribution;

/// The items new subtask `subtask` (of `parallelism`) gets from a list whose items per old
/// subtask are `items` (as [`SnapshotReader::list`](super::SnapshotReader::list) returns them).
///
/// - [`Redistribution::Split`] pools the items of all old subtasks in order and gives new
///   subtask `j` the items at pooled positions `k` with `k % parallelism == j`, so every item
///   goes to exactly one new subtask, at any parallelism.
/// - [`Redistribution::Broadcast`] gives every new subtask the items of old subtask 0.
///
/// A `subtask` outside `0..parallelism` gets nothing.
pub fn redistribute(
    items: Vec<Vec<Vec<u8>>>,
    mode: Redistribution,
    subtask: usize,
    parallelism: usize,
) -> Vec<Vec<u8>> {
    if subtask >= parallelism {
        return Vec::new();
    }
    match mode {
        Redistribution::Split => items
            .into_iter()
            .flatten()
            .enumerate()
            .filter(|(position, _)| position % parallelism == subtask)
            .map(|(_, item)| item)
            .collect(),
        Redistribution::Broadcast => items.into_iter().next().unwrap_or_default(),
    }
}
