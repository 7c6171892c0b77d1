//! What a task thread and the job master tell each other about checkpoints.

use std::cell::RefCell;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use eddy_core::{Barrier, Result};

use crate::checkpoint::config::CheckpointingMode;
use crate::checkpoint::restored::RestoredState;
use crate::checkpoint::snapshot_port::{SubtaskSnapshot, TaskSnapshots};

/// A task's message to the job master.
pub(crate) enum Event {
    /// The task handled checkpoint `checkpoint`'s barrier; its operators' snapshots.
    Ack {
        /// The checkpoint.
        checkpoint: u64,
        /// Which task.
        task: usize,
        /// What its operators snapshotted.
        parts: Vec<SubtaskSnapshot>,
        /// How long it aligned its inputs' barriers (0 with one input).
        alignment_ms: u64,
    },
    /// A source task's input is exhausted; it keeps answering barriers until told to finish.
    SourceDone,
    /// The task's input ended and its operators finished: their final state.
    Finished {
        /// What its operators hold at the end (a sink's last transaction).
        parts: Vec<SubtaskSnapshot>,
    },
    /// The task's thread is about to end with this result.
    Ended {
        /// How it ended.
        result: Result<()>,
    },
}

/// The job master's command to a source task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Record the position and emit this barrier.
    Barrier(Barrier),
    /// A stop-with-savepoint failed: go on reading.
    Resume,
    /// Every source is done: end the stream.
    Finish,
}

/// One task's part in checkpointing: where its operators' snapshots collect and where acks
/// go. A source task gets it from [`BuildContext::task_checkpointing`](crate::graph::BuildContext::task_checkpointing).
#[derive(Clone)]
pub struct TaskCheckpointing {
    /// The task's index in its attempt.
    pub(crate) task: usize,
    /// Filled by the task's operators while a barrier passes through the chain.
    pub(crate) parts: TaskSnapshots,
    /// To the job master.
    pub(crate) events: Sender<Event>,
    /// Barrier alignment.
    pub(crate) mode: CheckpointingMode,
}

impl TaskCheckpointing {
    /// Reports that the barrier passed through the chain, with what the operators snapshotted
    /// and how long the task spent aligning barriers (from the first to the last input's).
    pub fn ack(&self, barrier: Barrier, alignment: Duration) {
        let parts = self.parts.take();
        let alignment_ms = alignment.as_millis() as u64;
        // A closed channel means the master is gone; the task will be cancelled anyway.
        let _ = self.events.send(Event::Ack { checkpoint: barrier.checkpoint, task: self.task, parts, alignment_ms });
    }

    /// Reports that a source's input is exhausted.
    pub fn source_done(&self) {
        let _ = self.events.send(Event::SourceDone);
    }

    /// Reports the final state after the chain finished.
    pub fn finished(&self) {
        let _ = self.events.send(Event::Finished { parts: self.parts.take() });
    }
}

/// Checkpoint wiring of one chain subtask, handed to its operators while they are built.
pub(crate) struct CheckpointHooks {
    /// The task's side.
    pub(crate) task: TaskCheckpointing,
    /// The snapshot this attempt restores from.
    pub(crate) restored: Option<Arc<RestoredState>>,
    /// The newest completed checkpoint id.
    pub(crate) completed: Arc<AtomicU64>,
    /// With incremental checkpoints, the id of the checkpoint the next one builds on.
    pub(crate) incremental_base: Option<Arc<AtomicU64>>,
    /// A source task's commands, taken by the source when it is built.
    pub(crate) commands: RefCell<Option<Receiver<Command>>>,
}
