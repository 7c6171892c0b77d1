//! One key's panes of a sliding window, and the aggregate of the window over them, kept as
//! a two-stack queue so that sliding the window costs O(1) merges amortised, however many
//! panes a window holds.
//!
//! A sliding window of size `n` panes moves one slide at a time: panes enter at the end and
//! leave at the start. Merging the `n` panes anew for every window (or every pane into its
//! `n` windows) costs `n` merges per result; for a 1 h window sliding every second that is
//! 3,600. An `AggregateFunction` can merge but not subtract, so the queue keeps two stacks
//! (the classic two-stack queue, as in "General Incremental Sliding-Window Aggregation",
//! Tangwongsan et al., VLDB 2015):
//!
//! ```text
//!   panes:  [ p0  p1  p2 | p3  p4 ] p5  p6      p0..p4 in the window, p5, p6 later
//!             └─ front ─┘ └ back ┘
//!   front: suffix aggregates  p0+p1+p2, p1+p2, p2   (the oldest pane leaves: pop one)
//!   back:  one running aggregate  p3+p4             (a pane enters: merge one)
//!   window = front's top + back
//! ```
//!
//! When the oldest pane must leave and the front is empty, the window's panes move to the
//! front in one pass (each pane is moved once, so this is O(1) amortised). A pane that
//! arrives late, into the part of the window already on the front, rebuilds the front.
//! The queue is serde (it is a key's value in keyed state) and knows nothing of time beyond
//! the pane starts and window bounds it is given.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// No window computed yet.
pub(crate) const NO_WINDOW: i128 = i128::MIN;

/// One key's panes, sorted by start, with the cached aggregates of its current window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PaneQueue<Acc> {
    /// The index of the last window computed for this key ([`NO_WINDOW`] if none).
    pub(crate) at: i128,
    /// The panes' starts and accumulators, sorted by start.
    panes: VecDeque<(i64, Acc)>,
    /// Suffix aggregates of the oldest `front.len()` panes: the last merges all of them,
    /// the first only the newest of them.
    front: Vec<Acc>,
    /// The aggregate of panes `front.len()..upto`.
    back: Option<Acc>,
    /// How many panes are in the current window; the rest start at or after its end.
    upto: usize,
    /// The current window's aggregate, and the starts of the oldest pane, of the first pane
    /// after the window and of the newest pane (`i128::MAX`: none), kept next to the key
    /// so that sliding a window that no pane enters or leaves (most of them, when windows
    /// hold many panes) reads nothing else.
    window: Option<Acc>,
    oldest: i128,
    next: i128,
    newest: i128,
}

impl<Acc: Clone> PaneQueue<Acc> {
    /// An empty queue whose windows up to index `at` are done.
    pub(crate) fn new(at: i128) -> Self {
        let none = i128::MAX;
        PaneQueue {
            at,
            panes: VecDeque::new(),
            front: Vec::new(),
            back: None,
            upto: 0,
            window: None,
            oldest: none,
            next: none,
            newest: none,
        }
    }

