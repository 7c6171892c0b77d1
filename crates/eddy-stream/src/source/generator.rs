//! A deterministic generator: record `i` is `f(i)`, so a position is just an index.

use eddy_core::{BoxError, Source, SourcePoll};

use crate::source::stride::StrideSplits;

/// Emits `f(i)` for the indices of its splits (on a fresh start, subtask `s` of `p` owns
/// `s, s + p, …`), in increasing order.
pub struct GeneratorSource<F> {
    f: F,
    splits: StrideSplits,
    count: Option<u64>,
}

impl<F> GeneratorSource<F> {
    /// Subtask `subtask` of `parallelism` over indices `0..count` (`None`: unbounded).
    pub fn new(f: F, count: Option<u64>, subtask: usize, parallelism: usize) -> Self {
        GeneratorSource { f, splits: StrideSplits::fresh(subtask, parallelism), count }
    }

    /// A generator resuming at the positions a checkpoint recorded.
    pub fn restore(f: F, count: Option<u64>, splits: Vec<Vec<u8>>) -> Result<Self, BoxError> {
        Ok(GeneratorSource { f, splits: StrideSplits::restore(splits)?, count })
    }
}

impl<T, F: Fn(u64) -> T + Send> Source<T> for GeneratorSource<F> {
    fn poll_next(&mut self, out: &mut Vec<T>, max: usize) -> Result<SourcePoll, BoxError> {
        let end = self.count.unwrap_or(u64::MAX);
        while out.len() < max {
            match self.splits.next_below(end) {
                Some(index) => out.push((self.f)(index)),
                None => return Ok(SourcePoll::Done),
            }
        }
        Ok(SourcePoll::Ready)
    }

    fn snapshot(&mut self) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        self.splits.snapshot().map(Some)
    }
}
