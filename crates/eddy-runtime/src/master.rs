//! The job master: runs a job's attempts on their threads, drives checkpoints and savepoints,
//! and restarts the job from its newest complete checkpoint after a failure.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use eddy_core::{Error, Result};

use crate::checkpoint::coordinator::{Coordinator, SavepointRequest};
use crate::checkpoint::restored::RestoredState;
use crate::checkpoint::snapshot_port::SubtaskSnapshot;
use crate::checkpoint::task::{Command, Event};
use crate::checkpoint::RestartStrategy;
use crate::config::JobConfig;
use crate::graph::JobGraph;
use crate::job::{build_attempt, JobResult};
use crate::metrics::MetricRegistry;
use crate::planner::Plan;

/// How often the master looks at the cancel flag and the checkpoint clock when nothing happens.
const POLL: Duration = Duration::from_millis(10);

/// Everything the master owns for the life of the job.
pub(crate) struct Master {
    pub(crate) name: String,
    pub(crate) graph: JobGraph,
    pub(crate) plan: Plan,
    pub(crate) config: JobConfig,
    pub(crate) metrics: MetricRegistry,
    /// Set by the user's `cancel`.
    pub(crate) cancel: Arc<AtomicBool>,
    pub(crate) requests: Receiver<SavepointRequest>,
    pub(crate) coordinator: Option<Coordinator>,
    pub(crate) restored: Option<Arc<RestoredState>>,
    pub(crate) started: Instant,
}

/// How one attempt ended.
enum Outcome {
    /// Every task finished.
    Finished(Vec<SubtaskSnapshot>),
    /// A stop-with-savepoint completed; the job is over.
    Stopped(std::path::PathBuf),
}

/// One run of the job's tasks.
pub(crate) struct Attempt {
    pub(crate) cancel: Arc<AtomicBool>,
    pub(crate) events: Receiver<Event>,
    pub(crate) threads: Vec<JoinHandle<()>>,
    pub(crate) sources: Vec<Sender<Command>>,
}

impl Attempt {
    fn stop_threads(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }

    fn tell_sources(&self, command: Command) {
        for source in &self.sources {
            let _ = source.send(command);
        }
    }
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

impl Master {
    /// Runs attempts until the job finishes, stops, is cancelled, or fails beyond its restarts.
    pub(crate) fn run(mut self, first: Attempt) -> Result<JobResult> {
        let mut attempt = first;
        let mut restarts = 0;
        loop {
            let outcome = self.run_attempt(&mut attempt);
            attempt.stop_threads();
            let mut error = match outcome {
                Ok(outcome) => return self.finish(outcome, restarts),
                Err(error) => error,
            };
            attempt = loop {
                if self.cancel.load(Ordering::Relaxed) || !self.may_restart(restarts) {
                    return Err(error);
                }
                restarts += 1;
                tracing::warn!(job = %self.name, restart = restarts, "job failed, restarting: {error}");
                // A restart that cannot start (a sink's store still down) is one more failure.
                match self.restart() {
                    Ok(next) => break next,
                    Err(failed) => error = failed,
                }
            };
        }
    }

    fn may_restart(&self, restarts: usize) -> bool {
        match self.config.restart_strategy() {
            RestartStrategy::None => false,
            RestartStrategy::FixedDelay { attempts, .. } => restarts < attempts,
        }
    }

    /// Waits out the restart delay, then starts a new attempt from the newest checkpoint.
    fn restart(&mut self) -> Result<Attempt> {
        if let RestartStrategy::FixedDelay { delay, .. } = self.config.restart_strategy() {
            let until = Instant::now() + delay;
            while Instant::now() < until {
                if self.cancel.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
            }
        }
        let latest = match &self.coordinator {
            Some(coordinator) => coordinator.latest()?.map(Arc::new),
            None => None,
        };
        if latest.is_some() {
            self.restored = latest;
        }
        // As at a fresh start: the restored checkpoint's sink transactions may never have been
        // committed (a failed commit may be why the job restarts), and the failed attempt's
        // open transactions will never be.
        if let Some(coordinator) = &mut self.coordinator {
            coordinator.prepare_attempt(self.restored.as_deref())?;
        }
        build_attempt(self, self.restored.clone())
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
            Event::Ack { checkpoint, task, parts } => {
                let Some(coordinator) = &mut self.coordinator else { return };
                if !coordinator.ack(checkpoint, task, parts) {
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
            Event::SourceDone { .. } => progress.sources_running -= 1,
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
        let going_down =
            progress.failure.is_some() || progress.stopped.is_some() || attempt.cancel.load(Ordering::Relaxed);
        if going_down || progress.finishing || coordinator.is_pending() {
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
