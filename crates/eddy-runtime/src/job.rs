//! Running a job: check it, build every subtask, start one thread per chain subtask under a
//! job master, and hand back a handle to wait for, cancel, savepoint, or observe it.

use std::collections::BTreeSet;
use std::future::IntoFuture;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{bounded, unbounded, Sender};
use eddy_core::error::panic_message;
use eddy_core::{Error, Result};
use eddy_state::{QueryError, QueryRegistry, QueryableState};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::attempt::build_attempt;
use crate::checkpoint::coordinator::{report_skipped, Coordinator, SavepointRequest};
use crate::checkpoint::restored::RestoredState;
use crate::completion::{Completion, JobCompletion};
use crate::config::JobConfig;
use crate::explain::Explained;
use crate::graph::JobGraph;
use crate::job_result::JobResult;
use crate::master::Master;
use crate::metrics::{names, JobMetrics, MetricRegistry};
use crate::operator_metrics::OperatorShape;
use crate::planner::{plan, Plan};
use crate::status::{JobStatus, StatusCell};
use crate::warnings::Warnings;

/// A running job: await or wait for its outcome, read its status, metrics and warnings, and
/// end it (`cancel`, `stop`, `stop_with_savepoint`).
///
/// Cheap to clone: every clone speaks to the same job, so a service can keep one in its
/// request handlers and another where it shuts down.
///
/// ```
/// # use eddy_runtime::JobHandle;
/// # async fn run(handle: JobHandle) -> eddy_core::Result<()> {
/// let result = handle.join().await?; // or `handle.await?`; `wait()` blocks a thread instead
/// println!("{} ended after {:?}", result.name, result.duration);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct JobHandle {
    name: String,
    completion: Arc<Completion>,
    status: StatusCell,
    /// Set by [`JobHandle::cancel`].
    cancel: Arc<AtomicBool>,
    /// Set by [`JobHandle::stop`].
    drain: Arc<AtomicBool>,
    requests: Sender<SavepointRequest>,
    metrics: MetricRegistry,
    warnings: Warnings,
    queries: QueryRegistry,
    plan: Arc<Explained>,
}

impl JobHandle {
    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Ends the job now (Flink's cancel): every subtask stops where it is, open windows are
    /// dropped and sinks are not flushed; the outcome is [`Error::Cancelled`] (or the job's
    /// own failure, if it failed first). To end a job without losing what it holds, use
    /// [`JobHandle::stop`].
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Drains the job and lets it finish (Flink's `stop --drain`, Kafka Streams' `close`):
    /// sources stop reading as if their input had ended, event time advances to the end so
    /// every window fires and every event-time timer runs, every sink flushes, and, when the
    /// job takes checkpoints, a final checkpoint commits what transactional sinks hold. The
    /// outcome is then a normal [`JobResult`]. Returns at once; await [`JobHandle::join`] (or
    /// [`JobHandle::wait`]) for the end. A checkpoint in flight completes first; stopping a
    /// job that has ended does nothing.
    ///
    /// Unlike [`JobHandle::stop_with_savepoint`] it writes no savepoint and needs no
    /// checkpointing: what the sources had not read yet stays unread (a channel's sender sees
    /// its receiver dropped).
    pub fn stop(&self) {
        self.drain.store(true, Ordering::Relaxed);
    }

    /// Whether the job has ended.
    pub fn is_finished(&self) -> bool {
        self.completion.is_done()
    }

    /// Where the job is now: running, restarting, or how it ended. Does not consume the handle.
    pub fn status(&self) -> JobStatus {
        self.status.get()
    }

    /// The counters as they are now.
    pub fn metrics(&self) -> JobMetrics {
        self.metrics.snapshot()
    }

    /// The plan the job runs: its chains, their parallelism and how records cross between
    /// them (what [`Explained`] shows before a job starts).
    pub fn plan(&self) -> &Explained {
        &self.plan
    }

    /// What the job met so far that did not stop it but that its operator must hear about,
    /// oldest first: newer checkpoints its restore skipped and why, output of later
    /// checkpoints a sink rolled back (or left visible twice, where allowed), failures it
    /// restarted after. Each was also logged through `tracing`. The restore's warnings are
    /// here as soon as `execute` returns: a program should show them (the examples print
    /// them to stderr).
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.all()
    }

    /// Takes a savepoint into the new directory `dir` while the job goes on; returns its path
    /// once it is complete. Needs checkpointing enabled (an interval is not required).
    /// Blocks the calling thread until then (from async code, call it on a blocking thread).
    pub fn savepoint(&self, dir: impl AsRef<Path>) -> Result<PathBuf> {
        self.request(dir.as_ref(), None)
    }

