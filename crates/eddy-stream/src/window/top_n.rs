//! Top-N per window: the `n` greatest elements of each key's window by a score, kept
//! incrementally, so a window holds at most `n` elements (plus ties, if asked) however many
//! records it sees, and partial results from several subtasks merge.
//!
//! ```
//! use std::time::Duration;
//! use eddy_stream::prelude::*;
//! let env = StreamEnvironment::new();
//! let best = env
//!     .from_iter(vec![(100i64, 'a', 7u64), (200, 'b', 9), (300, 'c', 4), (400, 'd', 9)])
//!     .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |e| e.0)
//!     .key_by(|_| ())
//!     .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
//!     // The highest score, and every element that ties with it.
//!     .aggregate(TopN::with_ties(1, |e: &(i64, char, u64)| e.2))
//!     .collect();
//! env.execute("best").unwrap().wait().unwrap();
//! let mut names: Vec<char> = best.take().concat().into_iter().map(|e| e.1).collect();
//! names.sort();
//! assert_eq!(names, vec!['b', 'd']);
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::window::aggregate::AggregateFunction;

/// Keeps the `n` elements with the greatest `score` (Flink SQL's Top-N per window, `ROW_NUMBER()
/// OVER (PARTITION BY window ORDER BY score DESC) <= n`). The result lists them best first.
///
/// Without ties, which of several elements with the score of the `n`th is kept depends on the
/// order they came in, so results may differ between runs; make the score a total order
/// (add a tie-breaker to it) or keep ties with [`TopN::with_ties`].
#[derive(Debug, Clone, Copy)]
pub struct TopN<S> {
    n: usize,
    score: S,
    ties: bool,
}

impl<S> TopN<S> {
    /// The `n` elements with the greatest `score`.
    pub fn new(n: usize, score: S) -> Self {
        TopN { n, score, ties: false }
    }

    /// The `n` elements with the greatest `score`, and every other element whose score equals
    /// the `n`th's (Flink SQL's `RANK() <= n`): deterministic whatever the order of input.
    pub fn with_ties(n: usize, score: S) -> Self {
        TopN { n, score, ties: true }
    }
}

impl<S> TopN<S> {
    /// Inserts `value` into `best` (sorted by score, greatest first; equal scores in arrival
    /// order) and drops what falls out of the top `n`.
    fn insert<T, V: Ord>(&self, best: &mut Vec<T>, value: T)
    where
        S: Fn(&T) -> V,
    {
        if self.n == 0 {
            return;
        }
        let score = (self.score)(&value);
        if best.len() >= self.n {
            let last = (self.score)(&best[best.len() - 1]);
            if score < last || (score == last && !self.ties) {
                return;
            }
        }
        let at = best.partition_point(|e| (self.score)(e) >= score);
        best.insert(at, value);
        if best.len() > self.n {
            let nth = (self.score)(&best[self.n - 1]);
            let keep = if self.ties { best.partition_point(|e| (self.score)(e) >= nth) } else { self.n };
            best.truncate(keep);
        }
    }
}

impl<T, S, V> AggregateFunction<T> for TopN<S>
where
    T: Clone + Send + Serialize + DeserializeOwned + 'static,
    S: Fn(&T) -> V + Clone + Send + Sync + 'static,
    V: Ord,
{
    type Acc = Vec<T>;
    type Out = Vec<T>;

    fn create_accumulator(&self) -> Vec<T> {
        Vec::new()
    }

    fn add(&self, acc: &mut Vec<T>, value: T) {
        self.insert(acc, value);
    }

    fn get_result(&self, acc: Vec<T>) -> Vec<T> {
        acc
    }

    fn merge(&self, acc: &mut Vec<T>, other: Vec<T>) {
        for value in other {
            self.insert(acc, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The model: sort everything by score, take `n`, and with ties every element scoring
    /// at least the `n`th.
    fn model(values: &[(u8, u16)], n: usize, ties: bool) -> Vec<u8> {
        let mut sorted: Vec<(u8, u16)> = values.to_vec();
        sorted.sort_by_key(|e| std::cmp::Reverse(e.0));
        if n == 0 {
            return Vec::new();
        }
        let mut kept: Vec<(u8, u16)> = sorted.iter().copied().take(n).collect();
        if ties && kept.len() == n {
            let nth = kept[n - 1].0;
            kept.extend(sorted[n..].iter().copied().take_while(|e| e.0 == nth));
        }
        kept.into_iter().map(|e| e.0).collect()
    }

    proptest! {
        /// Split in two parts folded separately and merged (as partial windows are), top-N
        /// keeps the scores the model keeps, best first.
        #[test]
        fn keeps_the_greatest_scores_through_merges(
            values in proptest::collection::vec((0u8..20, any::<u16>()), 0..60),
            n in 0usize..6,
            ties: bool,
            cut in 0.0..1.0f64,
        ) {
            let score = |e: &(u8, u16)| e.0;
            let top = if ties { TopN::with_ties(n, score) } else { TopN::new(n, score) };
            let cut = (values.len() as f64 * cut) as usize;
            let (mut left, mut right) = (top.create_accumulator(), top.create_accumulator());
            values[..cut].iter().for_each(|&v| top.add(&mut left, v));
            values[cut..].iter().for_each(|&v| top.add(&mut right, v));
            top.merge(&mut left, right);
            let scores: Vec<u8> = top.get_result(left).into_iter().map(|e| e.0).collect();
            prop_assert_eq!(scores, model(&values, n, ties));
        }
    }
}
