//! The interval join: every pair of a record `a` of the first keyed stream and `b` of the
//! second with the same key and `a.time + lower <= b.time <= a.time + upper` (Flink's
//! `IntervalJoin`), emitted as soon as both are there, at the later of the two times.
//!
//! Each side's records wait in keyed state (a map from timestamp to the records at it) for
//! as long as the other side can still bring a partner: a record `a` until the watermark
//! passes `a.time + upper`, a record `b` until it passes `b.time - lower`, each removed by an
//! event-time timer of its own. So the state is bounded by the interval and the disorder of
//! the input, lives on the heap or in sled, and is checkpointed and restored at any
//! parallelism with its timers. A record that comes after the watermark passed its time is
//! late, as in Flink: it is dropped and counted (`late_records_dropped`); one without event
//! time goes to the dead-letter output of `Either<A, B>`.
//!
//! ```
//! use eddy_stream::prelude::*;
//! let env = StreamEnvironment::new();
//! let time = WatermarkStrategy::monotonous();
//! // (time, user) and (time, user, amount)
//! let clicks = env.from_iter(vec![(1_000i64, 'a'), (9_000, 'a')])
//!     .assign_timestamps_and_watermarks(time.clone(), |c| c.0);
//! let buys = env.from_iter(vec![(2_500i64, 'a', 40u32), (20_000, 'a', 7)])
//!     .assign_timestamps_and_watermarks(time, |b| b.0);
//! // Purchases up to 2 s after a click.
//! let attributed = clicks
//!     .key_by(|c| c.1)
//!     .interval_join(&buys.key_by(|b| b.1))
//!     .between(0, 2_000)
//!     .process(|click, buy| (click.0, buy.2))
//!     .uid("clicks-buys")
//!     .collect();
//! env.execute("attribution").unwrap().wait().unwrap();
//! assert_eq!(attributed.take(), vec![(1_000, 40)]);
//! ```

use std::marker::PhantomData;
use std::sync::Arc;

use eddy_core::time::NO_TIMESTAMP;
use eddy_core::{Error, Record, Result, Timestamp};
use eddy_runtime::edge::KeyedEdge;
use eddy_runtime::graph::{Edge, ShipStrategy};
use eddy_state::{FiredTimer, MapStateDescriptor, TimeDomain};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::keyed_operator::{Intake, KeyedHandler, KeyedOperator, Setup, Shell};
use crate::keyed_stream::{Key, KeyedStream};
use crate::{Data, DataStream, Either};

/// Two keyed streams to join by time, waiting for their bounds.
pub struct IntervalJoin<A, B, K, FA, FB> {
    first: KeyedStream<A, K, FA>,
    second: KeyedStream<B, K, FB>,
}

impl<A, K, FA> KeyedStream<A, K, FA>
where
    A: Data,
    K: Key,
    FA: Fn(&A) -> K + Clone + Send + Sync + 'static,
{
    /// Joins this stream's records with those of `other` (keyed the same way) whose times lie
    /// within bounds of theirs: give them with [`between`](IntervalJoin::between). See
    /// [`interval_join`](crate::join::interval_join).
    pub fn interval_join<B, FB>(&self, other: &KeyedStream<B, K, FB>) -> IntervalJoin<A, B, K, FA, FB>
    where
        B: Data,
        FB: Fn(&B) -> K + Clone + Send + Sync + 'static,
    {
        IntervalJoin { first: self.clone(), second: other.clone() }
    }
}

impl<A, B, K, FA, FB> IntervalJoin<A, B, K, FA, FB> {
    /// Joins `a` with `b` when `a.time + lower <= b.time <= a.time + upper`, in milliseconds
    /// (either bound may be negative; `lower` must not exceed `upper`).
    pub fn between(self, lower: i64, upper: i64) -> IntervalJoinBetween<A, B, K, FA, FB> {
        IntervalJoinBetween { join: self, lower, upper }
    }
}

/// An interval join with its bounds, ready to [`process`](IntervalJoinBetween::process).
pub struct IntervalJoinBetween<A, B, K, FA, FB> {
    join: IntervalJoin<A, B, K, FA, FB>,
    lower: i64,
    upper: i64,
}

impl<A, B, K, FA, FB> IntervalJoinBetween<A, B, K, FA, FB>
where
    A: Data + Serialize + DeserializeOwned,
    B: Data + Serialize + DeserializeOwned,
    K: Key,
    FA: Fn(&A) -> K + Clone + Send + Sync + 'static,
    FB: Fn(&B) -> K + Clone + Send + Sync + 'static,
{
    /// Emits `join(a, b)` for every pair within the bounds, at the later of their times.
    pub fn process<O, J>(&self, join: J) -> DataStream<O>
    where
        O: Data,
        J: Fn(&A, &B) -> O + Clone + Send + Sync + 'static,
    {
        let (first_key, second_key) = (self.join.first.key_of.clone(), self.join.second.key_of.clone());
        let key_of = move |e: &Either<A, B>| match e {
            Either::First(a) => first_key(a),
            Either::Second(b) => second_key(b),
        };
        let (lower, upper) = (self.lower, self.upper);
        let handler_key = key_of.clone();
        let first = self.join.first.stream.map(Either::<A, B>::First).name("IntervalJoinFirst").follow_input();
        let second = self.join.second.stream.map(Either::<A, B>::Second).name("IntervalJoinSecond").follow_input();
        let joined = first.key_by(key_of.clone()).transform_keyed("IntervalJoin", move |ctx, out| {
            let operator = KeyedOperator::open(ctx, out, Setup::default(), |shell, _| {
                if lower > upper {
                    let name = &shell.info.name;
                    return Err(Error::InvalidJob(format!(
                        "operator '{name}': an interval join's lower bound ({lower} ms) exceeds its upper bound ({upper} ms)"
                    )));
                }
                Ok(IntervalJoinHandler { key_of: handler_key.clone(), join: join.clone(), lower, upper, _key: PhantomData })
            })?;
            Ok(Box::new(operator))
        });
        joined.environment().with_graph(|g| {
            g.add_edge(Edge {
                from: second.node,
                to: joined.node,
                strategy: ShipStrategy::KeyGroups,
                factory: Arc::new(KeyedEdge::<Either<A, B>, _>::new(key_of)),
                tag: second.tag.clone(),
                repartition: None,
            })
        });
        joined
    }
}

