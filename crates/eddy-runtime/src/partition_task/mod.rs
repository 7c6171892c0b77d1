//! A partition task: one sub-topology of a distributed job, run for one partition of its
//! topics, on its caller's thread.
//!
//! A distributed job ([`distributed_plan`](crate::distributed_plan)) is cut into
//! sub-topologies joined by repartition topics, and every topic of the job has the same
//! number of partitions. Task `p` of a sub-topology reads partition `p` of each topic the
//! sub-topology reads, and runs every node of it once, as subtask `p` of `partitions` — so a
//! keyed operator owns the key groups `KeyGroupRange::of_subtask(p, max_parallelism,
//! partitions)`, exactly those the writers of its repartition topic send to partition `p`.
//! Kafka Streams runs its stream tasks the same way: one task per partition of a
//! sub-topology, fed by its consumer, writing through its producer.
//!
//! ```text
//!      caller (a consumer group member)                      PartitionTask p
//!  input topic, partition p ──record()──▶ TopicReader ─▶ map ─▶ pre-aggregate ─▶ TopicWriter ─┐
//!  repartition topic, part. p ─record()─▶ TopicInput ─▶ window ─▶ sink (TopicWriterFactory) ─┤
//!                      watermark()/end() ─▶ min over the producing tasks                     │
//!                                                                         drain() ◀── Outbox ┘
//! ```
//!
//! Nothing here starts a thread or opens a channel. The caller pushes what its consumer read
//! ([`record`](PartitionTask::record), [`watermark`](PartitionTask::watermark),
//! [`end`](PartitionTask::end), [`end_of_topic`](PartitionTask::end_of_topic)) and processing
//! time ([`tick`](PartitionTask::tick)); every operator runs inside that call, as a chain runs
//! on one thread in one process; and the caller [`drain`](PartitionTask::drain)s what the
//! task produced — records for repartition and output topics, and this task's watermarks and
//! end of input for the tasks that read its repartition topics — into its producer.
//!
//! - **Sources** read topics: each source node must carry an [`InputTopic`](crate::topic::InputTopic)
//!   mark, whose reader decodes records and assigns their event time and watermarks.
//! - **Cut edges** end in a topic writer that encodes each record with the edge's
//!   [`Repartition`](crate::repartition::Repartition) codec, for the partition its key's key
//!   group belongs to (a key_by) or round robin (a rebalance); they start in a topic input
//!   that decodes them. The watermark of a cut input is the minimum over the `partitions`
//!   tasks that write the topic (each sends its own to every partition), and it ends when all
//!   of them have ended, as an input gate combines its upstream subtasks in one process.
//!   Idleness does not cross a topic yet: a producing task that stops sending watermarks
//!   holds its readers back.
//! - **Edges inside** the sub-topology are forward edges, direct calls; an operator with
//!   several inputs gets them through a merge that takes the minimum of their watermarks,
//!   aligns barriers and finishes it once all have ended.
//! - **Sinks** marked with an [`OutputTopic`](crate::topic::OutputTopic) are built by its
//!   writer factory into the task's outbox; unmarked sinks run as they do in one process.
//! - **State**: every stateful operator has a uid (as in a checkpointed job);
//!   [`snapshot`](PartitionTask::snapshot) passes a checkpoint barrier through the task and
//!   returns what its operators hold as a [`TaskState`], and a task built with that state
//!   restores it. The caller commits a snapshot with its transaction and reports it with
//!   [`committed`](PartitionTask::committed) (what transactional operators read as the newest
//!   completed checkpoint).

mod merge;
mod task_state;
mod topic_input;
mod topic_writer;

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use eddy_core::error::panic_message;
use eddy_core::{AlignmentGroups, Barrier, BarrierKind, Error, OperatorInfo, Result, Timestamp, WatermarkValve};
use eddy_state::QueryRegistry;

use crate::build_context::BuildContext;
use crate::chain_alignment::ChainAlignment;
use crate::checkpoint::coordinator::merge_parts;
use crate::checkpoint::restored::RestoredState;
use crate::checkpoint::snapshot_port::TaskSnapshots;
use crate::checkpoint::task::{CheckpointHooks, TaskCheckpointing};
use crate::checkpoint::CheckpointingMode;
use crate::config::JobConfig;
use crate::distributed_plan::DistributedPlan;
use crate::graph::{AnyOutput, JobGraph, NodeId, NodeInstance};
use crate::metrics::MetricRegistry;
use crate::topic::{Outbox, Outgoing, TopicReader, TopicRecord};

