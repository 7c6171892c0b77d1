//! The job graph: what the DataStream API builds and the planner runs.
//!
//! Nodes and edges are type-erased factories. The typed API creates them where it knows the
//! record types, so the objects they build are monomorphised; the planner only wires them.

use std::any::Any;
use std::sync::Arc;

use eddy_core::{Error, Output, Result};

pub use crate::build_context::BuildContext;
use crate::checkpoint::committer::TxnCommitter;
use crate::observed::Observers;
use crate::partition_task::{CutTopic, TopicInput};
use crate::repartition::Repartition;
use crate::side_channel::SideChannel;
use crate::task::Task;
use crate::topic::{InputTopic, OutputTopic};

/// A `Box<dyn Output<T>>` with its `T` erased.
pub type AnyOutput = Box<dyn Any + Send>;

/// A channel end with its message type erased.
pub type AnyEnd = Box<dyn Any + Send>;

/// Erases the record type of an output.
pub fn erase<T: 'static>(output: Box<dyn Output<T>>) -> AnyOutput {
    Box::new(output)
}

/// Recovers a typed output; the planner only connects outputs of matching types.
pub fn unerase<T: 'static>(output: AnyOutput) -> Result<Box<dyn Output<T>>> {
    output
        .downcast::<Box<dyn Output<T>>>()
        .map(|o| *o)
        .map_err(|_| Error::InvalidJob(format!("internal: output is not of type {}", std::any::type_name::<T>())))
}

/// Identifies a node in a [`JobGraph`].
pub type NodeId = usize;

/// One subtask of a node, as built.
pub enum NodeInstance {
    /// A source: it drives its own thread.
    Source(Box<dyn Task>),
    /// An operator: records are pushed into this erased `Box<dyn Output<In>>`.
    Operator(AnyOutput),
}

/// Builds a node's subtasks.
pub trait NodeFactory: Send + Sync {
    /// Builds one subtask that sends to `outputs` (one erased output per consumer).
    fn build(&self, ctx: &BuildContext, outputs: Vec<AnyOutput>) -> Result<NodeInstance>;
}

/// How records cross an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShipStrategy {
    /// Forward if both sides have the same parallelism, otherwise rebalance (Flink's default).
    Default,
    /// Subtask i to subtask i; both sides must have the same parallelism.
    Forward,
    /// By key group of the record's key.
    KeyGroups,
    /// Round robin.
    Rebalance,
    /// Uniformly random.
    Shuffle,
    /// Every record to every subtask.
    Broadcast,
}

/// Builds the typed channel pieces of an edge.
pub trait EdgeFactory: Send + Sync {
    /// A bounded channel into one downstream subtask: (cloneable sender, receiver).
    fn channel(&self, capacity: usize) -> (AnyEnd, AnyEnd);
    /// The upstream tail: routes records to `senders` (one per target subtask) as
    /// `strategy` (already resolved, never `Default`) says.
    fn writer(
        &self,
        ctx: &BuildContext,
        senders: &[&AnyEnd],
        input_index: usize,
        strategy: ShipStrategy,
    ) -> Result<AnyOutput>;
    /// Wraps a consumer of a side output carrying this edge's records.
    fn side_channel(&self, consumer: AnyOutput) -> Result<Box<dyn SideChannel>>;
    /// Wraps `output` (of this edge's record type) so what passes counts into `observers`.
    fn observe(&self, output: AnyOutput, observers: Observers) -> Result<AnyOutput>;
    /// The downstream head's loop: reads `receiver` (fed by `inputs` senders), drives `head`.
    fn gate(&self, ctx: &BuildContext, receiver: AnyEnd, inputs: usize, head: AnyOutput) -> Result<Box<dyn Task>>;
    /// In a [partition task](crate::partition_task): the tail of this cut edge, writing its
    /// records to `topic` spread over its partitions as `strategy` (`KeyGroups`, `Rebalance`
    /// or `Shuffle`) says.
    fn topic_writer(&self, ctx: &BuildContext, topic: &CutTopic, strategy: ShipStrategy) -> Result<AnyOutput>;
    /// In a partition task: the head of this cut edge, decoding `topic`'s records into
    /// `consumer` (the operator `ctx` describes).
    fn topic_input(&self, ctx: &BuildContext, topic: &CutTopic, consumer: AnyOutput) -> Result<Box<dyn TopicInput>>;
    /// In a partition task: one output per input (`inputs` of them, all carrying this edge's
    /// records) of the operator `head`, which combine their watermarks, align their barriers
    /// and finish it once all have ended.
    fn merge(&self, head: AnyOutput, inputs: usize) -> Result<Vec<AnyOutput>>;
}

/// An operator (or source) in the graph.
pub struct Node {
    /// Display name, also used in errors and metrics.
    pub name: String,
    /// Stable id that savepoints match operators by.
    pub uid: Option<String>,
    /// Parallelism; `None` takes the job default.
    pub parallelism: Option<usize>,
    /// Set for sources that cannot run in parallel (an iterator, stdin).
    pub non_parallel: bool,
    /// Without an explicit parallelism, run at the parallelism of the first input, so an
    /// operator the API inserts (a pre-aggregation) chains to whatever feeds it.
    pub follows_input: bool,
    /// For a stage the API inserted on behalf of another node (a window's pre-aggregation):
    /// that node, whose name this stage takes with a suffix.
    pub stage_of: Option<NodeId>,
    /// Whether it keeps state that checkpoints must hold (then a checkpointed job needs its uid).
    pub stateful: bool,
    /// For a transactional sink: commits the transactions its checkpoints hold.
    pub committer: Option<Arc<dyn TxnCommitter>>,
    /// Builds the subtasks.
    pub factory: Arc<dyn NodeFactory>,
    /// Set on a source node that a distributed job reads from a topic instead of running it.
    pub input_topic: Option<InputTopic>,
    /// Set on a sink node that a distributed job writes to a topic instead of running it.
    pub output_topic: Option<OutputTopic>,
}

impl Node {
    /// A node named `name` built by `factory`: parallel, at the job's parallelism, without
    /// uid or state; set the other fields where they differ.
    pub fn new(name: impl Into<String>, factory: Arc<dyn NodeFactory>) -> Self {
        Node {
            name: name.into(),
            uid: None,
            parallelism: None,
            non_parallel: false,
            follows_input: false,
            stage_of: None,
            stateful: false,
            committer: None,
            factory,
            input_topic: None,
            output_topic: None,
        }
    }
}

/// A connection from one node's output to another node's input.
pub struct Edge {
    /// Producing node.
    pub from: NodeId,
    /// Consuming node.
    pub to: NodeId,
    /// How records cross.
    pub strategy: ShipStrategy,
    /// Typed channel pieces.
    pub factory: Arc<dyn EdgeFactory>,
    /// The producer's side output this edge carries (`None`: its main output).
    pub tag: Option<String>,
    /// Set where the user marked the edge as one a distributed job may cut (a repartition
    /// topic's name and the records' codec); one-process runs ignore it.
    pub repartition: Option<Repartition>,
}

/// Nodes in creation order (which is a topological order) and the edges between them.
#[derive(Default)]
pub struct JobGraph {
    /// All nodes; an edge always goes from a lower to a higher id.
    pub nodes: Vec<Node>,
    /// All edges.
    pub edges: Vec<Edge>,
}

impl JobGraph {
    /// Adds a node and returns its id.
    pub fn add_node(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Adds an edge.
    pub fn add_edge(&mut self, edge: Edge) {
        self.edges.push(edge);
    }
}