/// The records of the first input waiting for partners, by timestamp.
fn firsts<A>() -> MapStateDescriptor<Timestamp, Vec<A>> {
    MapStateDescriptor::new("interval-join-first")
}

/// The records of the second input waiting for partners, by timestamp.
fn seconds<B>() -> MapStateDescriptor<Timestamp, Vec<B>> {
    MapStateDescriptor::new("interval-join-second")
}

/// A cleanup timer's namespace: which side (0 first, 1 second) and the timestamp whose
/// records go.
type Cleanup = (u8, Timestamp);

/// The interval join's handler.
struct IntervalJoinHandler<K, F, J> {
    key_of: F,
    join: J,
    lower: i64,
    upper: i64,
    _key: PhantomData<fn() -> K>,
}

impl<K, F, J> IntervalJoinHandler<K, F, J> {
    /// Adds `value` to the records of its side at `time`, to be removed at `cleanup`.
    fn buffer<T: Serialize + DeserializeOwned, O: Send>(
        shell: &Shell<O>,
        descriptor: &MapStateDescriptor<Timestamp, Vec<T>>,
        (side, time, cleanup): (u8, Timestamp, Timestamp),
        value: T,
    ) -> eddy_state::Result<()> {
        let buffer = shell.store.map_state(descriptor)?;
        let mut at = buffer.get(&time)?.unwrap_or_default();
        at.push(value);
        buffer.put(time, at)?;
        shell.store.register_timer(TimeDomain::EventTime, cleanup, &(side, time)).map(drop)
    }
}

impl<A, B, K, F, J, O> KeyedHandler<Either<A, B>, O> for IntervalJoinHandler<K, F, J>
where
    A: Data + Serialize + DeserializeOwned,
    B: Data + Serialize + DeserializeOwned,
    K: Key,
    F: Fn(&Either<A, B>) -> K + Send,
    J: Fn(&A, &B) -> O + Send,
    O: Send,
{
    fn on_record(&mut self, record: Record<Either<A, B>>, shell: &mut Shell<O>) -> Result<Intake<Either<A, B>>> {
        let time = record.timestamp;
        if time == NO_TIMESTAMP {
            let error = "an interval join needs event time: assign timestamps to both inputs".to_string();
            return Ok(Intake::Rejected { value: record.value, error });
        }
        if time <= shell.watermark {
            return Ok(Intake::Late { records: 1, value: Some(record.value) });
        }
        let key = (self.key_of)(&record.value);
        shell.store.set_current_key(&key).map_err(|e| shell.state_error(e))?;
        let (lower, upper) = (self.lower, self.upper);
        let joined = match record.value {
            Either::First(a) => {
                // Partners: b with a + lower <= b <= a + upper.
                let range = time.saturating_add(lower)..=time.saturating_add(upper);
                let partners = shell.store.map_state(&seconds::<B>()).and_then(|s| s.entries()?.collect());
                let partners: Vec<(Timestamp, Vec<B>)> = partners.map_err(|e| shell.state_error(e))?;
                for (at, bs) in partners.into_iter().filter(|(at, _)| range.contains(at)) {
                    for b in &bs {
                        shell.output.emit((self.join)(&a, b), time.max(at));
                    }
                }
                Self::buffer(shell, &firsts(), (0, time, time.saturating_add(upper)), a)
            }
            Either::Second(b) => {
                // Partners: a with b - upper <= a <= b - lower.
                let range = time.saturating_sub(upper)..=time.saturating_sub(lower);
                let partners = shell.store.map_state(&firsts::<A>()).and_then(|s| s.entries()?.collect());
                let partners: Vec<(Timestamp, Vec<A>)> = partners.map_err(|e| shell.state_error(e))?;
                for (at, as_) in partners.into_iter().filter(|(at, _)| range.contains(at)) {
                    for a in &as_ {
                        shell.output.emit((self.join)(a, &b), time.max(at));
                    }
                }
                Self::buffer(shell, &seconds(), (1, time, time.saturating_sub(lower)), b)
            }
        };
        joined.map_err(|e| shell.state_error(e))?;
        shell.output.flush_if_full()?;
        Ok(Intake::Taken)
    }

    fn on_timer(&mut self, timer: FiredTimer, shell: &mut Shell<O>) -> Result<()> {
        let (side, time): Cleanup = timer.namespace().map_err(|e| shell.state_error(e))?;
        let removed = match side {
            0 => shell.store.map_state(&firsts::<A>()).and_then(|s| s.remove(&time)),
            _ => shell.store.map_state(&seconds::<B>()).and_then(|s| s.remove(&time)),
        };
        removed.map_err(|e| shell.state_error(e))
    }
}