pub(crate) use merge::merge;
pub use task_state::{ProducerProgress, TaskState};
pub(crate) use topic_input::topic_input;
pub use topic_input::TopicInput;
pub(crate) use topic_writer::topic_writer;
pub use topic_writer::CutTopic;

/// Which task to build, of which job.
pub struct TaskSpec<'a> {
    /// The job.
    pub graph: &'a JobGraph,
    /// Its plan ([`DistributedPlan::of`] the same graph).
    pub plan: &'a DistributedPlan,
    /// The sub-topology the task runs (an index into `plan.sub_topologies`).
    pub sub_topology: usize,
    /// The task's partition, `0..partitions`.
    pub partition: usize,
    /// Every topic of the job has this many partitions; each sub-topology this many tasks.
    pub partitions: usize,
    /// The job's settings (`max_parallelism` is the number of key groups).
    pub config: &'a JobConfig,
    /// The state of the checkpoint the task restarts from (`None`: it starts empty).
    pub restored: Option<TaskState>,
}

/// A source node's reader of one input topic.
struct Reader {
    topic: String,
    reader: Box<dyn TopicReader>,
    ended: bool,
}

/// A cut edge this task reads: its topic, its typed input and the producing tasks' progress.
struct CutInput {
    topic: String,
    input: Box<dyn TopicInput>,
    /// One input per producing task: the cut input's watermark is their minimum.
    producers: WatermarkValve,
    /// What the producing tasks said, for snapshots.
    progress: ProducerProgress,
    ended: bool,
}

impl CutInput {
    /// Producing task `producer`'s watermark.
    fn watermark(&mut self, producer: usize, watermark: Timestamp) -> Result<()> {
        let newest = &mut self.progress.watermarks[producer];
        *newest = (*newest).max(watermark);
        let update = self.producers.watermark(producer, watermark);
        match update.watermark {
            Some(watermark) if !self.ended => self.input.watermark(watermark),
            _ => Ok(()),
        }
    }

    /// Producing task `producer`'s end; the input's once all have ended.
    fn end(&mut self, producer: usize) -> Result<()> {
        self.progress.ended[producer] = true;
        let update = self.producers.end(producer);
        if self.ended {
            return Ok(());
        }
        if let Some(watermark) = update.watermark {
            self.input.watermark(watermark)?;
        }
        if self.producers.all_ended() {
            self.ended = true;
            self.input.finish()?;
        }
        Ok(())
    }

    /// Takes up what the producing tasks had said at a checkpoint.
    fn restore(&mut self, progress: &ProducerProgress) -> Result<()> {
        let producers = progress.watermarks.iter().zip(&progress.ended).enumerate();
        for (producer, (&watermark, &ended)) in producers.take(self.progress.ended.len()) {
            self.watermark(producer, watermark)?;
            if ended {
                self.end(producer)?;
            }
        }
        Ok(())
    }
}

/// Task `partition` of `partitions` of one sub-topology (see the [module docs](self)).
pub struct PartitionTask {
    readers: Vec<Reader>,
    inputs: Vec<CutInput>,
    outbox: Outbox,
    /// Where the operators' snapshots collect while a barrier passes.
    parts: TaskSnapshots,
    /// The newest committed checkpoint, as operators read it.
    completed: Arc<AtomicU64>,
    partitions: usize,
    identity: Identity,
    /// Set when a call failed: the task's operators are in an unknown state.
    failed: bool,
    /// The task's counters (read through [`metrics`](Self::metrics)).
    metrics: MetricRegistry,
}

/// What a [`TaskState`] must match to restore a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    sub_topology: usize,
    partition: usize,
    partitions: usize,
    max_parallelism: usize,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Identity { sub_topology, partition, partitions, max_parallelism } = self;
        write!(f, "task {partition} of {partitions} of sub-topology {sub_topology} ({max_parallelism} key groups)")
    }
}

