//! Joins of two keyed streams: records of both inputs with the same key that fall in the same
//! window ([`window_join`], Flink's `a.join(b).where(..).equalTo(..).window(..).apply(..)`), or
//! whose timestamps lie within an interval of each other ([`interval_join`], Flink's
//! `a.keyBy(..).intervalJoin(b.keyBy(..)).between(lower, upper).process(..)`).
//!
//! Both are inner joins in event time (the window join also in processing time), and both run
//! as keyed operators: what they buffer lives in keyed state, on the heap or in sled, goes
//! into checkpoints, and is restored at any parallelism. A regular join without bounds (every
//! pair of a key, ever) is a [`KeyedCoProcessFunction`](crate::KeyedCoProcessFunction) with
//! the two sides in state.

pub mod interval_join;
pub mod window_join;

pub use interval_join::{IntervalJoin, IntervalJoinBetween};
pub use window_join::{CoGroup, JoinEqualTo, JoinWhere, JoinedStreams, WindowedJoin};