    /// The pane starts.
    pub(crate) fn starts(&self) -> impl Iterator<Item = i64> + '_ {
        self.panes.iter().map(|(start, _)| *start)
    }

    /// The newest pane's start (`i128::MAX`: no pane).
    pub(crate) fn newest(&self) -> i128 {
        self.newest
    }

    /// Merges `acc` into the pane starting at `start`, given the current window's bounds
    /// `[from, to)`. Returns false, changing nothing, if the pane starts before the current
    /// window: every window it is in has been computed.
    pub(crate) fn add(
        &mut self,
        start: i64,
        acc: Acc,
        (from, to): (i128, i128),
        merge: impl Fn(&mut Acc, Acc),
    ) -> bool {
        let at = i128::from(start);
        if at < from {
            return false;
        }
        let in_window = at < to;
        if in_window {
            match &mut self.window {
                Some(window) => merge(window, acc.clone()),
                None => self.window = Some(acc.clone()),
            }
        }
        match self.panes.binary_search_by_key(&start, |(s, _)| *s) {
            Ok(i) => {
                if in_window && i >= self.front.len() {
                    self.merge_back(acc.clone(), &merge);
                }
                merge(&mut self.panes[i].1, acc);
                if in_window && i < self.front.len() {
                    self.flip(&merge);
                }
            }
            Err(i) => {
                self.panes.insert(i, (start, acc));
                if in_window {
                    self.upto += 1;
                    if i < self.front.len() {
                        self.flip(&merge);
                    } else {
                        self.merge_back(self.panes[i].1.clone(), &merge);
                    }
                }
            }
        }
        self.refresh();
        true
    }

    /// Moves the window to `[from, to)`: panes before `from` leave, panes before `to` enter.
    /// Returns the window's aggregate, or `None` if it holds none of this key's panes.
    pub(crate) fn slide(&mut self, (from, to): (i128, i128), merge: impl Fn(&mut Acc, Acc)) -> Option<Acc> {
        if self.oldest >= from && self.next >= to {
            return self.window.clone();
        }
        self.window = self.recompute((from, to), &merge);
        self.refresh();
        self.window.clone()
    }

    /// Slides the stacks to `[from, to)` and merges the window's aggregate from them.
    fn recompute(&mut self, (from, to): (i128, i128), merge: &impl Fn(&mut Acc, Acc)) -> Option<Acc> {
        self.evict(from, merge);
        while self.panes.get(self.upto).is_some_and(|(start, _)| i128::from(*start) < to) {
            let acc = self.panes[self.upto].1.clone();
            self.merge_back(acc, merge);
            self.upto += 1;
        }
        if self.upto == 0 {
            return None;
        }
        match (self.front.last(), &self.back) {
            (Some(front), Some(back)) => {
                let mut window = front.clone();
                merge(&mut window, back.clone());
                Some(window)
            }
            (Some(only), None) | (None, Some(only)) => Some(only.clone()),
            (None, None) => None,
        }
    }

    /// Reads the pane starts kept next to the key.
    fn refresh(&mut self) {
        let start = |pane: Option<&(i64, Acc)>| pane.map_or(i128::MAX, |(start, _)| i128::from(*start));
        (self.oldest, self.next, self.newest) =
            (start(self.panes.front()), start(self.panes.get(self.upto)), start(self.panes.back()));
    }

    /// Removes the panes that start before `from`.
    fn evict(&mut self, from: i128, merge: &impl Fn(&mut Acc, Acc)) {
        while self.panes.front().is_some_and(|(start, _)| i128::from(*start) < from) {
            if self.upto > 0 {
                if self.front.is_empty() {
                    self.flip(merge);
                }
                self.front.pop();
                self.upto -= 1;
            }
            self.panes.pop_front();
        }
    }

    fn merge_back(&mut self, acc: Acc, merge: &impl Fn(&mut Acc, Acc)) {
        match &mut self.back {
            Some(back) => merge(back, acc),
            None => self.back = Some(acc),
        }
    }

    /// Moves every pane of the window onto the front, as suffix aggregates.
    fn flip(&mut self, merge: &impl Fn(&mut Acc, Acc)) {
        self.front.clear();
        self.back = None;
        for (_, acc) in self.panes.iter().take(self.upto).rev() {
            let mut suffix = acc.clone();
            if let Some(newer) = self.front.last() {
                merge(&mut suffix, newer.clone());
            }
            self.front.push(suffix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Concatenation: a merge that keeps which values went in (the engine assumes merges
    /// commute, as Flink does, so the test compares them as sets).
    fn concat(acc: &mut Vec<i64>, other: Vec<i64>) {
        acc.extend(other);
    }

    proptest! {
        /// Windows of `size` panes sliding by `slide` panes over panes arriving in any order
        /// (but never before the current window) equal the panes merged anew for each window.
        #[test]
        fn sliding_equals_merging_every_window_anew(
            steps in proptest::collection::vec((0i64..40, any::<bool>()), 1..200),
            size in 1i64..8,
            slide in 1i64..4,
        ) {
            let mut queue: PaneQueue<Vec<i64>> = PaneQueue::new(NO_WINDOW);
            let mut model: Vec<(i64, i64)> = Vec::new();
            let mut window: Option<i64> = None; // the current window's start pane
            for (i, &(pane, advance)) in steps.iter().enumerate() {
                let bounds = window.map_or((i128::MIN, i128::MIN), |s| (i128::from(s), i128::from(s + size)));
                let taken = queue.add(pane, vec![i as i64], bounds, concat);
                let expect_taken = window.is_none_or(|s| pane >= s);
                prop_assert_eq!(taken, expect_taken);
                if taken {
                    model.push((pane, i as i64));
                }
                if advance {
                    let start = window.map_or(0, |s| s + slide);
                    window = Some(start);
                    let mut got = queue.slide((i128::from(start), i128::from(start + size)), concat).unwrap_or_default();
                    got.sort();
                    let expected: Vec<i64> =
                        model.iter().filter(|&&(p, _)| p >= start && p < start + size).map(|&(_, v)| v).collect();
                    prop_assert_eq!(got, expected);
                    model.retain(|&(p, _)| p >= start);
                }
            }
        }
    }
}