impl PartitionTask {
    /// Builds every node of the sub-topology as subtask `partition` of `partitions`, wired
    /// to each other and to the task's topics; restores `spec.restored`. Refuses a source
    /// node without an input topic, a stateful operator without a uid, and a state of
    /// another task.
    pub fn build(spec: TaskSpec<'_>) -> Result<PartitionTask> {
        let identity = identity(&spec)?;
        let restored = match &spec.restored {
            Some(state) => Some(Arc::new(restored(state, identity, &spec.plan.application_id)?)),
            None => None,
        };
        let completed = Arc::new(AtomicU64::new(spec.restored.as_ref().map_or(0, |s| s.checkpoint)));
        let parts = TaskSnapshots::default();
        // Operators reach checkpoints through these hooks; nobody listens to a task's acks.
        let (events, _) = crossbeam_channel::unbounded();
        let hooks = CheckpointHooks {
            task: TaskCheckpointing { task: 0, parts: parts.clone(), events, mode: CheckpointingMode::ExactlyOnce },
            restored,
            completed: completed.clone(),
            incremental_base: None,
            commands: RefCell::new(None),
        };
        let mut task = PartitionTask {
            readers: Vec::new(),
            inputs: Vec::new(),
            outbox: Outbox::default(),
            parts,
            completed,
            partitions: spec.partitions,
            identity,
            failed: false,
            metrics: MetricRegistry::default(),
        };
        let wiring = Wiring {
            spec: &spec,
            hooks: &hooks,
            cancel: Arc::new(AtomicBool::new(false)),
            queries: QueryRegistry::default(),
            alignment: ChainAlignment::new(AlignmentGroups::default()),
        };
        guard(|| wiring.build(&mut task))?;
        if let Some(restored) = &hooks.restored {
            restored.release();
        }
        if let Some(state) = &spec.restored {
            guard(|| task.restore_inputs(state))?;
        }
        Ok(task)
    }

