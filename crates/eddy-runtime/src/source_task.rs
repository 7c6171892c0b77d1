//! The loop of a source subtask: poll the source, push batches down the chain, keep time
//! moving (the source's own watermarks, when it generates them per split), publish its
//! per-split metrics, start checkpoints when the job master says so, and tell the source
//! when one completed.
//!
//! With watermark alignment ([`eddy_core::watermark_alignment`]) it also reads its group's
//! bound every update interval, and while its watermark is above it, it polls nothing: it
//! waits an update interval at a time (at most a tick), still answering barriers and
//! cancellation and sending ticks down the chain. A reader of several splits is told which
//! of them to pause.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use eddy_core::time::{now_ms, MAX_WATERMARK};
use eddy_core::{
    AlignmentMember, Barrier, BarrierKind, Error, OperatorInfo, Output, Result, SourceAlignment, SourceOutput,
    SourcePoll, SourceReader,
};
use eddy_state::Redistribution;

use crate::checkpoint::snapshot_port::{StateContext, SubtaskList};
use crate::checkpoint::task::{Command, TaskCheckpointing};
use crate::counter::Counter;
use crate::metrics::{names, MetricRegistry};
use crate::source_dead_letters::WithDeadLetters;
use crate::task::{Task, TaskRun};
use crate::task_time;

/// The operator-state list that holds a source's splits.
pub const SPLITS: &str = "splits";

/// A checkpointed source's wiring: commands in, snapshots and acks out.
/// [`BuildContext::source_control`](crate::graph::BuildContext::source_control) makes it.
pub struct SourceControl {
    /// Barriers and other commands from the job master.
    pub(crate) commands: Receiver<Command>,
    /// Where acks go.
    pub(crate) task: TaskCheckpointing,
    /// Where the source's splits are snapshotted (`None` without a uid: the planner refused
    /// such a job, so this is only `None` for sources that hold no position).
    pub(crate) state: Option<StateContext>,
}

/// Runs a [`SourceReader`] (a `Source` runs through `PlainReader`) and pushes what it produces into its chain.
pub struct SourceTask<T, S> {
    source: S,
    output: WithDeadLetters<T>,
    /// What the source produced since the last drain.
    out: SourceOutput<T>,
    info: OperatorInfo,
    batch_size: usize,
    records_in: Counter,
    control: Option<SourceControl>,
    /// Whether the end of event time was already sent (by a draining stop).
    drained: bool,
    /// The newest completed checkpoint the source was told about.
    notified: u64,
    metrics: Option<SplitCounters>,
    last_periodic: Instant,
    alignment: Option<Alignment>,
}

/// A source subtask's watermark alignment and its metrics.
struct Alignment {
    source: SourceAlignment,
    /// Whether the source's own watermarks are the member's (else an assigner in the chain
    /// publishes them).
    own_watermarks: bool,
    /// Time spent paused, and how much of it the counter holds (whole milliseconds).
    paused: Duration,
    paused_ms: Counter,
    drift_ms: Counter,
}

/// Where a source's per-split metrics are published: `<split>.records_in`, `.bytes_in`,
/// `.lag_records`, `.lag_ms` of the source's subtask, and its dead letters. The lag counters
/// exist only once the source reported a lag, so one that never does reads as `None`, not as
/// caught up.
pub struct SplitCounters {
    registry: MetricRegistry,
    splits: Vec<SplitCells>,
    dead_letters: Counter,
}

impl SplitCounters {
    /// Counters of the source subtask `info` in `registry`.
    pub fn new(registry: MetricRegistry, info: &OperatorInfo) -> Self {
        let dead_letters = registry.counter(&info.name, info.subtask, names::DEAD_LETTERS);
        SplitCounters { registry, splits: Vec::new(), dead_letters }
    }
}

/// One split's counters: records in, bytes in, and its lag in records and ms once reported.
struct SplitCells {
    name: String,
    records: Counter,
    bytes: Counter,
    lag_records: Option<Counter>,
    lag_ms: Option<Counter>,
}

/// What the master asked a source to do next.
enum Next {
    Poll,
    Finish,
}

impl<T, S> SourceTask<T, S> {
    /// A source subtask named by `info`, polling up to `batch_size` values at a time into
    /// `out` (which says whether the source generates watermarks).
    pub fn new(
        source: S,
        output: WithDeadLetters<T>,
        out: SourceOutput<T>,
        info: OperatorInfo,
        batch_size: usize,
        records_in: Counter,
    ) -> Self {
        SourceTask {
            source,
            output,
            out,
            info,
            batch_size,
            records_in,
            control: None,
            drained: false,
            notified: 0,
            metrics: None,
            last_periodic: Instant::now(),
            alignment: None,
        }
    }

