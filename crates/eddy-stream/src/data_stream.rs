//! `DataStream<T>`: a typed handle on a stream being built. Each transformation adds an
//! operator to the job graph; nothing runs until `StreamEnvironment::execute`.

use std::marker::PhantomData;
use std::sync::Arc;

use eddy_core::{Output, Result};
use eddy_runtime::edge::PlainEdge;
use eddy_runtime::graph::{BuildContext, Edge, EdgeFactory, Node, NodeId, ShipStrategy};
use eddy_runtime::repartition::Repartition;

use crate::environment::StreamEnvironment;
use crate::node::OperatorNode;
use crate::repartitioned::Repartitioned;
use crate::Data;

/// A stream of `T` records. Cheap to clone; using one stream twice sends every record to
/// both consumers.
pub struct DataStream<T> {
    pub(crate) env: StreamEnvironment,
    pub(crate) node: NodeId,
    pub(crate) strategy: ShipStrategy,
    /// The next edge's repartition mark (see [`DataStream::repartition`]).
    pub(crate) repartition: Option<Repartition>,
    /// A side output of `node` rather than its main output.
    pub(crate) tag: Option<String>,
    /// The stateful operator whose results this one only flattens (a window join's pairs):
    /// `uid` names that operator, which holds the state.
    pub(crate) flattens: Option<NodeId>,
    _records: PhantomData<fn() -> T>,
}

impl<T> Clone for DataStream<T> {
    fn clone(&self) -> Self {
        DataStream {
            env: self.env.clone(),
            node: self.node,
            strategy: self.strategy,
            repartition: self.repartition.clone(),
            tag: self.tag.clone(),
            flattens: self.flattens,
            _records: PhantomData,
        }
    }
}

impl<T: Data> DataStream<T> {
    pub(crate) fn new(env: StreamEnvironment, node: NodeId) -> Self {
        DataStream::tagged_or_main(env, node, None)
    }

    /// The side output `tag` of `node`.
    pub(crate) fn tagged(env: StreamEnvironment, node: NodeId, tag: String) -> Self {
        DataStream::tagged_or_main(env, node, Some(tag))
    }

    fn tagged_or_main(env: StreamEnvironment, node: NodeId, tag: Option<String>) -> Self {
        let strategy = ShipStrategy::Default;
        DataStream { env, node, strategy, repartition: None, tag, flattens: None, _records: PhantomData }
    }

    /// The environment this stream belongs to.
    pub fn environment(&self) -> &StreamEnvironment {
        &self.env
    }

    /// Adds an operator consuming this stream; `build` makes each subtask's instance from
    /// its downstream output. The building block of every transformation.
    pub fn transform<U, B>(&self, name: &str, build: B) -> DataStream<U>
    where
        U: Data,
        B: Fn(&BuildContext, Box<dyn Output<U>>) -> Result<Box<dyn Output<T>>> + Send + Sync + 'static,
    {
        let edge: Arc<dyn EdgeFactory> = Arc::new(PlainEdge::<T>::default());
        self.transform_over(name, (self.strategy, self.repartition.clone()), edge, build)
    }

    /// Adds an operator fed over an edge of `edge`'s type that ships as `strategy` (and,
    /// when the edge is marked, may be cut there).
    pub(crate) fn transform_over<U, B>(
        &self,
        name: &str,
        (strategy, repartition): (ShipStrategy, Option<Repartition>),
        edge: Arc<dyn EdgeFactory>,
        build: B,
    ) -> DataStream<U>
    where
        U: Data,
        B: Fn(&BuildContext, Box<dyn Output<U>>) -> Result<Box<dyn Output<T>>> + Send + Sync + 'static,
    {
        let node = self.env.with_graph(|g| {
            let node = g.add_node(Node::new(name, Arc::new(OperatorNode::<T, U, B>::new(build))));
            g.add_edge(Edge { from: self.node, to: node, strategy, factory: edge, tag: self.tag.clone(), repartition });
            node
        });
        DataStream::new(self.env.clone(), node)
    }

    /// Adds an operator that runs at this stream's parallelism, chained to it: a stage the
    /// API inserts on the user's behalf (such as a window's pre-aggregation).
    pub(crate) fn pre_stage<U, B>(&self, name: &str, build: B) -> DataStream<U>
    where
        U: Data,
        B: Fn(&BuildContext, Box<dyn Output<U>>) -> Result<Box<dyn Output<T>>> + Send + Sync + 'static,
    {
        let edge: Arc<dyn EdgeFactory> = Arc::new(PlainEdge::<T>::default());
        self.transform_over(name, (ShipStrategy::Default, None), edge, build).follow_input()
    }

    /// Without an explicit parallelism, this operator runs at its input's (and so chains).
    pub(crate) fn follow_input(self) -> Self {
        self.update_node(|n| n.follows_input = true)
    }

    fn with_strategy(&self, strategy: ShipStrategy) -> Self {
        DataStream { strategy, ..self.clone() }
    }

    /// The next operator receives records round robin over its subtasks.
    pub fn rebalance(&self) -> Self {
        self.with_strategy(ShipStrategy::Rebalance)
    }