    /// The topics the task reads: its sources' input topics, then the repartition topics of
    /// the cut edges it reads, each once. Its caller assigns it partition `partition` of each.
    pub fn input_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = Vec::new();
        for topic in self.readers.iter().map(|r| &r.topic).chain(self.inputs.iter().map(|i| &i.topic)) {
            if !topics.contains(topic) {
                topics.push(topic.clone());
            }
        }
        topics
    }

    /// One record of `topic`: an input topic's goes to the source node reading it (to every
    /// one, if several do); a repartition topic's is decoded into the operator consuming the
    /// cut edge. Bytes that do not decode are an error naming the topic.
    pub fn record(&mut self, topic: &str, record: &TopicRecord<'_>) -> Result<()> {
        self.run(|task| {
            let mut found = false;
            for reader in task.readers.iter_mut().filter(|r| r.topic == topic) {
                found = true;
                if reader.ended {
                    return Err(after_end(topic));
                }
                reader.reader.record(record)?;
            }
            if found {
                return Ok(());
            }
            let input = task.input(topic)?;
            if input.ended {
                return Err(after_end(topic));
            }
            input.input.record(record)
        })
    }

    /// Producing task `producer`'s watermark on the repartition topic `topic`. The cut
    /// input's watermark is the minimum over all `partitions` producing tasks; the operator
    /// sees it when that minimum advances.
    pub fn watermark(&mut self, topic: &str, producer: usize, watermark: Timestamp) -> Result<()> {
        self.run(|task| task.producer_input(topic, producer)?.watermark(producer, watermark))
    }

    /// Producing task `producer`'s end of input on the repartition topic `topic`. Once every
    /// producing task has ended, the cut input ends: the end of event time, then its operator
    /// finishes (when its other inputs have ended too).
    pub fn end(&mut self, topic: &str, producer: usize) -> Result<()> {
        self.run(|task| task.producer_input(topic, producer)?.end(producer))
    }

    /// A bounded run: this task's partition of the input topic `topic` reached the end offset
    /// it had when the run started. The sources reading it emit their final watermark and
    /// finish.
    pub fn end_of_topic(&mut self, topic: &str) -> Result<()> {
        self.run(|task| {
            let mut found = false;
            for reader in task.readers.iter_mut().filter(|r| r.topic == topic) {
                found = true;
                if !std::mem::replace(&mut reader.ended, true) {
                    reader.reader.finish()?;
                }
            }
            match found {
                true => Ok(()),
                false => Err(task.unknown(topic, "input topic")),
            }
        })
    }

    /// Processing time has advanced to `now` (ms since the epoch): processing-time timers
    /// fire, sources pass on the watermarks their strategy allows now.
    pub fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.run(|task| {
            for reader in task.readers.iter_mut().filter(|r| !r.ended) {
                reader.reader.tick(now)?;
            }
            for input in task.inputs.iter_mut().filter(|i| !i.ended) {
                input.input.tick(now)?;
            }
            Ok(())
        })
    }

    /// Checkpoint `checkpoint`: passes its barrier through the task, after every record
    /// handed in so far, and returns what the operators hold. Afterwards the outbox holds all
    /// the output of the records before the barrier: the caller drains it into the
    /// transaction that also commits this state and its input positions.
    pub fn snapshot(&mut self, checkpoint: u64) -> Result<TaskState> {
        self.run(|task| {
            let barrier = Barrier { checkpoint, kind: BarrierKind::Checkpoint };
            for reader in task.readers.iter_mut().filter(|r| !r.ended) {
                reader.reader.barrier(barrier)?;
            }
            for input in task.inputs.iter_mut().filter(|i| !i.ended) {
                input.input.barrier(barrier)?;
            }
            let (operators, _) = merge_parts(task.parts.take(), task.identity.max_parallelism);
            let Identity { sub_topology, partition, partitions, max_parallelism } = task.identity;
            let ended_topics = task.readers.iter().filter(|r| r.ended).map(|r| r.topic.clone()).collect();
            let producers = task.inputs.iter().map(|i| i.progress.clone()).collect();
            Ok(TaskState {
                checkpoint,
                sub_topology,
                partition,
                partitions,
                max_parallelism,
                operators,
                ended_topics,
                producers,
            })
        })
    }

    /// Checkpoint `checkpoint`'s transaction committed: operators that commit side effects
    /// of their own read it as the newest completed checkpoint.
    pub fn committed(&mut self, checkpoint: u64) {
        self.completed.fetch_max(checkpoint, Ordering::AcqRel);
    }

    /// What the task produced since the last call, in order.
    pub fn drain(&mut self) -> Vec<Outgoing> {
        self.outbox.take()
    }

    /// Whether every input has ended (so every node has finished).
    pub fn is_finished(&self) -> bool {
        self.readers.iter().all(|r| r.ended) && self.inputs.iter().all(|i| i.ended)
    }

    /// The task's counters (records in and out of its operators, dead letters).
    pub fn metrics(&self) -> &MetricRegistry {
        &self.metrics
    }

    /// A restored task's inputs pick up where they were at the checkpoint: the input topics
    /// that had ended end again, and each cut input hears its producers' watermarks and ends
    /// again. Operators that had finished then hold no state, so finishing again adds nothing.
    fn restore_inputs(&mut self, state: &TaskState) -> Result<()> {
        for reader in self.readers.iter_mut().filter(|r| state.ended_topics.contains(&r.topic)) {
            if !std::mem::replace(&mut reader.ended, true) {
                reader.reader.finish()?;
            }
        }
        for progress in &state.producers {
            if let Some(input) = self.inputs.iter_mut().find(|i| i.topic == progress.topic) {
                input.restore(progress)?;
            }
        }
        Ok(())
    }

    /// Runs `f` unless the task failed before; a failure (an error or a panic) fails the task.
    fn run<R>(&mut self, f: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        if self.failed {
            return Err(Error::InvalidJob(
                "the partition task failed before; build a new one from its last checkpoint".into(),
            ));
        }
        let result = guard(|| f(self));
        self.failed = result.is_err();
        result
    }

    fn input(&mut self, topic: &str) -> Result<&mut CutInput> {
        match self.inputs.iter().position(|i| i.topic == topic) {
            Some(at) => Ok(&mut self.inputs[at]),
            None => Err(self.unknown(topic, "topic")),
        }
    }

    fn producer_input(&mut self, topic: &str, producer: usize) -> Result<&mut CutInput> {
        let partitions = self.partitions;
        if producer >= partitions {
            return Err(Error::InvalidJob(format!(
                "producing task {producer} on repartition topic '{topic}': there are only {partitions} \
                 (0..{partitions})"
            )));
        }
        self.input(topic)
    }

    fn unknown(&self, topic: &str, what: &str) -> Error {
        Error::InvalidJob(format!(
            "task {} of sub-topology {} does not read {what} '{topic}'; it reads {:?}",
            self.identity.partition,
            self.identity.sub_topology,
            self.input_topics()
        ))
    }
}

