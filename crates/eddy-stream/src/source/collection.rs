//! Sources over in-memory data: one iterator (not parallel) or a shared collection (parallel).

use std::sync::{Arc, Mutex};

use eddy_core::{BoxError, Source, SourcePoll};

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

/// Emits the elements `subtask, subtask + parallelism, …` of a shared collection.
pub struct CollectionSource<T> {
    items: Arc<Vec<T>>,
    next: usize,
    step: usize,
}

impl<T> CollectionSource<T> {
    /// Subtask `subtask` of `parallelism` over `items`.
    pub fn new(items: Arc<Vec<T>>, subtask: usize, parallelism: usize) -> Self {
        CollectionSource { items, next: subtask, step: parallelism }
    }
}

impl<T: Clone + Send + Sync> Source<T> for CollectionSource<T> {
    fn poll_next(&mut self, out: &mut Vec<T>, max: usize) -> Result<SourcePoll, BoxError> {
        while out.len() < max && self.next < self.items.len() {
            out.push(self.items[self.next].clone());
            self.next += self.step;
        }
        Ok(if self.next >= self.items.len() { SourcePoll::Done } else { SourcePoll::Ready })
    }
}
