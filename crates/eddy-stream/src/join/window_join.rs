//! The window join: every pair of records of two streams with the same key in the same
//! window (Flink's `JoinedStreams`), emitted when the window fires.
//!
//! ```text
//! first  ──map(Either::First)──┐
//!                               ├─ union ─ key_by ─ window ─ CoGroup ─ pairs ─ flat_map ──▶
//! second ──map(Either::Second)─┘
//! ```
//!
//! As in Flink, it is a co-group: both inputs go, tagged, into one window operator whose
//! accumulator keeps each side's records of the key and window ([`CoGroup`]); when the window
//! fires, the join function runs on every pair, and each result carries the window's max
//! timestamp. So it takes every window assigner (tumbling, sliding, sessions; event or
//! processing time), keeps its records in keyed state on the heap or in sled, and checkpoints
//! and restores like any window. A window keeps all its records of both sides until it fires.
//!
//! ```
//! use std::time::Duration;
//! use eddy_stream::prelude::*;
//! let env = StreamEnvironment::new();
//! let time = WatermarkStrategy::monotonous();
//! // (time, user, amount) and (time, user, page)
//! let orders = env.from_iter(vec![(1_000i64, 'a', 3u32), (7_000, 'a', 1)])
//!     .assign_timestamps_and_watermarks(time.clone(), |o| o.0);
//! let visits = env.from_iter(vec![(2_000i64, 'a', 17u16), (3_000, 'b', 4)])
//!     .assign_timestamps_and_watermarks(time, |v| v.0);
//! let joined = orders
//!     .join(&visits)
//!     .where_(|o| o.1)
//!     .equal_to(|v| v.1)
//!     .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
//!     .apply(|o, v| (o.1, o.2, v.2))
//!     .uid("orders-visits")
//!     .collect();
//! env.execute("join").unwrap().wait().unwrap();
//! assert_eq!(joined.take(), vec![('a', 3, 17)]);
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::keyed_stream::Key;
use crate::window::aggregate::AggregateFunction;
use crate::window::assigner::WindowAssigner;
use crate::{Data, DataStream, Either};

/// Two streams to join, waiting for their keys and window.
pub struct JoinedStreams<A, B> {
    first: DataStream<A>,
    second: DataStream<B>,
}

impl<A: Data> DataStream<A> {
    /// Joins this stream with `other` in windows: name the keys with
    /// [`where_`](JoinedStreams::where_) and [`equal_to`](JoinWhere::equal_to), then the
    /// [`window`](JoinEqualTo::window). See [`window_join`](crate::join::window_join).
    pub fn join<B: Data>(&self, other: &DataStream<B>) -> JoinedStreams<A, B> {
        JoinedStreams { first: self.clone(), second: other.clone() }
    }
}

impl<A: Data, B: Data> JoinedStreams<A, B> {
    /// The key of a record of the first stream.
    pub fn where_<K: Key, FA>(self, first_key: FA) -> JoinWhere<A, B, FA>
    where
        FA: Fn(&A) -> K + Clone + Send + Sync + 'static,
    {
        JoinWhere { streams: self, first_key }
    }
}

/// A window join with the first stream's key.
pub struct JoinWhere<A, B, FA> {
    streams: JoinedStreams<A, B>,
    first_key: FA,
}

impl<A: Data, B: Data, FA> JoinWhere<A, B, FA> {
    /// The key of a record of the second stream: it joins records of the first whose key equals it.
    pub fn equal_to<K: Key, FB>(self, second_key: FB) -> JoinEqualTo<A, B, FA, FB>
    where
        FA: Fn(&A) -> K + Clone + Send + Sync + 'static,
        FB: Fn(&B) -> K + Clone + Send + Sync + 'static,
    {
        JoinEqualTo { streams: self.streams, first_key: self.first_key, second_key }
    }
}

/// A window join with both keys.
pub struct JoinEqualTo<A, B, FA, FB> {
    streams: JoinedStreams<A, B>,
    first_key: FA,
    second_key: FB,
}

impl<A: Data, B: Data, FA, FB> JoinEqualTo<A, B, FA, FB> {
    /// The windows records meet in.
    pub fn window<W: WindowAssigner>(self, assigner: W) -> WindowedJoin<A, B, FA, FB, W> {
        WindowedJoin { streams: self.streams, first_key: self.first_key, second_key: self.second_key, assigner }
    }
}

/// A window join ready to [`apply`](WindowedJoin::apply).
pub struct WindowedJoin<A, B, FA, FB, W> {
    streams: JoinedStreams<A, B>,
    first_key: FA,
    second_key: FB,
    assigner: W,
}

impl<A, B, K, FA, FB, W> WindowedJoin<A, B, FA, FB, W>
where
    A: Data + Serialize + DeserializeOwned,
    B: Data + Serialize + DeserializeOwned,
    K: Key,
    FA: Fn(&A) -> K + Clone + Send + Sync + 'static,
    FB: Fn(&B) -> K + Clone + Send + Sync + 'static,
    W: WindowAssigner,
{
    /// Emits `join(a, b)` for every pair of a record `a` of the first stream and `b` of the
    /// second with equal keys in the same window, when the window fires, at the window's max
    /// timestamp. `uid` on the result names the window that holds the records.
    pub fn apply<O, J>(&self, join: J) -> DataStream<O>
    where
        O: Data,
        J: Fn(&A, &B) -> O + Clone + Send + Sync + 'static,
    {
        let (first_key, second_key) = (self.first_key.clone(), self.second_key.clone());
        let key_of = move |e: &Either<A, B>| match e {
            Either::First(a) => first_key(a),
            Either::Second(b) => second_key(b),
        };
        let first = self.streams.first.map(Either::<A, B>::First).name("JoinFirst").follow_input();
        let second = self.streams.second.map(Either::<A, B>::Second).name("JoinSecond").follow_input();
        let groups = first
            .union(&[second])
            .key_by(key_of)
            .window(self.assigner.clone())
            .aggregate_with(CoGroup, move |_, _, (firsts, seconds): (Vec<A>, Vec<B>)| {
                let mut pairs = Vec::with_capacity(firsts.len() * seconds.len());
                for a in &firsts {
                    pairs.extend(seconds.iter().map(|b| join(a, b)));
                }
                pairs
            })
            .name("WindowJoin");
        groups.flat_map(|pairs| pairs).name("WindowJoinPairs").flattening(&groups)
    }
}

/// Keeps a key's records of both inputs in a window, each side apart (a co-group).
#[derive(Debug, Clone, Copy, Default)]
pub struct CoGroup;

impl<A, B> AggregateFunction<Either<A, B>> for CoGroup
where
    A: Clone + Send + Serialize + DeserializeOwned + 'static,
    B: Clone + Send + Serialize + DeserializeOwned + 'static,
{
    type Acc = (Vec<A>, Vec<B>);
    type Out = (Vec<A>, Vec<B>);

    fn create_accumulator(&self) -> Self::Acc {
        (Vec::new(), Vec::new())
    }

    fn add(&self, acc: &mut Self::Acc, value: Either<A, B>) {
        match value {
            Either::First(a) => acc.0.push(a),
            Either::Second(b) => acc.1.push(b),
        }
    }

    fn get_result(&self, acc: Self::Acc) -> Self::Out {
        acc
    }

    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        acc.0.extend(other.0);
        acc.1.extend(other.1);
    }
}