fn after_end(topic: &str) -> Error {
    Error::InvalidJob(format!("a record of topic '{topic}' came after that input ended"))
}

/// `f`'s result, or its panic as an error.
fn guard<R>(f: impl FnOnce() -> Result<R>) -> Result<R> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(Error::InvalidJob(format!("internal error: {}", panic_message(&payload)))))
}

/// The task `spec` asks for, checked.
fn identity(spec: &TaskSpec<'_>) -> Result<Identity> {
    let count = spec.plan.sub_topologies.len();
    if spec.sub_topology >= count {
        return Err(Error::InvalidJob(format!(
            "sub-topology {} does not exist: the plan has {count} (0..{count})",
            spec.sub_topology
        )));
    }
    let (partition, partitions, max_parallelism) = (spec.partition, spec.partitions, spec.config.max_parallelism);
    if partitions == 0 || partition >= partitions {
        return Err(Error::InvalidJob(format!(
            "partition {partition} of {partitions}: a task's partition must be in 0..partitions"
        )));
    }
    if partitions > max_parallelism {
        return Err(Error::InvalidJob(format!(
            "{partitions} partitions is more than the job's {max_parallelism} key groups (max_parallelism): \
             a task would own none; use fewer partitions or raise set_max_parallelism"
        )));
    }
    Ok(Identity { sub_topology: spec.sub_topology, partition, partitions, max_parallelism })
}

/// The snapshot a task restores `state` from, if `state` is this task's.
fn restored(state: &TaskState, task: Identity, application_id: &str) -> Result<RestoredState> {
    let of = Identity {
        sub_topology: state.sub_topology,
        partition: state.partition,
        partitions: state.partitions,
        max_parallelism: state.max_parallelism,
    };
    if of != task {
        return Err(Error::Checkpoint(format!(
            "checkpoint {} holds the state of {of}, not of {task}: a task restores its own state \
             (regrouping key groups between tasks is not built yet)",
            state.checkpoint
        )));
    }
    Ok(state.restored(application_id))
}

/// What building the nodes of one task needs.
struct Wiring<'s> {
    spec: &'s TaskSpec<'s>,
    hooks: &'s CheckpointHooks,
    cancel: Arc<AtomicBool>,
    queries: QueryRegistry,
    alignment: ChainAlignment,
}

