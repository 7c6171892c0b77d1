//! What an operator's factory sees when the runtime builds one of its subtasks: who it is,
//! the job's settings, its counters, the cancel flag, its side outputs' consumers, and its
//! links to checkpoints, queryable state and watermark alignment.

use std::cell::RefCell;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crossbeam_channel::Receiver;
use eddy_core::{AlignmentGroups, AlignmentMember, OperatorInfo, Result, WatermarkAlignment};
use eddy_state::QueryRegistry;

use crate::chain_alignment::ChainAlignment;
use crate::checkpoint::snapshot_port::StateContext;
use crate::checkpoint::task::{CheckpointHooks, Command, TaskCheckpointing};
use crate::config::JobConfig;
use crate::counter::Counter;
use crate::metrics::MetricRegistry;
use crate::side_channel::SideChannel;
use crate::source_task::SourceControl;

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

/// What a [`BuildContext`] borrows, owned, to build a node's pieces outside a job run: a
/// connector's tests of the readers and writers of its topic marks ([`crate::topic`]), which
/// a distributed task builds. Its contexts have no checkpoints and no watermark alignment.
pub struct DetachedBuild {
    config: JobConfig,
    metrics: MetricRegistry,
    cancel: Arc<AtomicBool>,
    queries: QueryRegistry,
    alignment: ChainAlignment,
}

impl DetachedBuild {
    /// Contexts of a job with settings `config`.
    pub fn new(config: JobConfig) -> Self {
        DetachedBuild {
            config,
            metrics: MetricRegistry::default(),
            cancel: Arc::default(),
            queries: QueryRegistry::default(),
            alignment: ChainAlignment::new(AlignmentGroups::default()),
        }
    }

    /// The context of subtask `info` (its side outputs' consumers go into
    /// [`BuildContext::side_outputs`]).
    pub fn context(&self, info: OperatorInfo) -> BuildContext<'_> {
        BuildContext {
            info,
            config: &self.config,
            metrics: &self.metrics,
            cancel: &self.cancel,
            side_outputs: RefCell::new(Vec::new()),
            uid: None,
            attempt: 0,
            checkpoint: None,
            queries: &self.queries,
            alignment: &self.alignment,
        }
    }
}
