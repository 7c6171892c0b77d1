//! Positions of index-based sources (a generator, a collection): subtask `s` of `p` owns the
//! indices `s, s + p, …`, one *split*. After a restore at another parallelism a subtask may own
//! several splits; it emits their indices in increasing order, so event time derived from the
//! index stays in order within the subtask.

use eddy_core::BoxError;
use serde::{Deserialize, Serialize};

/// One stride of indices: the next to emit and the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrideSplit {
    /// The next index this split emits.
    pub next: u64,
    /// The distance between its indices.
    pub step: u64,
}

/// The splits one subtask owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StrideSplits {
    splits: Vec<StrideSplit>,
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

impl StrideSplits {
    /// The split of subtask `subtask` of `parallelism` on a fresh start.
    pub fn fresh(subtask: usize, parallelism: usize) -> Self {
        StrideSplits { splits: vec![StrideSplit { next: subtask as u64, step: parallelism.max(1) as u64 }] }
    }

    /// Splits as a checkpoint recorded them.
    pub fn restore(items: Vec<Vec<u8>>) -> Result<Self, BoxError> {
        let splits = items
            .iter()
            .map(|item| bincode::serde::decode_from_slice(item, config()).map(|(split, _)| split))
            .collect::<Result<Vec<StrideSplit>, _>>()
            .map_err(|e| format!("a recorded split does not decode: {e}"))?;
        Ok(StrideSplits { splits })
    }

    /// The splits, for a checkpoint.
    pub fn snapshot(&self) -> Result<Vec<Vec<u8>>, BoxError> {
        let encoded = self.splits.iter().map(|split| bincode::serde::encode_to_vec(split, config()));
        Ok(encoded.collect::<Result<_, _>>()?)
    }

    /// The smallest next index below `end`, advancing its split; `None` when all are past it.
    #[inline]
    pub fn next_below(&mut self, end: u64) -> Option<u64> {
        let split = match self.splits.as_mut_slice() {
            [only] => only,
            many => many.iter_mut().min_by_key(|s| s.next)?,
        };
        if split.next >= end {
            return None;
        }
        let index = split.next;
        split.next = split.next.saturating_add(split.step);
        Some(index)
    }
}