impl Wiring<'_> {
    fn context<'c>(&'c self, node: NodeId, metrics: &'c MetricRegistry) -> BuildContext<'c> {
        let spec = self.spec;
        BuildContext {
            info: OperatorInfo {
                name: spec.graph.nodes[node].name.clone(),
                subtask: spec.partition,
                parallelism: spec.partitions,
            },
            config: spec.config,
            metrics,
            cancel: &self.cancel,
            side_outputs: RefCell::new(Vec::new()),
            uid: spec.graph.nodes[node].uid.clone(),
            attempt: 0,
            checkpoint: Some(self.hooks),
            queries: &self.queries,
            alignment: &self.alignment,
        }
    }

    /// Builds the sub-topology's nodes, consumers first, into `task`.
    fn build(&self, task: &mut PartitionTask) -> Result<()> {
        let (graph, plan) = (self.spec.graph, self.spec.plan);
        let topology = &plan.sub_topologies[self.spec.sub_topology];
        check_nodes(graph, &topology.nodes)?;
        // Each node's inputs, as the edges into it in graph order; filled as nodes are built.
        let inputs_of = |node: NodeId| graph.edges.iter().enumerate().filter(move |(_, e)| e.to == node);
        let mut heads: Vec<Vec<Option<AnyOutput>>> = (0..graph.nodes.len()).map(|_| Vec::new()).collect();
        let take_head = |heads: &mut Vec<Vec<Option<AnyOutput>>>, edge: usize| -> Result<AnyOutput> {
            let to = graph.edges[edge].to;
            let index = inputs_of(to).position(|(e, _)| e == edge).expect("an edge into its consumer");
            heads[to].get_mut(index).and_then(Option::take).ok_or_else(|| {
                Error::InvalidJob(format!("internal: input {index} of '{}' is not built", graph.nodes[to].name))
            })
        };
        for &node in topology.nodes.iter().rev() {
            let ctx = self.context(node, &task.metrics);
            let mut outputs = Vec::new();
            for (e, edge) in graph.edges.iter().enumerate().filter(|(_, e)| e.from == node) {
                let consumer = match plan.topic_of(e) {
                    Some(_) => edge.factory.topic_writer(&ctx, &self.cut_topic(e, &task.outbox)?, edge.strategy)?,
                    None => take_head(&mut heads, e)?,
                };
                match &edge.tag {
                    None => outputs.push(consumer),
                    Some(tag) => {
                        ctx.side_outputs.borrow_mut().push((tag.clone(), edge.factory.side_channel(consumer)?))
                    }
                }
            }
            let node_ref = &graph.nodes[node];
            let mut edges_in = inputs_of(node).peekable();
            let Some(&(_, first)) = edges_in.peek() else {
                // A source: the task reads its topic (check_nodes made sure it has one).
                let topic = node_ref.input_topic.as_ref().expect("checked");
                let reader = topic.reader.build(&ctx, outputs)?;
                task.readers.push(Reader { topic: topic.topic.clone(), reader, ended: false });
                continue;
            };
            let head = match &node_ref.output_topic {
                Some(topic) => topic.writer.build(&ctx, topic.topic.as_str().into(), task.outbox.clone())?,
                None => match node_ref.factory.build(&ctx, outputs)? {
                    NodeInstance::Operator(head) => head,
                    NodeInstance::Source(_) => {
                        return Err(Error::InvalidJob(format!(
                            "internal: '{}' has inputs but was built as a source",
                            node_ref.name
                        )))
                    }
                },
            };
            let count = inputs_of(node).count();
            heads[node] = match count {
                1 => vec![Some(head)],
                _ => first.factory.merge(head, count)?.into_iter().map(Some).collect(),
            };
            for &e in topology.inputs.iter().filter(|&&e| graph.edges[e].to == node) {
                let cut = self.cut_topic(e, &task.outbox)?;
                let input = graph.edges[e].factory.topic_input(&ctx, &cut, take_head(&mut heads, e)?)?;
                let partitions = self.spec.partitions;
                let progress = ProducerProgress {
                    topic: cut.topic.to_string(),
                    watermarks: vec![Timestamp::MIN; partitions],
                    ended: vec![false; partitions],
                };
                let producers = WatermarkValve::new(partitions);
                task.inputs.push(CutInput { topic: cut.topic.to_string(), input, producers, progress, ended: false });
            }
        }
        Ok(())
    }

    /// The repartition topic of cut edge `edge`.
    fn cut_topic(&self, edge: usize, outbox: &Outbox) -> Result<CutTopic> {
        let (graph, plan) = (self.spec.graph, self.spec.plan);
        let topic =
            plan.topic_of(edge).ok_or_else(|| Error::InvalidJob(format!("internal: edge {edge} is not cut")))?;
        let repartition = graph.edges[edge].repartition.clone().ok_or_else(|| {
            Error::InvalidJob(format!(
                "repartition topic '{}' belongs to an edge without a mark: is the plan of this graph?",
                topic.name
            ))
        })?;
        Ok(CutTopic {
            topic: topic.name.as_str().into(),
            repartition,
            partitions: self.spec.partitions,
            outbox: outbox.clone(),
        })
    }
}

/// Refuses what a task cannot run: a source without an input topic (a distributed job reads
/// topics), a stateful operator without a uid (its state could not be restored).
fn check_nodes(graph: &JobGraph, nodes: &[NodeId]) -> Result<()> {
    for &node in nodes {
        let n = &graph.nodes[node];
        let is_source = !graph.edges.iter().any(|e| e.to == node);
        if is_source && n.input_topic.is_none() {
            return Err(Error::InvalidJob(format!(
                "source '{}' does not read a topic: a distributed job's tasks read their input from Kafka \
                 topics, one partition per task; use a Kafka source (or mark the source with \
                 read_from_topic), or run this job in one process",
                n.name
            )));
        }
        // A marked source or sink is replaced by its topic's reader or writer: its own state
        // (a source's splits, a sink's transactions) is the topic's offsets and transaction.
        let replaced = n.input_topic.is_some() || n.output_topic.is_some();
        if n.stateful && !replaced && n.uid.is_none() {
            return Err(Error::InvalidJob(format!(
                "operator '{}' keeps state but has no uid; a distributed task checkpoints its state and \
                 matches it to operators by uid, so give it a stable one with .uid(\"...\")",
                n.name
            )));
        }
    }
    Ok(())
}
