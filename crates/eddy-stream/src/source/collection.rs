//! Sources over in-memory data: one iterator (not parallel) or a shared collection (parallel).

use std::sync::{Arc, Mutex};

use eddy_core::{BoxError, Source, SourcePoll};

use crate::source::stride::StrideSplits;

/// Emits the items of an iterator; runs as a single subtask.
pub struct IterSource<I> {
    items: I,
}

impl<I> IterSource<I> {
    /// Takes the iterator out of its slot; a second subtask would find it gone.
    pub(crate) fn take(slot: &Mutex<Option<I>>) -> Result<Self, BoxError> {
        let items = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        items.map(|items| IterSource { items }).ok_or_else(|| "an iterator source can be run only once".into())
    }
}

impl<T, I: Iterator<Item = T> + Send> Source<T> for IterSource<I> {
    fn poll_next(&mut self, out: &mut Vec<T>, max: usize) -> Result<SourcePoll, BoxError> {
        out.extend(self.items.by_ref().take(max));
        Ok(if out.len() < max { SourcePoll::Done } else { SourcePoll::Ready })
    }
}

/// Emits the elements of a shared collection at the indices of its splits (on a fresh start,
/// subtask `s` of `p` owns `s, s + p, …`), in increasing order.
pub struct CollectionSource<T> {
    items: Arc<Vec<T>>,
    splits: StrideSplits,
}

impl<T> CollectionSource<T> {
    /// Subtask `subtask` of `parallelism` over `items`.
    pub fn new(items: Arc<Vec<T>>, subtask: usize, parallelism: usize) -> Self {
        CollectionSource { items, splits: StrideSplits::fresh(subtask, parallelism) }
    }

    /// A collection source resuming at the positions a checkpoint recorded.
    pub fn restore(items: Arc<Vec<T>>, splits: Vec<Vec<u8>>) -> Result<Self, BoxError> {
        Ok(CollectionSource { items, splits: StrideSplits::restore(splits)? })
    }
}

impl<T: Clone + Send + Sync> Source<T> for CollectionSource<T> {
    fn poll_next(&mut self, out: &mut Vec<T>, max: usize) -> Result<SourcePoll, BoxError> {
        let end = self.items.len() as u64;
        while out.len() < max {
            match self.splits.next_below(end) {
                Some(index) => out.push(self.items[index as usize].clone()),
                None => return Ok(SourcePoll::Done),
            }
        }
        Ok(SourcePoll::Ready)
    }

    fn snapshot(&mut self) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        self.splits.snapshot().map(Some)
    }
}
