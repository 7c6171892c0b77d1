//! The job master: runs a job's attempts on their threads, drives checkpoints and savepoints,
//! and restarts the job from its newest complete checkpoint after a failure.
//!
//! `execute` plans the job and hands it to the master, which runs on a thread of its own
//! (`job-master`) for the life of the job. It owns the task threads of the current
//! *attempt* and listens to them, and to the user's [`JobHandle`](crate::JobHandle), in one
//! loop:
//!
//! - every checkpoint interval (or on a savepoint request) it asks each source task to
//!   record its position and emit a barrier; each task acks once the barrier has passed
//!   through its chain, with what its operators snapshotted; when all have acked the
//!   [coordinator](crate::checkpoint::coordinator) writes the snapshot and commits the
//!   transactional sinks;
//! - when every source is done it tells them to finish, and collects each task's final
//!   state (a last transaction to commit);
//! - when a task fails, it cancels the attempt, waits for its threads, and — as long as the
//!   restart strategy allows — starts the next attempt from the newest checkpoint.
//!
//! ```text
//!  JobHandle ──savepoint / cancel──▶ master ◀──Ack / SourceDone / Finished / Ended── tasks
//!                                      │──Barrier / Finish / Resume──▶ source tasks
//!                                      └──write snapshot, commit sinks, restart
//! ```
//!
//! A restart is an attempt like the first: the newest checkpoint is opened (an older one of
//! this run if it no longer opens), sinks are prepared (output committed after it rolled
//! back, its transactions committed again, the failed attempt's leftovers removed), and the
//! tasks are built with the next attempt number. A failure to restart counts as a failed
//! attempt. When the restart strategy gives up, the error reported is the first failure,
//! the root cause, noting the last one if it differs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};
use eddy_core::{Error, Result};

use crate::attempt::{build_attempt, Attempt, Job};
use crate::checkpoint::coordinator::{Coordinator, SavepointRequest};
use crate::checkpoint::restored::RestoredState;
use crate::checkpoint::snapshot_port::SubtaskSnapshot;
use crate::checkpoint::task::{Command, Event};
use crate::checkpoint::RestartStrategy;
use crate::config::JobConfig;
use crate::graph::JobGraph;
use crate::job_result::JobResult;
use crate::metrics::MetricRegistry;
use crate::planner::Plan;
use crate::status::{JobStatus, StatusCell};
use crate::warnings::Warnings;

/// How often the master looks at the cancel flag and the checkpoint clock when nothing happens.
const POLL: Duration = Duration::from_millis(10);

/// Everything the master owns for the life of the job.
pub(crate) struct Master {
    pub(crate) name: String,
    pub(crate) graph: JobGraph,
    pub(crate) plan: Plan,
    pub(crate) config: JobConfig,
    pub(crate) metrics: MetricRegistry,
    pub(crate) warnings: Warnings,
    /// Set by the user's `cancel`.
    pub(crate) cancel: Arc<AtomicBool>,
    /// Set by the user's `stop`: drain the job (it holds for every attempt).
    pub(crate) drain: Arc<AtomicBool>,
    /// What the job's handles read as its status.
    pub(crate) status: StatusCell,
    /// Where each attempt's keyed operators register for queries.
    pub(crate) queries: eddy_state::QueryRegistry,
    pub(crate) requests: Receiver<SavepointRequest>,
    pub(crate) coordinator: Option<Coordinator>,
    pub(crate) restored: Option<Arc<RestoredState>>,
    pub(crate) started: Instant,
    /// The `job` span: the master's thread runs in it, each attempt's span is its child.
    pub(crate) span: tracing::Span,
}

/// How one attempt ended.
enum Outcome {
    /// Every task finished.
    Finished(Vec<SubtaskSnapshot>),
    /// A stop-with-savepoint completed; the job is over.
    Stopped(std::path::PathBuf),
}

/// An attempt's progress, as the master's loop sees it.
struct Progress {
    tasks: usize,
    ended: usize,
    sources_running: usize,
    failure: Option<Error>,
    finished_parts: Vec<SubtaskSnapshot>,
    stopped: Option<std::path::PathBuf>,
    waiting: VecDeque<SavepointRequest>,
    /// Whether the sources were told to end the stream.
    finishing: bool,
}

impl Progress {
    /// Whether the attempt is on its way down: failed, stopped with a savepoint, or cancelled.
    fn going_down(&self, attempt: &Attempt) -> bool {
        self.failure.is_some() || self.stopped.is_some() || attempt.cancel.load(Ordering::Relaxed)
    }
}

/// The failures of a job's attempts: the first is the root cause, the last may differ.
#[derive(Default)]
struct Failures {
    first: Option<Error>,
    last: Option<Error>,
    restarts: usize,
}

impl Failures {
    fn record(&mut self, error: Error) {
        if self.first.is_none() {
            self.first = Some(error);
        } else {
            self.last = Some(error);
        }
    }

    /// The first failure, noting the last one when it says something else.
    fn reported(self) -> Error {
        let first = self.first.unwrap_or(Error::Cancelled);
        match self.last {
            Some(last) if last.to_string() != first.to_string() && !last.is_secondary() => {
                append(first, &format!(" (after {} restarts the job failed with: {last})", self.restarts))
            }
            _ => first,
        }
    }
}

