//! `key_by` and `KeyedStream`: records partitioned by key, so each key's state lives in one
//! subtask (chosen by the key's group, see `eddy_core::key`).

use std::marker::PhantomData;
use std::sync::Arc;

use eddy_core::{Output, Result};
use eddy_runtime::edge::KeyedEdge;
use eddy_runtime::graph::{BuildContext, ShipStrategy};
use eddy_runtime::repartition::Repartition;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::repartitioned::Repartitioned;
use crate::{Data, DataStream};

/// What can be a key: hashed stably through its serde encoding, compared with `Eq`.
pub trait Key: Serialize + DeserializeOwned + Eq + Clone + Send + Sync + 'static {}

impl<K: Serialize + DeserializeOwned + Eq + Clone + Send + Sync + 'static> Key for K {}

/// A stream partitioned by the key that `F` extracts from each record.
pub struct KeyedStream<T, K, F> {
    pub(crate) stream: DataStream<T>,
    pub(crate) key_of: F,
    /// Set by [`KeyedStream::repartitioned`].
    pub(crate) repartition: Option<Repartition>,
    _key: PhantomData<fn() -> K>,
}

impl<T, K, F: Clone> Clone for KeyedStream<T, K, F> {
    fn clone(&self) -> Self {
        let (stream, key_of, repartition) = (self.stream.clone(), self.key_of.clone(), self.repartition.clone());
        KeyedStream { stream, key_of, repartition, _key: PhantomData }
    }
}

impl<T: Data> DataStream<T> {
    /// Partitions the stream by `key_of(&record)`: all records with the same key go to the
    /// same subtask of the next operator, which keeps per-key state.
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// let env = StreamEnvironment::new();
    /// env.set_parallelism(1); // one subtask keeps the output in input order
    /// let totals = env
    ///     .from_iter(vec![('a', 1), ('b', 2), ('a', 3)])
    ///     .key_by(|e| e.0)
    ///     .sum(|e| &mut e.1)
    ///     .collect();
    /// env.execute("sums").unwrap().wait().unwrap();
    /// assert_eq!(totals.take(), vec![('a', 1), ('b', 2), ('a', 4)]);
    /// ```
    pub fn key_by<K, F>(&self, key_of: F) -> KeyedStream<T, K, F>
    where
        K: Key,
        F: Fn(&T) -> K + Clone + Send + Sync + 'static,
    {
        KeyedStream { stream: self.clone(), key_of, repartition: None, _key: PhantomData }
    }
}

impl<T, K, F> KeyedStream<T, K, F>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K + Clone + Send + Sync + 'static,
{
    /// Adds an operator fed by key groups: the building block of keyed transformations.
    pub fn transform_keyed<U, B>(&self, name: &str, build: B) -> DataStream<U>
    where
        U: Data,
        B: Fn(&BuildContext, Box<dyn Output<U>>) -> Result<Box<dyn Output<T>>> + Send + Sync + 'static,
    {
        let edge = Arc::new(KeyedEdge::<T, F>::new(self.key_of.clone()));
        // Every keyed operator keeps keyed state (windows, process functions, rolling values).
        let strategy = (ShipStrategy::KeyGroups, self.repartition.clone());
        self.stream.transform_over(name, strategy, edge, build).mark_stateful()
    }

    /// Marks this `key_by` as an edge a distributed run may cut, with the name of its
    /// repartition topic and the codec of its records (Kafka Streams'
    /// `repartition(Repartitioned.as(name))`; see [`Repartitioned`]). A run in one process
    /// ignores the mark.
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// let env = StreamEnvironment::new();
    /// env.from_collection(vec![("a", 1u64)])
    ///     .map(|(k, n)| (k.to_string(), n))
    ///     .key_by(|e| e.0.clone())
    ///     .repartitioned(Repartitioned::named("totals"))
    ///     .sum(|e| &mut e.1)
    ///     .for_each(|_| {});
    /// // The key_by is marked (its topic: shop-totals-repartition). What a distributed job
    /// // still cannot read is the collection: its sources are Kafka topics (eddy-kafka's
    /// // `from_kafka`), so the plan is refused for the source alone.
    /// let refused = env.distributed_plan("shop").unwrap_err().to_string();
    /// assert!(refused.contains("'Source: Collection' is not read from a topic"), "{refused}");
    /// ```
    pub fn repartitioned(self, how: Repartitioned<T>) -> Self {
        self.with_mark(Some(how.mark()))
    }

    /// This keyed stream with its cut marked `repartition`.
    pub(crate) fn with_mark(self, repartition: Option<Repartition>) -> Self {
        KeyedStream { repartition, ..self }
    }
}
