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
//! The caller's loop, in outline (`crates/eddy-stream/tests/partition_task.rs` runs it over
//! in-memory topics):
//!
//! ```text
//! task = PartitionTask::build(TaskSpec { .., restored: the TaskState of the last commit })
//! consumer: partition p of task.input_topics(), from the offsets of the last commit
//! loop:
//!     a record of topic t        -> task.record(t, record)
//!     producer q's watermark     -> task.watermark(t, q, watermark)     (repartition topics)
//!     producer q's end           -> task.end(t, q)
//!     a bounded input's end      -> task.end_of_topic(t)
//!     now and then               -> task.tick(now)
//!     producer.send(task.drain())                     (in the open transaction)
//!     every commit interval, and once the task is_finished():
//!         state = task.snapshot(next checkpoint id); producer.send(task.drain())
//!         commit offsets + state.to_bytes() + what was sent, in one transaction
//!         task.committed(that id)
//! ```
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
//!   writer factory into the task's outbox; unmarked sinks run as they do in one process, and
//!   the transactions an unmarked transactional sink (`collect()`, an exactly-once file sink)
//!   pre-commits for a checkpoint are committed once the caller reports it
//!   [`committed`](PartitionTask::committed), and again when a task restores it.
//! - **The end** of an input (a bounded input topic's, or every producer's on a repartition
//!   topic) finishes the operators it feeds and then passes them the final barrier, as a
//!   chain does in one process: what they still hold (a transactional sink's last
//!   transaction) goes into the task's next snapshot, which the caller takes and commits
//!   once the task [`is_finished`](PartitionTask::is_finished). A source's
//!   [`TopicReader`](crate::topic::TopicReader) passes that barrier on like any other.
//! - **State**: every stateful operator has a uid (as in a checkpointed job);
//!   [`snapshot`](PartitionTask::snapshot) passes a checkpoint barrier through the task and
//!   returns what its operators hold as a [`TaskState`], and a task built with that state
//!   restores it. The caller commits a snapshot with its transaction and reports it with
//!   [`committed`](PartitionTask::committed) (what transactional operators read as the newest
//!   completed checkpoint).

mod inputs;
mod merge;
mod task_state;
mod topic_input;
mod topic_writer;
mod transactions;
mod wiring;

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use eddy_core::error::panic_message;
use eddy_core::{AlignmentGroups, Barrier, BarrierKind, Error, Result, Timestamp};
use eddy_state::QueryRegistry;

use crate::chain_alignment::ChainAlignment;
use crate::checkpoint::coordinator::merge_parts;
use crate::checkpoint::restored::RestoredState;
use crate::checkpoint::snapshot_port::TaskSnapshots;
use crate::checkpoint::task::{CheckpointHooks, TaskCheckpointing};
use crate::checkpoint::CheckpointingMode;
use crate::config::JobConfig;
use crate::distributed_plan::DistributedPlan;
use crate::graph::JobGraph;
use crate::metrics::MetricRegistry;
use crate::partition_task::inputs::{CutInput, Reader};
use crate::partition_task::transactions::Transactions;
use crate::partition_task::wiring::Wiring;
use crate::topic::{Outbox, Outgoing, TopicRecord};

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