    /// The next operator receives records round robin over its subtasks, as
    /// [`rebalance`](Self::rebalance) (or at random after [`shuffle`](Self::shuffle)), over
    /// an edge marked as one a distributed run may cut: its repartition topic's name and
    /// its records' codec (Kafka Streams' `repartition(Repartitioned.as(name))`; see
    /// [`Repartitioned`]). A run in one process ignores the mark.
    pub fn repartition(&self, how: Repartitioned<T>) -> Self {
        let strategy = match self.strategy {
            ShipStrategy::Shuffle => ShipStrategy::Shuffle,
            _ => ShipStrategy::Rebalance,
        };
        DataStream { strategy, repartition: Some(how.mark()), ..self.clone() }
    }

    /// The next operator receives each record at a uniformly random subtask.
    pub fn shuffle(&self) -> Self {
        self.with_strategy(ShipStrategy::Shuffle)
    }

    /// Every subtask of the next operator receives every record.
    pub fn broadcast(&self) -> Self {
        self.with_strategy(ShipStrategy::Broadcast)
    }

    /// Subtask i of the next operator receives what subtask i produced (same parallelism).
    pub fn forward(&self) -> Self {
        self.with_strategy(ShipStrategy::Forward)
    }

    /// Marks this operator as keeping state that checkpoints must hold.
    pub(crate) fn mark_stateful(self) -> Self {
        self.update_node(|n| n.stateful = true)
    }

    /// Marks this operator as a transactional sink committed by `committer`.
    pub(crate) fn mark_transactional(self, committer: Arc<dyn eddy_runtime::checkpoint::TxnCommitter>) -> Self {
        self.update_node(|n| {
            n.stateful = true;
            n.committer = Some(committer);
        })
    }

    pub(crate) fn update_node(self, f: impl FnOnce(&mut Node)) -> Self {
        self.env.with_graph(|g| f(&mut g.nodes[self.node]));
        self
    }

    /// Sets this operator's parallelism (its number of subtasks).
    pub fn set_parallelism(self, parallelism: usize) -> Self {
        self.update_node(|n| n.parallelism = Some(parallelism))
    }

    /// Sets this operator's display name (used in thread names, metrics and errors). A stage
    /// eddy added for it (a window's pre-aggregation) is renamed `<name> (pre-aggregate)`.
    pub fn name(self, name: &str) -> Self {
        let node = self.node;
        self.env.with_graph(|g| {
            for stage in g.nodes.iter_mut().filter(|n| n.stage_of == Some(node)) {
                stage.name = format!("{name} (pre-aggregate)");
            }
        });
        self.update_node(|n| n.name = name.to_string())
    }

    /// Marks this source as one a distributed job reads from a topic (`docs/scale-out.md`);
    /// one-process runs ignore it. For connectors: eddy-kafka's source sets it.
    pub fn read_from_topic(self, topic: eddy_runtime::topic::InputTopic) -> Self {
        self.update_node(|n| n.input_topic = Some(topic))
    }

    /// Marks this operator as a stage of `owner`, named after it.
    pub(crate) fn stage_of<U>(self, owner: &DataStream<U>) -> Self {
        let owner_name = self.env.with_graph(|g| g.nodes[owner.node].name.clone());
        self.update_node(|n| {
            n.stage_of = Some(owner.node);
            n.name = format!("{owner_name} (pre-aggregate)");
        })
    }

    /// Sets this operator's stable id, by which savepoints find its state (for a window
    /// join, the id of the window that holds its state).
    pub fn uid(self, uid: &str) -> Self {
        if let Some(owner) = self.flattens {
            self.env.with_graph(|g| g.nodes[owner].uid = Some(uid.to_string()));
            return self;
        }
        self.update_node(|n| n.uid = Some(uid.to_string()))
    }

    /// Marks this operator as only flattening the results of `owner`, so `uid` names `owner`.
    pub(crate) fn flattening<U>(self, owner: &DataStream<U>) -> Self {
        DataStream { flattens: Some(owner.node), ..self }
    }

    /// Merges streams of the same type into one; watermarks are the minimum over the inputs.
    pub fn union(&self, others: &[DataStream<T>]) -> DataStream<T> {
        let identity = self.transform("Union", |_, out| Ok(Box::new(crate::ops::union::Identity { out })));
        if others.iter().any(|o| !self.env.same_as(&o.env)) {
            let name = self.env.with_graph(|g| g.nodes[self.node].name.clone());
            self.env.report_misuse(format!(
                "union of '{name}' with a stream of another StreamEnvironment; build both in one environment"
            ));
        }
        self.env.with_graph(|g| {
            for other in others.iter().filter(|o| self.env.same_as(&o.env)) {
                let edge = Edge {
                    from: other.node,
                    to: identity.node,
                    strategy: other.strategy,
                    factory: Arc::new(PlainEdge::<T>::default()),
                    tag: other.tag.clone(),
                    repartition: other.repartition.clone(),
                };
                g.add_edge(edge);
            }
        });
        identity
    }
}
