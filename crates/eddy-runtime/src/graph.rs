//! The job graph: what the DataStream API builds and the planner runs.
//!
//! Nodes and edges are type-erased factories. The typed API creates them where it knows the
//! record types, so the objects they build are monomorphised; the planner only wires them.

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use eddy_core::{AlignmentMember, Error, OperatorInfo, Output, Result, WatermarkAlignment};
use eddy_state::QueryRegistry;

use crate::chain_alignment::ChainAlignment;
use crate::checkpoint::committer::TxnCommitter;
use crate::checkpoint::snapshot_port::StateContext;
use crate::checkpoint::task::{CheckpointHooks, Command, TaskCheckpointing};
use crate::config::JobConfig;
use crate::metrics::{Counter, MetricRegistry};
use crate::observed::Observers;
use crate::side_channel::SideChannel;
use crate::source_task::SourceControl;

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

/// What a subtask's build step sees: who it is, job settings, metrics, the cancel flag,
/// and the consumers of its side outputs.
pub struct BuildContext<'a> {
    /// The operator's name and this subtask's index.
    pub info: OperatorInfo,
    /// Job-wide settings.
    pub config: &'a JobConfig,
    /// Where counters are registered.
    pub metrics: &'a MetricRegistry,
    /// Set when the job is cancelled or has failed.
    pub cancel: &'a Arc<AtomicBool>,
    /// Consumers of this subtask's side outputs, by tag, for the operator to take.
    pub side_outputs: RefCell<Vec<(String, Box<dyn SideChannel>)>>,
    /// The operator's uid, if it has one.
    pub uid: Option<String>,
    /// Which attempt of the job this subtask belongs to: 0 first, then one more per restart
    /// (Flink's attempt number). Whatever an operator names by attempt (a transactional
    /// sink's files, say) never collides with what a failed attempt left behind.
    pub attempt: usize,
    /// Checkpoint wiring of the chain subtask this operator runs in (`None`: no checkpoints);
    /// operators reach it through [`state`](Self::state) and, for sources,
    /// [`task_checkpointing`](Self::task_checkpointing) and [`source_commands`](Self::source_commands).
    pub(crate) checkpoint: Option<&'a CheckpointHooks>,
    /// Where keyed operators with a uid register their state for reads from outside the job.
    pub queries: &'a QueryRegistry,
    /// Watermark alignment of the chain subtask this operator runs in.
    pub(crate) alignment: &'a ChainAlignment,
}

impl BuildContext<'_> {
    /// The counter `name` of this operator's subtask.
    pub fn counter(&self, name: &str) -> Counter {
        self.metrics.counter(&self.info.name, self.info.subtask, name)
    }

    /// A stateful operator's link to checkpoints: `None` when the job takes none (the planner
    /// has made sure that every stateful operator of a checkpointed job has a uid).
    pub fn state(&self) -> Option<StateContext> {
        let (hooks, uid) = (self.checkpoint?, self.uid.clone()?);
        Some(StateContext {
            uid,
            name: self.info.name.clone(),
            subtask: self.info.subtask,
            parallelism: self.info.parallelism,
            max_parallelism: self.config.max_parallelism,
            parts: hooks.task.parts.clone(),
            restored: hooks.restored.clone(),
            completed: hooks.completed.clone(),
            incremental_base: hooks.incremental_base.clone(),
        })
    }

    /// The task side of checkpointing, for the loop that drives this chain.
    pub(crate) fn task_checkpointing(&self) -> Option<TaskCheckpointing> {
        self.checkpoint.map(|hooks| hooks.task.clone())
    }

    /// A source task's commands from the job master.
    fn source_commands(&self) -> Option<Receiver<Command>> {
        self.checkpoint.and_then(|hooks| hooks.commands.borrow_mut().take())
    }

    /// A source task's wiring to the job master in a checkpointed job (`None` without
    /// checkpointing): its commands, its acks, and where its splits are snapshotted.
    pub fn source_control(&self) -> Option<SourceControl> {
        let (commands, task) = (self.source_commands()?, self.task_checkpointing()?);
        Some(SourceControl { commands, task, state: self.state() })
    }

    /// Joins `alignment`'s group as the operator whose watermarks this chain subtask aligns
    /// on: it publishes them through the member, and the chain's source pauses while they run
    /// too far ahead ([`eddy_core::watermark_alignment`]). One operator per chain may; the job
    /// is refused if this one does not run chained to a source.
    pub fn join_alignment(&self, alignment: &WatermarkAlignment) -> Result<AlignmentMember> {
        self.alignment.join(&self.info.name, alignment)
    }

    /// For a source: the member an operator of its chain joined with, to pause on.
    pub fn take_alignment(&self) -> Option<AlignmentMember> {
        self.alignment.take()
    }

    /// Takes the consumers of every side output, with their tags.
    pub fn take_side_outputs(&self) -> Vec<(String, Box<dyn SideChannel>)> {
        std::mem::take(&mut *self.side_outputs.borrow_mut())
    }
}

/// What a running task's loop needs from the runtime.
pub struct TaskRun {
    /// Set when the job is cancelled or another subtask has failed.
    pub cancel: Arc<AtomicBool>,
    /// Set when the job is drained (`JobHandle::stop`): sources end their input as if it
    /// had run out, and the rest of the job finishes normally behind them.
    pub drain: Arc<AtomicBool>,
    /// How often processing time is advanced (`tick`) when nothing else happens.
    pub tick_interval: Duration,
}

/// A subtask's main loop, run on its own thread.
pub trait Task: Send {
    /// Runs until the input ends, the job is cancelled, or something fails.
    fn run(self: Box<Self>, run: &TaskRun) -> Result<()>;
}

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