/// Task `partition` of `partitions` of one sub-topology (see the [module docs](self)).
pub struct PartitionTask {
    readers: Vec<Reader>,
    inputs: Vec<CutInput>,
    outbox: Outbox,
    /// Where the operators' snapshots collect while a barrier passes.
    parts: TaskSnapshots,
    /// The newest committed checkpoint, as operators read it.
    completed: Arc<AtomicU64>,
    /// The newest checkpoint taken or restored.
    last_checkpoint: u64,
    partitions: usize,
    identity: Identity,
    /// The transactional sinks it runs as they are, and their transactions to commit.
    transactions: Transactions,
    /// Why a call failed: the task's operators are then in an unknown state.
    failure: Option<Error>,
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
        let topology = &spec.plan.sub_topologies[spec.sub_topology];
        let transactions = Transactions::of(spec.graph, &topology.nodes);
        let restored = match &spec.restored {
            Some(state) => {
                let restored = restored(&spec, state, identity)?;
                transactions.restore(state.checkpoint, &state.operators)?;
                Some(Arc::new(restored))
            }
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
        let (outbox, metrics) = (Outbox::default(), MetricRegistry::default());
        let wiring = Wiring {
            spec: &spec,
            hooks: &hooks,
            cancel: Arc::new(AtomicBool::new(false)),
            queries: QueryRegistry::default(),
            alignment: ChainAlignment::new(AlignmentGroups::default()),
            metrics: &metrics,
            outbox: &outbox,
            attempt: next_attempt(),
        };
        let built = guard(|| wiring.build());
        if let Some(restored) = &hooks.restored {
            restored.release();
        }
        let built = built?;
        let mut task = PartitionTask {
            readers: built.readers,
            inputs: built.inputs,
            outbox,
            parts,
            completed,
            last_checkpoint: spec.restored.as_ref().map_or(0, |s| s.checkpoint),
            partitions: spec.partitions,
            identity,
            transactions,
            failure: None,
            metrics,
        };
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
                reader.end()?;
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
    ///
    /// Checkpoint ids increase over the life of the task's state, across restores (a
    /// transactional sink keeps what no newer completed checkpoint covers): an id not above
    /// the last one taken or restored is refused.
    pub fn snapshot(&mut self, checkpoint: u64) -> Result<TaskState> {
        if checkpoint <= self.last_checkpoint {
            return Err(Error::Checkpoint(format!(
                "checkpoint {checkpoint} of {} comes after checkpoint {}: ids must increase, across \
                 restores too",
                self.identity, self.last_checkpoint
            )));
        }
        self.last_checkpoint = checkpoint;
        self.run(|task| {
            let barrier = Barrier { checkpoint, kind: BarrierKind::Checkpoint };
            for reader in task.readers.iter_mut().filter(|r| !r.ended) {
                reader.reader.barrier(barrier)?;
            }
            for input in task.inputs.iter_mut().filter(|i| !i.ended) {
                input.input.barrier(barrier)?;
            }
            let (operators, _) = merge_parts(task.parts.take(), task.identity.max_parallelism);
            task.transactions.snapshot(checkpoint, &operators);
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
        if let Err(error) = self.transactions.committed(checkpoint) {
            self.failure.get_or_insert(error);
        }
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
            reader.end()?;
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
        if let Some(failure) = &self.failure {
            return Err(Error::InvalidJob(format!(
                "the partition task failed before ({failure}); build a new one from its last checkpoint"
            )));
        }
        let result = guard(|| f(self));
        if let Err(error) = &result {
            self.failure = Some(error.clone());
        }
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

/// The attempt number of the next task this process builds: one more each time, so what a
/// task's operators name by attempt (a file sink's part files) never collides with what an
/// earlier task of this process left behind — the task it replaces after a failure.
fn next_attempt() -> usize {
    static BUILT: AtomicUsize = AtomicUsize::new(0);
    BUILT.fetch_add(1, Ordering::Relaxed)
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

/// The snapshot a task restores `state` from, if `state` is this task's and every operator
/// it holds state of is in the task (or the job allows dropping what is not, as a
/// one-process restore does).
fn restored(spec: &TaskSpec<'_>, state: &TaskState, task: Identity) -> Result<RestoredState> {
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
    let nodes = &spec.plan.sub_topologies[spec.sub_topology].nodes;
    let claimed = |uid: &str| nodes.iter().any(|&n| spec.graph.nodes[n].uid.as_deref() == Some(uid));
    let unclaimed: Vec<&str> = state.operators.iter().map(|o| o.uid.as_str()).filter(|u| !claimed(u)).collect();
    if !unclaimed.is_empty() && !spec.config.allow_non_restored_state {
        return Err(Error::Checkpoint(format!(
            "checkpoint {} of {task} holds state of operators no operator of its sub-topology claims \
             (uids: {}); give the operators those uids, or call allow_non_restored_state() to drop that state",
            state.checkpoint,
            unclaimed.join(", ")
        )));
    }
    Ok(state.restored(&spec.plan.application_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_and_its_state_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<PartitionTask>();
        send::<TaskState>();
    }
}
