//! A deterministic generator: record `i` is `f(i)`, so a position is just an index.

use eddy_core::{BoxError, Source, SourcePoll};

/// Emits `f(i)` for the indices of one subtask: `subtask, subtask + parallelism, …`.
pub struct GeneratorSource<F> {
    f: F,
    next: u64,
    step: u64,
    count: Option<u64>,
}

impl<F> GeneratorSource<F> {
    /// Subtask `subtask` of `parallelism` over indices `0..count` (`None`: unbounded).
    pub fn new(f: F, count: Option<u64>, subtask: usize, parallelism: usize) -> Self {
        GeneratorSource { f, next: subtask as u64, step: parallelism as u64, count }
    }
}

impl<T, F: Fn(u64) -> T + Send> Source<T> for GeneratorSource<F> {
    fn poll_next(&mut self, out: &mut Vec<T>, max: usize) -> Result<SourcePoll, BoxError> {
        let end = self.count.unwrap_or(u64::MAX);
        while out.len() < max && self.next < end {
            out.push((self.f)(self.next));
            self.next += self.step;
        }
        Ok(if self.next >= end { SourcePoll::Done } else { SourcePoll::Ready })
    }
}
