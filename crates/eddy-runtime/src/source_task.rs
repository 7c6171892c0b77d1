//! The loop of a source subtask: poll the source, push batches down the chain, keep time
//! moving, and start checkpoints when the job master says so.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use eddy_core::time::{now_ms, MAX_WATERMARK, NO_TIMESTAMP};
use eddy_core::{Barrier, BarrierKind, Error, OperatorInfo, Output, Record, Result, Source, SourcePoll};
use eddy_state::Redistribution;

use crate::checkpoint::snapshot_port::{StateContext, SubtaskList};
use crate::checkpoint::task::{Command, TaskCheckpointing};
use crate::graph::{Task, TaskRun};
use crate::metrics::Counter;

/// The operator-state list that holds a source's splits.
pub const SPLITS: &str = "splits";

/// A checkpointed source's wiring: commands in, snapshots and acks out.
pub struct SourceControl {
    /// Barriers and other commands from the job master.
    pub commands: Receiver<Command>,
    /// Where acks go.
    pub task: TaskCheckpointing,
    /// Where the source's splits are snapshotted (`None` without a uid: the planner refused
    /// such a job, so this is only `None` for sources that hold no position).
    pub state: Option<StateContext>,
}

/// Runs a [`Source`] and pushes what it produces into its chain.
pub struct SourceTask<T, S> {
    source: S,
    output: Box<dyn Output<T>>,
    info: OperatorInfo,
    batch_size: usize,
    records_in: Counter,
    control: Option<SourceControl>,
    /// Whether the end of event time was already sent (by a draining stop).
    drained: bool,
}

/// What the master asked a source to do next.
enum Next {
    Poll,
    Finish,
}

impl<T, S> SourceTask<T, S> {
    /// A source subtask named by `info`, polling up to `batch_size` values at a time.
    pub fn new(
        source: S,
        output: Box<dyn Output<T>>,
        info: OperatorInfo,
        batch_size: usize,
        records_in: Counter,
    ) -> Self {
        SourceTask { source, output, info, batch_size, records_in, control: None, drained: false }
    }
}

impl<T: Send, S: Source<T>> SourceTask<T, S> {
    /// Takes part in checkpoints; refused for a source that cannot rewind.
    pub fn with_control(mut self, control: Option<SourceControl>) -> Result<Self> {
        if control.as_ref().is_some_and(|c| c.state.is_some()) && self.splits()?.is_none() {
            return Err(not_replayable(&self.info));
        }
        self.control = control;
        Ok(self)
    }

    fn splits(&mut self) -> Result<Option<Vec<Vec<u8>>>> {
        let info = &self.info;
        let source = &mut self.source;
        info.guard(|| source.snapshot())?.map_err(|e| info.error(format!("cannot snapshot its position: {e}")))
    }

    /// Puts the source's position into the checkpoint being taken.
    fn snapshot_splits(&mut self) -> Result<()> {
        let splits = self.splits()?;
        let Some(state) = self.control.as_ref().and_then(|c| c.state.as_ref()) else { return Ok(()) };
        let items = splits.ok_or_else(|| not_replayable(&self.info))?;
        state.snapshot(
            Vec::new(),
            vec![SubtaskList { name: SPLITS.into(), redistribution: Redistribution::Split, items }],
        );
        Ok(())
    }

    fn emit_end_of_time(&mut self) -> Result<()> {
        if !self.drained {
            self.drained = true;
            self.output.watermark(MAX_WATERMARK)?;
        }
        Ok(())
    }

    /// Records the position, passes the barrier down the chain, and acks.
    fn checkpoint(&mut self, barrier: Barrier) -> Result<()> {
        if barrier.kind == (BarrierKind::Stop { drain: true }) {
            self.emit_end_of_time()?;
        }
        self.snapshot_splits()?;
        self.output.barrier(barrier)?;
        if let Some(control) = &self.control {
            control.task.ack(barrier);
        }
        Ok(())
    }