    /// Takes a savepoint into `dir` and stops the job once it is complete (Flink's
    /// stop-with-savepoint); [`JobHandle::wait`] then returns normally. With `drain`, event
    /// time first advances to the end, so every window fires and every event-time timer runs
    /// before the snapshot (for a job that will not be resumed). If the savepoint fails the
    /// job goes on and the error is returned. Blocks the calling thread until the savepoint
    /// is complete.
    pub fn stop_with_savepoint(&self, dir: impl AsRef<Path>, drain: bool) -> Result<PathBuf> {
        self.request(dir.as_ref(), Some(drain))
    }

    fn request(&self, dir: &Path, stop: Option<bool>) -> Result<PathBuf> {
        let (reply, outcome) = bounded(1);
        let request = SavepointRequest { dir: dir.to_path_buf(), stop, reply };
        self.requests.send(request).map_err(|_| Error::Checkpoint("the job has already ended".into()))?;
        outcome.recv().map_err(|_| Error::Checkpoint("the job ended before the savepoint was taken".into()))?
    }

    /// Reads the state `state` (keys `K`, values `V`) of the keyed operator with uid `uid`
    /// while the job runs (queryable state, Kafka Streams' interactive queries): each read is
    /// answered by the subtask that owns the key, between two of its batches, without
    /// stopping the stream. Value, reducing and aggregating states can be read; `V` is the
    /// type the state's descriptor declares. See [`eddy_state::query`].
    ///
    /// ```
    /// use eddy_state::ValueStateDescriptor;
    /// # use eddy_runtime::JobHandle;
    /// # fn read(job: &JobHandle) -> Result<(), eddy_state::QueryError> {
    /// let balances = job.state::<String, i64>("balances", "balance")?;
    /// if let Some(balance) = balances.get(&"alice".to_string())? {
    ///     println!("alice has {balance}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn state<K, V>(&self, uid: &str, state: &str) -> std::result::Result<QueryableState<K, V>, QueryError>
    where
        K: Serialize + DeserializeOwned,
        V: DeserializeOwned,
    {
        QueryableState::new(self.queries.clone(), uid, state)
    }

    /// A future of the job's outcome, for async code: it never blocks the executor's thread,
    /// and any number of them (from clones of the handle) may await the same job. On failure
    /// the error is the root cause, as for [`JobHandle::wait`].
    pub fn join(&self) -> JobCompletion {
        JobCompletion { completion: self.completion.clone() }
    }

    /// Blocks the calling thread until the job has ended. On failure returns the root cause:
    /// the first error that is not merely another subtask noticing the failure.
    pub fn wait(self) -> Result<JobResult> {
        self.completion.wait()
    }
}

/// `handle.await` waits for the job's outcome, as [`JobHandle::join`].
impl IntoFuture for JobHandle {
    type Output = Result<JobResult>;
    type IntoFuture = JobCompletion;

    fn into_future(self) -> JobCompletion {
        self.join()
    }
}