    /// Pauses while `member`'s watermark runs too far ahead of its group's. The member is the
    /// source's own when it generates watermarks with an aligned strategy, else that of the
    /// operator in its chain that joined the group (a timestamp assigner).
    pub fn with_alignment(mut self, member: Option<AlignmentMember>, registry: &MetricRegistry) -> Self {
        self.alignment = member.map(|member| {
            let counter = |name| registry.counter(&self.info.name, self.info.subtask, name);
            Alignment {
                source: SourceAlignment::new(member),
                own_watermarks: self.out.alignment().is_some(),
                paused: Duration::ZERO,
                paused_ms: counter(names::ALIGNMENT_PAUSED_MS),
                drift_ms: counter(names::ALIGNMENT_DRIFT_MS),
            }
        });
        self
    }

    /// Publishes the source's per-split metrics and dead-letter count.
    pub fn with_metrics(mut self, metrics: SplitCounters) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

impl<T: Send, S: SourceReader<T>> SourceTask<T, S> {
    /// Takes part in checkpoints; refused for a source that cannot rewind.
    pub fn with_control(mut self, control: Option<SourceControl>) -> Result<Self> {
        if control.as_ref().is_some_and(|c| c.state.is_some()) && self.splits(0)?.is_none() {
            return Err(not_replayable(&self.info));
        }
        self.notified = control.as_ref().and_then(|c| c.state.as_ref()).map_or(0, |s| s.completed_checkpoint());
        self.control = control;
        Ok(self)
    }

    fn splits(&mut self, checkpoint: u64) -> Result<Option<Vec<Vec<u8>>>> {
        let info = &self.info;
        let source = &mut self.source;
        info.guard(|| source.snapshot_splits(checkpoint))?
            .map_err(|e| info.error(format!("cannot snapshot its position: {e}")))
    }

