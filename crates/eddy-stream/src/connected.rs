//! `connect`: two streams of different types into one operator (Flink's `ConnectedStreams`
//! and `KeyedCoProcessFunction`). Keyed on both sides, the operator's state and timers are
//! shared by the two inputs of a key.
//!
//! Each input is mapped into [`Either`] and sent by key to one keyed process operator over
//! two edges; its input gate takes the minimum of the two inputs' watermarks, as for a union.

use std::sync::Arc;

use eddy_core::{BoxError, Timestamp};
use eddy_runtime::edge::KeyedEdge;
use eddy_runtime::graph::{Edge, ShipStrategy};
use serde::de::DeserializeOwned;

use crate::keyed_stream::Key;
use crate::ops::keyed_process::{KeyedContext, KeyedProcessFunction};
use crate::ops::process::{ProcessContext, ProcessFunction};
use crate::runtime_context::RuntimeContext;
use crate::{Data, DataStream};

/// A record of the first or the second input of connected streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Either<A, B> {
    /// From the first input.
    First(A),
    /// From the second input.
    Second(B),
}

/// Two streams to be processed together.
pub struct ConnectedStreams<A, B> {
    first: DataStream<A>,
    second: DataStream<B>,
}

impl<A: Data> DataStream<A> {
    /// Connects this stream with `other` (of another type) for a two-input function.
    pub fn connect<B: Data>(&self, other: &DataStream<B>) -> ConnectedStreams<A, B> {
        ConnectedStreams { first: self.clone(), second: other.clone() }
    }
}

/// A function over two keyed inputs sharing each key's state and timers. Dead letters of
/// either input go to `dead_letters::<Either<A, B>>()`.
pub trait KeyedCoProcessFunction<K, A, B, O>: Clone + Send + Sync + 'static {
    /// Handles a record of the first input.
    fn process_element1(&mut self, value: &A, ctx: &mut KeyedContext<'_, K, O>) -> Result<(), BoxError>;
    /// Handles a record of the second input.
    fn process_element2(&mut self, value: &B, ctx: &mut KeyedContext<'_, K, O>) -> Result<(), BoxError>;
    /// A timer of the current key has fired.
    fn on_timer(&mut self, timestamp: Timestamp, ctx: &mut KeyedContext<'_, K, O>) -> Result<(), BoxError> {
        let _ = (timestamp, ctx);
        Ok(())
    }
    /// Sets up this subtask's copy of the function before its first record (see
    /// [`RuntimeContext`]); an error fails the attempt.
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        let _ = ctx;
        Ok(())
    }
    /// Releases what `open` set up, after the last record (see [`RuntimeContext`]).
    fn close(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Runs a co-process function as a process function over `Either`.
#[derive(Clone)]
struct CoProcess<P>(P);

impl<K, A, B, O, P: KeyedCoProcessFunction<K, A, B, O>> KeyedProcessFunction<K, Either<A, B>, O> for CoProcess<P> {
    fn process_element(&mut self, value: &Either<A, B>, ctx: &mut KeyedContext<'_, K, O>) -> Result<(), BoxError> {
        match value {
            Either::First(a) => self.0.process_element1(a, ctx),
            Either::Second(b) => self.0.process_element2(b, ctx),
        }
    }

    fn on_timer(&mut self, timestamp: Timestamp, ctx: &mut KeyedContext<'_, K, O>) -> Result<(), BoxError> {
        self.0.on_timer(timestamp, ctx)
    }

    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.0.open(ctx)
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.0.close()
    }
}

/// A function over two inputs without keys (Flink's `CoProcessFunction`).
pub trait CoProcessFunction<A, B, O>: Clone + Send + Sync + 'static {
    /// Handles a record of the first input.
    fn process_element1(&mut self, value: A, ctx: &mut ProcessContext<'_, O>);
    /// Handles a record of the second input.
    fn process_element2(&mut self, value: B, ctx: &mut ProcessContext<'_, O>);
    /// Sets up this subtask's copy of the function before its first record (see
    /// [`RuntimeContext`]); an error fails the attempt.
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        let _ = ctx;
        Ok(())
    }
    /// Releases what `open` set up, after the last record (see [`RuntimeContext`]).
    fn close(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Runs a co-process function as a process function over `Either`.
#[derive(Clone)]
struct CoProcessUnkeyed<P>(P);

impl<A, B, O, P: CoProcessFunction<A, B, O>> ProcessFunction<Either<A, B>, O> for CoProcessUnkeyed<P> {
    fn process_element(&mut self, value: Either<A, B>, ctx: &mut ProcessContext<'_, O>) {
        match value {
            Either::First(a) => self.0.process_element1(a, ctx),
            Either::Second(b) => self.0.process_element2(b, ctx),
        }
    }

    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.0.open(ctx)
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.0.close()
    }
}

impl<A: Data, B: Data> ConnectedStreams<A, B> {
    /// Runs `function` on both inputs, merged (the watermark is the minimum of the two).
    pub fn process<O: Data, P: CoProcessFunction<A, B, O>>(&self, function: P) -> DataStream<O> {
        let first = self.first.map(Either::<A, B>::First).name("ConnectFirst").follow_input();
        let second = self.second.map(Either::<A, B>::Second).name("ConnectSecond").follow_input();
        first.union(&[second]).process(CoProcessUnkeyed(function)).name("CoProcess")
    }

    /// Partitions both inputs by key (`first_key` and `second_key` must agree on what a key
    /// is), so a key's records of both inputs meet in one subtask.
    pub fn key_by<K, FA, FB>(&self, first_key: FA, second_key: FB) -> KeyedConnectedStreams<A, B, FA, FB>
    where
        K: Key,
        FA: Fn(&A) -> K + Clone + Send + Sync + 'static,
        FB: Fn(&B) -> K + Clone + Send + Sync + 'static,
    {
        KeyedConnectedStreams { first: self.first.clone(), second: self.second.clone(), first_key, second_key }
    }
}

/// Connected streams partitioned by key.
pub struct KeyedConnectedStreams<A, B, FA, FB> {
    first: DataStream<A>,
    second: DataStream<B>,
    first_key: FA,
    second_key: FB,
}

impl<A, B, K, FA, FB> KeyedConnectedStreams<A, B, FA, FB>
where
    A: Data,
    B: Data,
    K: Key + DeserializeOwned,
    FA: Fn(&A) -> K + Clone + Send + Sync + 'static,
    FB: Fn(&B) -> K + Clone + Send + Sync + 'static,
{
    /// Runs `function` on both inputs with each key's shared state and timers.
    pub fn process<O: Data, P: KeyedCoProcessFunction<K, A, B, O>>(&self, function: P) -> DataStream<O> {
        let (first_key, second_key) = (self.first_key.clone(), self.second_key.clone());
        let key_of = move |e: &Either<A, B>| match e {
            Either::First(a) => first_key(a),
            Either::Second(b) => second_key(b),
        };
        let first = self.first.map(Either::<A, B>::First).name("ConnectFirst").follow_input();
        let second = self.second.map(Either::<A, B>::Second).name("ConnectSecond").follow_input();
        let processed = first.key_by(key_of.clone()).process(CoProcess(function)).name("KeyedCoProcess");
        processed.environment().with_graph(|g| {
            g.add_edge(Edge {
                from: second.node,
                to: processed.node,
                strategy: ShipStrategy::KeyGroups,
                factory: Arc::new(KeyedEdge::<Either<A, B>, _>::new(key_of)),
                tag: second.tag.clone(),
                repartition: None,
            })
        });
        processed
    }
}