/// `error` with `note` added to its message (errors without one are returned as they are).
fn append(error: Error, note: &str) -> Error {
    match error {
        Error::Operator { operator, subtask, parallelism, message } => {
            Error::Operator { operator, subtask, parallelism, message: message + note }
        }
        Error::Checkpoint(message) => Error::Checkpoint(message + note),
        Error::InvalidJob(message) => Error::InvalidJob(message + note),
        other => other,
    }
}

impl Master {
    /// What the next attempt is built from.
    pub(crate) fn job(&self) -> Job<'_> {
        Job {
            graph: &self.graph,
            plan: &self.plan,
            config: &self.config,
            metrics: &self.metrics,
            queries: &self.queries,
            coordinator: self.coordinator.as_ref(),
            span: &self.span,
        }
    }

    /// Runs attempts until the job finishes, stops, is cancelled, or fails beyond its restarts.
    pub(crate) fn run(mut self, first: Attempt) -> Result<JobResult> {
        let mut attempt = first;
        let mut failures = Failures::default();
        loop {
            let span = attempt.span.clone();
            let outcome = span.in_scope(|| self.run_attempt(&mut attempt));
            attempt.stop_threads();
            // The final checkpoint failing (a full disk, say) is a failure like any other.
            let error = match outcome.and_then(|outcome| self.finish(outcome, failures.restarts)) {
                Ok(result) => return Ok(result),
                Err(error) => error,
            };
            attempt = self.recover(error, &mut failures)?;
        }
    }

    /// After a failed attempt: starts new ones under the restart strategy until one starts
    /// (a restart that fails is one more failure), or returns the error to report.
    fn recover(&mut self, error: Error, failures: &mut Failures) -> Result<Attempt> {
        let mut error = error;
        loop {
            let cancelled = self.cancel.load(Ordering::Relaxed) || matches!(error, Error::Cancelled);
            if cancelled && failures.first.is_none() {
                return Err(error);
            }
            failures.record(error);
            if cancelled || !self.may_restart(failures.restarts) {
                return Err(std::mem::take(failures).reported());
            }
            failures.restarts += 1;
            let cause = failures.last.as_ref().or(failures.first.as_ref()).map(Error::to_string).unwrap_or_default();
            tracing::warn!(restart = failures.restarts, cause = %cause, "job failed; restarting from the newest checkpoint");
            self.warnings.keep(format!("job '{}' failed, restart {}: {cause}", self.name, failures.restarts));
            self.status.set(JobStatus::Restarting(failures.restarts));
            self.metrics.restarted();
            match self.restart(failures.restarts) {
                Ok(attempt) => {
                    self.status.set(JobStatus::Running);
                    return Ok(attempt);
                }
                Err(e) => error = e,
            }
        }
    }

    fn may_restart(&self, restarts: usize) -> bool {
        match self.config.restart_strategy() {
            RestartStrategy::None => false,
            RestartStrategy::FixedDelay { attempts, .. } => restarts < attempts,
        }
    }

    /// Waits out the restart delay, then starts attempt `attempt` from the newest checkpoint
    /// (or what the job started from), its sinks prepared.
    fn restart(&mut self, attempt: usize) -> Result<Attempt> {
        if let RestartStrategy::FixedDelay { delay, .. } = self.config.restart_strategy() {
            let until = Instant::now() + delay;
            while Instant::now() < until {
                if self.cancel.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
            }
        }
        if let Some(coordinator) = &mut self.coordinator {
            let (latest, skipped_newer) = coordinator.latest()?;
            if let Some(latest) = latest {
                self.restored = Some(Arc::new(latest));
            }
            coordinator.prepare_attempt(self.restored.as_deref(), skipped_newer)?;
        }
        build_attempt(&self.job(), self.restored.clone(), attempt)
    }

    fn finish(&mut self, outcome: Outcome, restarts: usize) -> Result<JobResult> {
        let savepoint = match outcome {
            Outcome::Finished(parts) => {
                if let Some(coordinator) = &mut self.coordinator {
                    coordinator.complete_final(parts)?;
                }
                None
            }
            Outcome::Stopped(path) => Some(path),
        };
        Ok(JobResult {
            name: self.name.clone(),
            duration: self.started.elapsed(),
            metrics: self.metrics.snapshot(),
            restarts,
            checkpoints: self.coordinator.as_ref().map_or(0, Coordinator::completed_count),
            savepoint,
            warnings: self.warnings.all(),
        })
    }

    fn run_attempt(&mut self, attempt: &mut Attempt) -> Result<Outcome> {
        let mut progress = Progress {
            tasks: attempt.threads.len(),
            ended: 0,
            sources_running: attempt.sources.len(),
            failure: None,
            finished_parts: Vec::new(),
            stopped: None,
            waiting: VecDeque::new(),
            finishing: false,
        };
        while progress.ended < progress.tasks {
            if self.cancel.load(Ordering::Relaxed) {
                attempt.cancel.store(true, Ordering::Relaxed);
            }
            if self.drain.load(Ordering::Relaxed) {
                self.start_drain(attempt, &mut progress);
            }
            select! {
                recv(attempt.events) -> event => match event {
                    Ok(event) => self.on_event(event, attempt, &mut progress),
                    Err(_) => break,
                },
                recv(self.requests) -> request => {
                    if let Ok(request) = request {
                        progress.waiting.push_back(request);
                    }
                }
                default(POLL) => {}
            }
            self.drive_checkpoints(attempt, &mut progress);
        }
        if let Some(error) = progress.failure {
            for request in progress.waiting {
                let reply = "the savepoint was not completed: a task failed (the job restarts if its strategy allows)";
                let _ = request.reply.send(Err(Error::Checkpoint(reply.into())));
            }
            return Err(error);
        }
        if self.cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        for request in progress.waiting {
            let _ = request.reply.send(Err(Error::Checkpoint("the job ended before the savepoint was taken".into())));
        }
        Ok(match progress.stopped {
            Some(path) => Outcome::Stopped(path),
            None => Outcome::Finished(progress.finished_parts),
        })
    }

    fn on_event(&mut self, event: Event, attempt: &Attempt, progress: &mut Progress) {
        match event {
            Event::Ack { checkpoint, task, parts, alignment_ms } => {
                let Some(coordinator) = &mut self.coordinator else { return };
                if !coordinator.ack(checkpoint, task, parts, alignment_ms) {
                    return;
                }
                match coordinator.complete() {
                    Ok(done) if done.stop => {
                        progress.stopped = done.path;
                        attempt.cancel.store(true, Ordering::Relaxed);
                    }
                    // A stop whose savepoint failed: its sources read on.
                    Ok(_) => attempt.tell_sources(Command::Resume),
                    Err(error) => self.fail(error, attempt, progress),
                }
            }
            Event::SourceDone => progress.sources_running -= 1,
            Event::Finished { parts, .. } => progress.finished_parts.extend(parts),
            Event::Ended { result, .. } => {
                progress.ended += 1;
                if let Err(error) = result {
                    // Cancellations and closed channels only echo the first failure (or a stop).
                    if !error.is_secondary() || (progress.stopped.is_none() && !attempt.cancel.load(Ordering::Relaxed))
                    {
                        self.fail(error, attempt, progress);
                    }
                }
            }
        }
    }

    /// Tells the sources to end their input, once no checkpoint is in flight (so a savepoint
    /// being taken completes, and no checkpoint starts that the end of input would cut short);
    /// the attempt then finishes as if the input had ended, final checkpoint included.
    fn start_drain(&mut self, attempt: &Attempt, progress: &mut Progress) {
        let pending = self.coordinator.as_ref().is_some_and(Coordinator::is_pending);
        if attempt.drain.load(Ordering::Relaxed) || pending || progress.going_down(attempt) {
            return;
        }
        progress.finishing = true;
        attempt.drain.store(true, Ordering::Relaxed);
        // Sources already at the end of their input wait for this word.
        attempt.tell_sources(Command::Finish);
    }

    fn fail(&mut self, error: Error, attempt: &Attempt, progress: &mut Progress) {
        if progress.failure.is_none() {
            progress.failure = Some(error);
        }
        if let Some(coordinator) = &mut self.coordinator {
            coordinator.abort("a task failed");
        }
        attempt.cancel.store(true, Ordering::Relaxed);
    }

    /// Starts a checkpoint when one is due or a savepoint was asked for, and abandons one that
    /// took too long. Sources whose input is exhausted still answer barriers: periodic
    /// checkpoints go on while any source reads, and once all are done the sources are told
    /// to end the stream as soon as no checkpoint is in flight (so a savepoint asked for just
    /// before the end still completes).
    fn drive_checkpoints(&mut self, attempt: &Attempt, progress: &mut Progress) {
        let Some(coordinator) = &mut self.coordinator else {
            for request in progress.waiting.drain(..) {
                let _ = request.reply.send(Err(Error::Checkpoint(
                    "savepoints need checkpointing: call enable_checkpointing on the environment".into(),
                )));
            }
            if progress.sources_running == 0 && !progress.finishing {
                progress.finishing = true;
                attempt.tell_sources(Command::Finish);
            }
            return;
        };
        if coordinator.expire() {
            // A stop-with-savepoint that timed out leaves its sources waiting: they read on.
            attempt.tell_sources(Command::Resume);
        }
        // A drain waits for the checkpoint in flight and starts none after it.
        let draining = self.drain.load(Ordering::Relaxed);
        if progress.going_down(attempt) || progress.finishing || draining || coordinator.is_pending() {
            return;
        }
        let request = progress.waiting.pop_front();
        let periodic = progress.sources_running > 0 && coordinator.due();
        if request.is_none() && !periodic {
            if progress.sources_running == 0 {
                progress.finishing = true;
                attempt.tell_sources(Command::Finish);
            }
            return;
        }
        let barrier = coordinator.trigger(progress.tasks, request);
        attempt.tell_sources(Command::Barrier(barrier));
    }
}