    /// Handles commands that are waiting; after a stop barrier, waits for the outcome.
    fn commands(&mut self, run: &TaskRun, wait: bool) -> Result<Next> {
        loop {
            let Some(control) = &self.control else { return Ok(Next::Poll) };
            let command = if wait {
                match control.commands.recv_timeout(run.tick_interval) {
                    Ok(command) => command,
                    Err(RecvTimeoutError::Timeout) => return Ok(Next::Poll),
                    Err(RecvTimeoutError::Disconnected) => return Err(Error::Cancelled),
                }
            } else {
                match control.commands.try_recv() {
                    Ok(command) => command,
                    Err(TryRecvError::Empty) => return Ok(Next::Poll),
                    Err(TryRecvError::Disconnected) => return Err(Error::Cancelled),
                }
            };
            match command {
                Command::Barrier(barrier) => {
                    self.checkpoint(barrier)?;
                    if matches!(barrier.kind, BarrierKind::Stop { .. }) {
                        return self.await_stop(run);
                    }
                }
                Command::Resume => {}
                Command::Finish => return Ok(Next::Finish),
            }
        }
    }

    /// After a stop barrier: read nothing more until the savepoint's outcome is known. The
    /// master cancels the job when it completed, or says `Resume` when it failed.
    fn await_stop(&mut self, run: &TaskRun) -> Result<Next> {
        let Some(control) = &self.control else { return Ok(Next::Poll) };
        loop {
            if run.cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            match control.commands.recv_timeout(run.tick_interval) {
                Ok(Command::Resume) => return Ok(Next::Poll),
                Ok(Command::Finish) => return Ok(Next::Finish),
                Ok(Command::Barrier(_)) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(Error::Cancelled),
            }
        }
    }

    /// The input is exhausted but other sources still run: answer barriers with the final
    /// position until the master says every source is done.
    fn await_finish(&mut self, run: &TaskRun) -> Result<()> {
        let Some(control) = &self.control else { return Ok(()) };
        control.task.source_done();
        loop {
            if run.cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            if let Next::Finish = self.commands(run, true)? {
                return Ok(());
            }
            self.output.tick(now_ms())?;
        }
    }
}

fn not_replayable(info: &OperatorInfo) -> Error {
    info.error(
        "this source cannot rewind, so a checkpoint cannot record its position; use a replayable \
         source (from_collection, generate, read_text_file, or a Source whose snapshot returns splits) \
         or turn checkpointing off",
    )
}

impl<T: Send, S: Source<T>> Task for SourceTask<T, S> {
    fn run(mut self: Box<Self>, run: &TaskRun) -> Result<()> {
        let mut values = Vec::with_capacity(self.batch_size);
        let mut batch = Vec::with_capacity(self.batch_size);
        let mut last_tick = Instant::now();
        loop {
            if run.cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            if let Next::Finish = self.commands(run, false)? {
                break;
            }
            let info = &self.info;
            let source = &mut self.source;
            let max = self.batch_size;
            let poll = info.guard(|| source.poll_next(&mut values, max))?.map_err(|e| info.error(e.to_string()))?;
            if !values.is_empty() {
                self.records_in.add(values.len() as u64);
                batch.extend(values.drain(..).map(|v| Record::new(v, NO_TIMESTAMP)));
                self.output.records(&mut batch)?;
            }
            if poll == SourcePoll::Done {
                self.emit_end_of_time()?;
                self.await_finish(run)?;
                break;
            }
            if poll == SourcePoll::Pending || last_tick.elapsed() >= run.tick_interval {
                self.output.tick(now_ms())?;
                last_tick = Instant::now();
            }
        }
        self.emit_end_of_time()?;
        self.output.finish()?;
        if self.control.is_some() {
            self.snapshot_splits()?;
            self.output.barrier(Barrier::FINAL)?;
            if let Some(control) = &self.control {
                control.task.finished();
            }
        }
        Ok(())
    }
}
