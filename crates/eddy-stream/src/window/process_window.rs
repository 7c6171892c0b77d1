//! `process_window`: a function over all of a window's elements at once (Flink's
//! `ProcessWindowFunction`), for what an incremental aggregate cannot express (a median, a
//! sort, a join of the window's records with each other).
//!
//! It is a window whose accumulator is the list of its elements ([`Elements`]), so it runs
//! wherever an aggregate does: any assigner, sessions, triggers, allowed lateness, keyed state
//! on the heap or in sled, checkpoints and restores at any parallelism. An event-time window
//! pre-aggregates here too: each upstream subtask sends the elements of a key and pane as
//! one list, which the keyed stage appends to the window's.
//!
//! The price of seeing every element is keeping every element: a window holds all its
//! records until it fires, where an aggregate holds one accumulator. With the sled backend a
//! window's list is read and rewritten as it grows, so keep such windows small or prefer an
//! [`AggregateFunction`] (or [`TopN`](crate::window::TopN) for the best few).
//!
//! ```
//! use std::time::Duration;
//! use eddy_stream::prelude::*;
//! let env = StreamEnvironment::new();
//! let medians = env
//!     .from_iter(vec![(100i64, 'a', 7), (200, 'a', 1), (300, 'a', 4), (5_100, 'a', 9)])
//!     .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |e| e.0)
//!     .key_by(|e| e.1)
//!     .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
//!     .process_window(|key, window, mut elements| {
//!         elements.sort_by_key(|e| e.2);
//!         (*key, window.start, elements[elements.len() / 2].2)
//!     })
//!     .collect();
//! env.execute("medians").unwrap().wait().unwrap();
//! let mut medians = medians.take();
//! medians.sort();
//! assert_eq!(medians, vec![('a', 0, 4), ('a', 5_000, 9)]);
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::keyed_stream::Key;
use crate::window::aggregate::AggregateFunction;
use crate::window::assigner::WindowAssigner;
use crate::window::trigger::Trigger;
use crate::window::{TimeWindow, WindowedStream};
use crate::{Data, DataStream};

/// The elements of a window, in no particular order: the aggregate that
/// [`process_window`](WindowedStream::process_window) runs on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Elements;

impl<T: Clone + Send + Serialize + DeserializeOwned + 'static> AggregateFunction<T> for Elements {
    type Acc = Vec<T>;
    type Out = Vec<T>;

    fn create_accumulator(&self) -> Vec<T> {
        Vec::new()
    }

    #[inline]
    fn add(&self, acc: &mut Vec<T>, value: T) {
        acc.push(value);
    }

    fn get_result(&self, acc: Vec<T>) -> Vec<T> {
        acc
    }

    fn merge(&self, acc: &mut Vec<T>, other: Vec<T>) {
        acc.extend(other);
    }
}

impl<T, K, F, A, Tr> WindowedStream<T, K, F, A, Tr>
where
    T: Data + Serialize + DeserializeOwned,
    K: Key,
    F: Fn(&T) -> K + Clone + Send + Sync + 'static,
    A: WindowAssigner,
    Tr: Trigger<T>,
{
    /// Emits `function(key, window, elements)` when a window fires, with all of the key's
    /// elements in the window (in no particular order) and the window's max timestamp as
    /// event time (Flink's `ProcessWindowFunction`). To emit several rows per window, return
    /// them as a `Vec` and `flat_map` it (giving the window its `uid` before the `flat_map`).
    /// See the [module docs](crate::window::process_window) for what it costs.
    pub fn process_window<W, O>(&self, function: W) -> DataStream<O>
    where
        W: Fn(&K, TimeWindow, Vec<T>) -> O + Clone + Send + Sync + 'static,
        O: Data,
    {
        self.aggregate_with(Elements, function)
    }
}
