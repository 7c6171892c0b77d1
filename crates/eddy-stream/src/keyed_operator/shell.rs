//! What a handler works with: the subtask's keyed state, its outputs, and time.

use eddy_core::time::MIN_WATERMARK;
use eddy_core::{Barrier, BarrierKind, Error, OperatorInfo, Output, Record, Result, Timestamp};
use eddy_runtime::checkpoint::{StateContext, SubtaskList};
use eddy_runtime::graph::BuildContext;
use eddy_state::{AnyBackend, KeyedEntries, KeyedStateStore, StateError};

use super::checkpointing;
use super::working_state::{self, WorkingState};
use crate::queryable_state::queryable;
use crate::side_output::WithSide;

/// Results are sent on in pieces of this many while a window fires, so firing a window
/// larger than memory never holds all its results.
const FLUSH_AT: usize = 1024;

/// The keyed operator's shared parts, handed to its handler.
pub(crate) struct Shell<O> {
    /// This subtask's keyed state: its key groups, on the heap or in sled.
    pub(crate) store: KeyedStateStore<AnyBackend>,
    /// Where results go (a field of its own, so results can be emitted while a state of
    /// the store is being visited).
    pub(crate) output: Emitter<O>,
    /// The operator's event-time watermark.
    pub(crate) watermark: Timestamp,
    /// Processing time: when the current batch (or tick) began.
    pub(crate) now: Timestamp,
    /// The operator and subtask, for errors.
    pub(crate) info: OperatorInfo,
    /// The link to checkpoints (`None`: the job takes none).
    checkpoints: Option<StateContext>,
    /// Whether the store tracks what changes, for incremental checkpoints.
    tracks_changes: bool,
    /// The sled directory, removed when the subtask ends (declared after `store`, which
    /// closes the database first).
    _working_state: Option<WorkingState>,
}

impl<O: Send> Shell<O> {
    /// Opens the subtask's keyed state and outputs.
    pub(crate) fn open(ctx: &BuildContext, out: Box<dyn Output<O>>) -> Result<Self> {
        let (store, working_state) = working_state::open(ctx)?;
        let checkpoints = ctx.state();
        // Incremental checkpoints: the heap backend notes what changes (sled does not).
        let tracks_changes = match &checkpoints {
            Some(checkpoints) if checkpoints.tracks_changes() => {
                store.track_changes().map_err(|e| ctx.info.error(format!("keyed state: {e}")))?
            }
            _ => false,
        };
        Ok(Shell {
            store: queryable(ctx, store),
            output: Emitter { out: WithSide::new(ctx, out), buffer: Vec::new() },
            watermark: MIN_WATERMARK,
            now: eddy_core::time::now_ms(),
            info: ctx.info.clone(),
            checkpoints,
            tracks_changes,
            _working_state: working_state,
        })
    }

    /// Restores the key groups this subtask owns from the snapshot the job starts from, if
    /// any; returns the entries of `legacy` states, for the handler to convert.
    pub(crate) fn restore(&self, legacy: &[&str]) -> Result<Vec<KeyedEntries>> {
        let Some(checkpoints) = &self.checkpoints else { return Ok(Vec::new()) };
        checkpointing::restore(&self.store, checkpoints, legacy).map_err(|e| self.checkpoint_error(e))
    }

    /// Puts every key group's state and timers, and `lists`, into the checkpoint of
    /// `barrier`; with incremental checkpoints, only what changed since the checkpoint it
    /// builds on, where the store can tell.
    pub(crate) fn snapshot(&self, lists: Vec<SubtaskList>, barrier: Barrier) -> Result<()> {
        let Some(checkpoints) = &self.checkpoints else { return Ok(()) };
        if barrier.kind == BarrierKind::Checkpoint && self.tracks_changes {
            let changes = self.store.snapshot_changes(barrier.checkpoint, checkpoints.incremental_base());
            if let Some(changes) = changes.map_err(|e| self.state_error(e))? {
                let (keyed, changes) = checkpointing::changes(changes).map_err(|e| self.checkpoint_error(e))?;
                checkpoints.snapshot_changes(keyed, changes, lists);
                return Ok(());
            }
        }
        let keyed = checkpointing::snapshot(&self.store).map_err(|e| self.checkpoint_error(e))?;
        checkpoints.snapshot(keyed, lists);
        Ok(())
    }

    /// Sends what was emitted (and the side outputs' records) on, then answers the reads of
    /// queryable state waiting: between batches and on ticks, never while a handler works,
    /// so a read sees each key as some batch left it.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.store.serve_queries();
        self.output.flush()
    }

    /// A keyed-state failure as this operator's error.
    pub(crate) fn state_error(&self, error: StateError) -> Error {
        self.info.error(format!("keyed state: {error}"))
    }

    /// The outcome of a visit of a state's namespace as this operator's result.
    pub(crate) fn visited(&self, result: std::result::Result<(), VisitError>) -> Result<()> {
        match result {
            Ok(()) => Ok(()),
            Err(VisitError::State(e)) => Err(self.state_error(e)),
            Err(VisitError::Operator(e)) => Err(e),
        }
    }

    /// A restore or snapshot failure as this operator's error (a checkpoint error keeps its
    /// kind, so a damaged snapshot is told apart from a failing operator).
    fn checkpoint_error(&self, error: Error) -> Error {
        match error {
            Error::Checkpoint(message) => Error::Checkpoint(format!("operator '{}': {message}", self.info.name)),
            other => other,
        }
    }
}

/// A keyed operator's outputs and what it emitted since they were last sent to.
pub(crate) struct Emitter<O> {
    /// Main and side outputs.
    pub(crate) out: WithSide<O>,
    /// What the handler emitted since the last flush.
    pub(crate) buffer: Vec<Record<O>>,
}

impl<O: Send> Emitter<O> {
    /// Emits `value` at `timestamp`.
    #[inline]
    pub(crate) fn emit(&mut self, value: O, timestamp: Timestamp) {
        self.buffer.push(Record::new(value, timestamp));
    }

    /// Sends what was emitted (and the side outputs' records) on.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.out.records(&mut self.buffer)
    }

    /// Sends what was emitted on once there is a batch of it.
    pub(crate) fn flush_if_full(&mut self) -> Result<()> {
        if self.buffer.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }
}

/// What can stop a visit of a namespace: the store, or the handler's work on a value.
pub(crate) enum VisitError {
    /// The store failed.
    State(StateError),
    /// The handler failed (its output, say).
    Operator(Error),
}

impl From<StateError> for VisitError {
    fn from(error: StateError) -> Self {
        VisitError::State(error)
    }
}

impl From<Error> for VisitError {
    fn from(error: Error) -> Self {
        VisitError::Operator(error)
    }
}