/// Plans `graph`, checks it against its checkpoint settings and the snapshot it restores from,
/// builds every subtask and starts the job.
pub fn execute(name: &str, graph: JobGraph, config: JobConfig) -> Result<JobHandle> {
    let plan = plan(&graph, &config)?;
    if config.checkpoint.is_some() {
        check_uids(&graph)?;
    }
    let (metrics, warnings) = (MetricRegistry::default(), Warnings::default());
    metrics.describe(&operator_shapes(&graph, &plan));
    let explained = Arc::new(Explained::new(&graph, &plan));
    let mut skipped_newer = false;
    let restored = match &config.restore_from {
        Some(path) => {
            let (restored, skipped) = open_restore(path, &graph, &config)?;
            skipped_newer = !skipped.is_empty();
            report_skipped(skipped, &warnings, &metrics.counter(names::CHECKPOINTS, 0, names::RESTORE_SKIPPED));
            Some(Arc::new(restored))
        }
        None => None,
    };
    let coordinator = match &config.checkpoint {
        Some(_) => {
            let committers = graph.nodes.iter().filter_map(|n| Some((n.uid.clone()?, n.committer.clone()?))).collect();
            let mut coordinator =
                Coordinator::new(name, &config, committers, restored.as_deref(), &metrics, &warnings)?;
            coordinator.prepare_attempt(restored.as_deref(), skipped_newer)?;
            Some(coordinator)
        }
        None => None,
    };
    let (requests, requests_in) = unbounded();
    let status = StatusCell::default();
    let queries = QueryRegistry::default();
    let master = Master {
        name: name.to_string(),
        graph,
        plan,
        config,
        metrics: metrics.clone(),
        warnings: warnings.clone(),
        cancel: Arc::new(AtomicBool::new(false)),
        drain: Arc::new(AtomicBool::new(false)),
        status: status.clone(),
        queries: queries.clone(),
        requests: requests_in,
        coordinator,
        restored: restored.clone(),
        started: Instant::now(),
        span: tracing::info_span!("job", job = %name),
    };
    let attempt = build_attempt(&master.job(), restored, 0)?;
    let (cancel, drain) = (master.cancel.clone(), master.drain.clone());
    let completion = Arc::new(Completion::default());
    let (ended, final_status, uptime) = (completion.clone(), status.clone(), metrics.clone());
    std::thread::Builder::new()
        .name(format!("{name}#master"))
        .spawn(move || {
            let span = master.span.clone();
            let _job = span.enter();
            let outcome = catch_unwind(AssertUnwindSafe(|| master.run(attempt))).unwrap_or_else(|payload| {
                Err(Error::InvalidJob(format!("internal error: {}", panic_message(&payload))))
            });
            match &outcome {
                Ok(result) => tracing::info!(duration_ms = result.duration.as_millis() as u64, "job finished"),
                Err(Error::Cancelled) => tracing::info!("job cancelled"),
                Err(error) => tracing::error!(%error, "job failed"),
            }
            // The status is final before anyone waiting hears of the end.
            uptime.ended();
            final_status.set(JobStatus::of(&outcome));
            ended.complete(outcome);
        })
        .map_err(|e| Error::InvalidJob(format!("cannot start the job master thread: {e}")))?;
    Ok(JobHandle {
        name: name.to_string(),
        completion,
        status,
        cancel,
        drain,
        requests,
        metrics,
        warnings,
        queries,
        plan: explained,
    })
}

/// Every node of `graph` as `plan` runs it, as the typed metrics see it.
fn operator_shapes(graph: &JobGraph, plan: &Plan) -> Vec<OperatorShape> {
    let heads = plan.chain_heads(graph);
    let shapes = graph.nodes.iter().enumerate().map(|(id, node)| OperatorShape {
        name: node.name.clone(),
        uid: node.uid.clone(),
        parallelism: plan.parallelism[id],
        chain: heads[id],
        source: !graph.edges.iter().any(|e| e.to == id),
    });
    shapes.collect()
}

/// A checkpointed job matches state to operators by uid: every stateful operator needs one,
/// and no two may share one.
fn check_uids(graph: &JobGraph) -> Result<()> {
    let mut seen = BTreeSet::new();
    for node in &graph.nodes {
        match &node.uid {
            None if node.stateful => {
                return Err(Error::InvalidJob(format!(
                    "operator '{}' keeps state but has no uid; a checkpointed job matches state to \
                     operators by uid, so give it a stable one with .uid(\"...\")",
                    node.name
                )))
            }
            Some(uid) if !seen.insert(uid.clone()) => {
                return Err(Error::InvalidJob(format!(
                    "uid '{uid}' is used by more than one operator (again by '{}'); uids must be unique",
                    node.name
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Opens the snapshot the job starts from and checks that it fits the job; also returns the
/// newer snapshots skipped to get to it, each with its problem.
fn open_restore(path: &Path, graph: &JobGraph, config: &JobConfig) -> Result<(RestoredState, Vec<String>)> {
    let (reader, skipped) = eddy_state::checkpoint::open_restore_path(path)
        .map_err(|e| Error::Checkpoint(format!("cannot restore from {}: {e}", path.display())))?;
    let restored = RestoredState::from_disk(reader);
    let header = restored.header();
    if header.max_parallelism != config.max_parallelism {
        return Err(Error::Checkpoint(format!(
            "{} was taken with max_parallelism {} but the job has {}; key groups cannot be re-cut, \
             so set set_max_parallelism({})",
            path.display(),
            header.max_parallelism,
            config.max_parallelism,
            header.max_parallelism
        )));
    }
    let uids: BTreeSet<String> = graph.nodes.iter().filter_map(|n| n.uid.clone()).collect();
    let unclaimed: Vec<String> = restored.uids().into_iter().filter(|u| !uids.contains(u)).collect();
    if !unclaimed.is_empty() && !config.allow_non_restored_state {
        return Err(Error::Checkpoint(format!(
            "{} holds state of operators no operator of this job claims (uids: {}); give the \
             operators those uids, or call allow_non_restored_state() to drop that state",
            path.display(),
            unclaimed.join(", ")
        )));
    }
    Ok((restored, skipped))
}