    /// Puts the source's position into the checkpoint being taken.
    fn snapshot_splits(&mut self, checkpoint: u64) -> Result<()> {
        let splits = self.splits(checkpoint)?;
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

    /// Sends what the source produced: records with their watermarks, then dead letters.
    fn drain(&mut self) -> Result<()> {
        let sent = self.out.drain_to(self.output.main())?;
        if sent > 0 {
            self.records_in.add(sent as u64);
        }
        if self.out.has_dead_letters() {
            let letters = self.out.take_dead_letters();
            if let Some(metrics) = &self.metrics {
                metrics.dead_letters.add(letters.len() as u64);
                tracing::debug!(records = letters.len(), "source records sent to the dead-letter output");
            }
            self.output.dead_letters(letters)?;
        }
        Ok(())
    }

    /// Tells the source about a checkpoint that completed since the last call.
    fn notify_completed(&mut self) -> Result<()> {
        let Some(state) = self.control.as_ref().and_then(|c| c.state.as_ref()) else { return Ok(()) };
        let completed = state.completed_checkpoint();
        if completed <= self.notified {
            return Ok(());
        }
        self.notified = completed;
        let (info, source) = (&self.info, &mut self.source);
        info.guard(|| source.checkpoint_complete(completed))?
            .map_err(|e| info.error(format!("cannot act on completed checkpoint {completed}: {e}")))
    }

    /// The source's own periodic watermarks, when their interval is up. Looked at before
    /// every poll, so they come at the strategy's interval even when it is shorter than a
    /// tick (as an assigner's do), which alignment relies on.
    fn periodic_watermarks(&mut self) -> Result<()> {
        if let Some(interval) = self.out.watermark_interval() {
            if self.last_periodic.elapsed() >= interval {
                self.last_periodic = Instant::now();
                self.out.on_periodic(self.last_periodic);
                self.drain()?;
            }
        }
        Ok(())
    }

    /// Watermark alignment, before each poll: publishes the source's own watermark, and once
    /// per update interval reads the group's bound and pauses or resumes the splits it
    /// concerns. Looking before each poll (not only at ticks) lets a short update interval
    /// keep a fast source close to its group.
    fn align(&mut self) -> Result<()> {
        let Some(alignment) = &mut self.alignment else { return Ok(()) };
        if alignment.own_watermarks {
            let member = alignment.source.member();
            member.report(self.out.watermark());
            member.set_idle(self.out.is_idle());
        }
        if !alignment.source.update(Instant::now()) {
            return Ok(());
        }
        alignment.drift_ms.set(alignment.source.drift());
        let (pause, resume) = self.out.align_splits(alignment.source.max_allowed());
        if pause.is_empty() && resume.is_empty() {
            return Ok(());
        }
        let (info, source) = (&self.info, &mut self.source);
        info.guard(|| source.pause_or_resume_splits(&pause, &resume))?
            .map_err(|e| info.error(format!("cannot pause or resume splits for watermark alignment: {e}")))
    }

    /// Whether alignment keeps the source from reading now.
    #[inline]
    fn paused(&self) -> bool {
        self.alignment.as_ref().is_some_and(|a| a.source.must_pause())
    }

    /// Paused by alignment: reads nothing until the group's next update (at most a tick),
    /// but answers the master meanwhile.
    fn wait_for_alignment(&mut self, run: &TaskRun) -> Result<Next> {
        let Some(alignment) = &self.alignment else { return Ok(Next::Poll) };
        let wait = alignment.source.update_interval().min(run.tick_interval);
        let start = Instant::now();
        let next = match self.control {
            Some(_) => self.commands(run, Some(wait))?,
            None => {
                std::thread::sleep(wait);
                Next::Poll
            }
        };
        if let Some(alignment) = &mut self.alignment {
            let counted = alignment.paused.as_millis();
            alignment.paused += start.elapsed();
            alignment.paused_ms.add((alignment.paused.as_millis() - counted) as u64);
        }
        Ok(next)
    }

    fn publish_metrics(&mut self) {
        let Some(metrics) = self.metrics.as_mut() else { return };
        let info = &self.info;
        self.out.take_split_metrics(|split, name, m| {
            // Splits come in registration order, so a new one is the next index.
            let registry = &metrics.registry;
            let counter = |split: &str, n: &str| registry.counter(&info.name, info.subtask, &format!("{split}.{n}"));
            if metrics.splits.len() <= split.index() {
                metrics.splits.push(SplitCells {
                    name: name.to_string(),
                    records: counter(name, names::RECORDS_IN),
                    bytes: counter(name, names::BYTES_IN),
                    lag_records: None,
                    lag_ms: None,
                });
            }
            let cells = &mut metrics.splits[split.index()];
            cells.records.add(m.records);
            cells.bytes.add(m.bytes);
            if let Some(lag) = m.lag_records {
                cells.lag_records.get_or_insert_with(|| counter(&cells.name, names::LAG_RECORDS)).set(lag);
            }
            if let Some(lag) = m.lag_ms {
                cells.lag_ms.get_or_insert_with(|| counter(&cells.name, names::LAG_MS)).set(lag);
            }
        });
    }

    /// Records the position, passes the barrier down the chain, and acks.
    fn checkpoint(&mut self, barrier: Barrier) -> Result<()> {
        if barrier.kind == (BarrierKind::Stop { drain: true }) {
            self.emit_end_of_time()?;
        }
        self.snapshot_splits(barrier.checkpoint)?;
        self.output.barrier(barrier)?;
        if let Some(control) = &self.control {
            control.task.ack(barrier, Duration::ZERO);
        }
        Ok(())
    }

    /// Handles commands that are waiting, and with `wait` waits that long for one more;
    /// after a stop barrier, waits for the outcome.
    fn commands(&mut self, run: &TaskRun, wait: Option<Duration>) -> Result<Next> {
        loop {
            let Some(control) = &self.control else { return Ok(Next::Poll) };
            let command = if let Some(wait) = wait {
                match control.commands.recv_timeout(wait) {
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
            if run.drain.load(Ordering::Relaxed) {
                return Ok(());
            }
            if let Next::Finish = self.commands(run, Some(run.tick_interval))? {
                return Ok(());
            }
            self.notify_completed()?;
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

impl<T: Send, S: SourceReader<T>> Task for SourceTask<T, S> {
    fn run(mut self: Box<Self>, run: &TaskRun) -> Result<()> {
        let mut last_tick = Instant::now();
        loop {
            if run.cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            // A drain ends the input here, as if the source had run out.
            if run.drain.load(Ordering::Relaxed) {
                break;
            }
            if let Next::Finish = self.commands(run, None)? {
                break;
            }
            self.notify_completed()?;
            self.periodic_watermarks()?;
            self.align()?;
            // While paused, time moves on at ticks only (as when the source is busy).
            let mut poll = SourcePoll::Ready;
            if !self.paused() {
                let (info, source, out) = (&self.info, &mut self.source, &mut self.out);
                let max = self.batch_size;
                let polling = Instant::now();
                poll = info.guard(|| source.poll(out, max))?.map_err(|e| info.error(e.to_string()))?;
                out.after_poll();
                if poll == SourcePoll::Pending {
                    // A poll that found nothing waited for input: the source's idle time.
                    task_time::add_idle(polling.elapsed());
                }
                self.drain()?;
            } else {
                // Paused by alignment, the source waits for the others: idle time too.
                let waiting = Instant::now();
                let next = self.wait_for_alignment(run)?;
                task_time::add_idle(waiting.elapsed());
                if let Next::Finish = next {
                    break;
                }
            }
            if poll == SourcePoll::Done {
                if let Some(alignment) = &self.alignment {
                    alignment.source.finish();
                }
                self.publish_metrics();
                self.emit_end_of_time()?;
                self.await_finish(run)?;
                break;
            }
            if poll == SourcePoll::Pending || last_tick.elapsed() >= run.tick_interval {
                self.publish_metrics();
                self.output.tick(now_ms())?;
                last_tick = Instant::now();
            }
        }
        self.emit_end_of_time()?;
        self.output.finish()?;
        if self.control.is_some() {
            self.snapshot_splits(u64::MAX)?;
            self.output.barrier(Barrier::FINAL)?;
            if let Some(control) = &self.control {
                control.task.finished();
            }
        }
        Ok(())
    }
}
