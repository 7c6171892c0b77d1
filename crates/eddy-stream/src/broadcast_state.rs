//! Broadcast state: a low-rate stream (rules, thresholds) sent to every subtask of a keyed
//! operator, where each subtask keeps it in a broadcast state `S` that the keyed records read
//! (Flink's `KeyedBroadcastProcessFunction`). Every subtask sees the same broadcast records
//! in the same order, so their broadcast states agree; the order between broadcast and keyed
//! records is not fixed, so decide on event-time timers where it matters.

use std::sync::Arc;

use eddy_core::{BoxError, Record, Result, Timestamp};
use eddy_runtime::checkpoint::SubtaskList;
use eddy_runtime::edge::{KeyedEdge, PlainEdge};
use eddy_runtime::graph::{Edge, ShipStrategy};
use eddy_state::{FiredTimer, Redistribution};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::connected::Either;
use crate::keyed_operator::{Intake, KeyedHandler, KeyedOperator, Setup, Shell};
use crate::keyed_stream::{Key, KeyedStream};
use crate::ops::keyed_process::{timer_key, KeyedContext};
use crate::state_codec::{decode, encode};
use crate::{Data, DataStream};

/// A function over a keyed stream and a broadcast stream. Keyed records read the
/// broadcast state; broadcast records update it. Errors from either become dead letters
/// (`dead_letters::<Either<A, B>>()`).
pub trait KeyedBroadcastProcessFunction<K, A, B, S, O>: Clone + Send + Sync + 'static {
    /// Handles a keyed record, with its key's state and timers.
    fn process_element(&mut self, value: &A, broadcast: &S, ctx: &mut KeyedContext<'_, K, O>) -> Result<(), BoxError>;
    /// Updates the broadcast state with a broadcast record (every subtask gets every one).
    fn process_broadcast_element(&mut self, value: &B, broadcast: &mut S) -> Result<(), BoxError>;
    /// A timer of the current key has fired.
    fn on_timer(
        &mut self,
        timestamp: Timestamp,
        broadcast: &S,
        ctx: &mut KeyedContext<'_, K, O>,
    ) -> Result<(), BoxError> {
        let _ = (timestamp, broadcast, ctx);
        Ok(())
    }
}

/// A keyed stream connected with a broadcast stream.
pub struct BroadcastConnectedStream<A, B, K, F> {
    keyed: KeyedStream<A, K, F>,
    broadcast: DataStream<B>,
}

impl<A, K, F> KeyedStream<A, K, F>
where
    A: Data,
    K: Key + DeserializeOwned,
    F: Fn(&A) -> K + Clone + Send + Sync + 'static,
{
    /// Connects this keyed stream with `broadcast`, whose records reach every subtask.
    pub fn connect_broadcast<B: Data>(&self, broadcast: &DataStream<B>) -> BroadcastConnectedStream<A, B, K, F> {
        BroadcastConnectedStream { keyed: self.clone(), broadcast: broadcast.clone() }
    }
}

impl<A, B, K, F> BroadcastConnectedStream<A, B, K, F>
where
    A: Data,
    B: Data,
    K: Key + DeserializeOwned,
    F: Fn(&A) -> K + Clone + Send + Sync + 'static,
{
    /// Runs `function` with a broadcast state `S` per subtask, starting from `S::default()`
    /// (or, on a restore, from what subtask 0 held: every subtask's copy is the same).
    pub fn process<S, O, P>(&self, function: P) -> DataStream<O>
    where
        S: Default + Send + Serialize + DeserializeOwned + 'static,
        O: Data,
        P: KeyedBroadcastProcessFunction<K, A, B, S, O>,
    {
        let key_of = self.keyed.key_of.clone();
        // Keyed records are routed (and their state stored) by `Some(key)`: the edge carries
        // `Either`, and broadcast records, which never take this edge, have no key.
        let route = move |e: &Either<A, B>| match e {
            Either::First(a) => Some(key_of(a)),
            Either::Second(_) => None,
        };
        // The wrapping maps run where their inputs do: behind a rebalance, broadcast records
        // would reach the keyed subtasks in different orders.
        let keyed = self.keyed.stream.map(Either::<A, B>::First).name("BroadcastKeyed").follow_input();
        let broadcast = self.broadcast.map(Either::<A, B>::Second).name("BroadcastRules").follow_input();
        let key_of = self.keyed.key_of.clone();
        let processed = keyed.transform_over(
            "KeyedBroadcastProcess",
            (ShipStrategy::KeyGroups, None),
            Arc::new(KeyedEdge::<Either<A, B>, _>::new(route)),
            move |ctx, out| {
                let restored = match ctx.state() {
                    Some(state) => state.restored_list(BROADCAST)?.first().map(|b| decode(b)).transpose()?,
                    None => None,
                };
                let handler = BroadcastHandler {
                    key_of: key_of.clone(),
                    function: function.clone(),
                    broadcast: restored.unwrap_or_default(),
                    _key: std::marker::PhantomData,
                };
                Ok(Box::new(KeyedOperator::open(ctx, out, Setup::default(), |_, _| Ok(handler))?))
            },
        );
        processed.environment().with_graph(|g| {
            g.add_edge(Edge {
                from: broadcast.node,
                to: processed.node,
                strategy: ShipStrategy::Broadcast,
                factory: Arc::new(PlainEdge::<Either<A, B>>::default()),
                tag: broadcast.tag.clone(),
                repartition: None,
            })
        });
        processed
    }
}

/// The operator-state list that holds the broadcast state (one item: the state).
const BROADCAST: &str = "broadcast";

/// Keyed records with their key's state and the broadcast state; broadcast records into it.
struct BroadcastHandler<K, F, P, S> {
    key_of: F,
    function: P,
    broadcast: S,
    _key: std::marker::PhantomData<fn() -> K>,
}

impl<A, B, K, F, P, S, O> KeyedHandler<Either<A, B>, O> for BroadcastHandler<K, F, P, S>
where
    A: Data,
    B: Data,
    K: Key + DeserializeOwned,
    F: Fn(&A) -> K + Send,
    P: KeyedBroadcastProcessFunction<K, A, B, S, O>,
    S: Send + Serialize,
    O: Send,
{
    fn on_record(&mut self, record: Record<Either<A, B>>, shell: &mut Shell<O>) -> Result<Intake<Either<A, B>>> {
        let outcome = match &record.value {
            Either::First(a) => {
                let key = (self.key_of)(a);
                // Keyed records are stored (and routed) by `Some(key)`; see `process`.
                let mut ctx = KeyedContext::of_record(shell, &key, &Some(key.clone()), record.timestamp)?;
                self.function.process_element(a, &self.broadcast, &mut ctx)
            }
            Either::Second(b) => self.function.process_broadcast_element(b, &mut self.broadcast),
        };
        Ok(match outcome {
            Ok(()) => Intake::Taken,
            Err(error) => Intake::Rejected { value: record.value, error: error.to_string() },
        })
    }

    fn on_timer(&mut self, timer: FiredTimer, shell: &mut Shell<O>) -> Result<()> {
        let key: K = timer_key(shell, &timer, |stored: Option<K>| stored)?;
        let info = shell.info.clone();
        let mut ctx = KeyedContext::of_timer(shell, &key, &timer);
        self.function
            .on_timer(timer.timer.timestamp, &self.broadcast, &mut ctx)
            .map_err(|e| info.error(format!("on_timer: {e}")))
    }

    fn lists(&self, shell: &Shell<O>) -> Result<Vec<SubtaskList>> {
        let items = vec![encode(&shell.info, &self.broadcast)?];
        Ok(vec![SubtaskList { name: BROADCAST.into(), redistribution: Redistribution::Broadcast, items }])
    }
}
