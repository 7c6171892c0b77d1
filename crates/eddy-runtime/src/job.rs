//! Running a job: check it, build every subtask, start one thread per chain subtask under a
//! job master, and hand back a handle to wait for, cancel, savepoint, or observe it.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::future::IntoFuture;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Sender};
use eddy_core::error::panic_message;
use eddy_core::{AlignmentGroups, Error, OperatorInfo, Result};
use eddy_state::{QueryError, QueryRegistry, QueryableState};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::chain_alignment::ChainAlignment;
use crate::checkpoint::coordinator::{report_skipped, Coordinator, SavepointRequest};
use crate::checkpoint::restored::RestoredState;
use crate::checkpoint::task::{CheckpointHooks, Command, Event, TaskCheckpointing};
use crate::completion::{Completion, JobCompletion};
use crate::config::JobConfig;
use crate::explain::Explained;
use crate::graph::{AnyEnd, BuildContext, JobGraph, NodeInstance, ShipStrategy, Task, TaskRun};
use crate::master::{Attempt, Master};
use crate::metrics::{names, JobMetrics, MetricRegistry};
use crate::observed::Observers;
use crate::planner::{plan, Plan};
use crate::status::{JobStatus, StatusCell};
use crate::task_time::TaskTime;
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

/// What a finished job reports.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// The job's name.
    pub name: String,
    /// Wall time from start to the end of the last subtask.
    pub duration: Duration,
    /// Final counter values (records replayed after a restart count again).
    pub metrics: JobMetrics,
    /// How often the job restarted from a checkpoint after a failure.
    pub restarts: usize,
    /// Checkpoints and savepoints completed (including the final checkpoint).
    pub checkpoints: u64,
    /// The savepoint a stop-with-savepoint wrote.
    pub savepoint: Option<PathBuf>,
    /// What the job met that did not stop it (see [`JobHandle::warnings`]).
    pub warnings: Vec<String>,
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
    metrics.describe(&graph, &plan, &chain_heads(&graph, &plan));
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
    let attempt = build_attempt(&master, restored, 0)?;
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

/// Builds and starts attempt `attempt` (0 first, then one more per restart) of the job,
/// restoring from `restored`.
pub(crate) fn build_attempt(master: &Master, restored: Option<Arc<RestoredState>>, attempt: usize) -> Result<Attempt> {
    let cancel = Arc::new(AtomicBool::new(false));
    let span = tracing::info_span!(parent: &master.span, "attempt", attempt);
    tracing::info!(parent: &span, restored = restored.is_some(), "attempt starting");
    let (events, events_in) = unbounded();
    let completed = master.coordinator.as_ref().map(Coordinator::completed_id);
    let incremental_base = master.coordinator.as_ref().and_then(Coordinator::incremental_base);
    let wiring = master.config.checkpoint.as_ref().map(|checkpointing| Wiring {
        events: events.clone(),
        mode: checkpointing.mode,
        restored,
        completed: completed.unwrap_or_default(),
        incremental_base,
    });
    let job = Job {
        graph: &master.graph,
        plan: &master.plan,
        config: &master.config,
        metrics: &master.metrics,
        queries: &master.queries,
        attempt,
    };
    let built = build_tasks(&job, &cancel, wiring.as_ref());
    // Every subtask has read its state: close the snapshot (sled locks an open one).
    if let Some(restored) = wiring.as_ref().and_then(|w| w.restored.as_ref()) {
        restored.release();
    }
    let built = built?;
    let drain = Arc::new(AtomicBool::new(false));
    let tick_interval = master.config.buffer_timeout;
    let run = Arc::new(TaskRun { cancel: cancel.clone(), drain: drain.clone(), tick_interval });
    let mut threads = Vec::with_capacity(built.tasks.len());
    for (thread_name, task, time) in built.tasks {
        let (run, events) = (run.clone(), events.clone());
        let task_span = tracing::info_span!(parent: &span, "task", task = %thread_name);
        let spawned = std::thread::Builder::new().name(thread_name.clone()).spawn(move || {
            let _task = task_span.enter();
            let entered = time.as_ref().map(|time| time.enter());
            let result = run_task(task, &run);
            drop(entered);
            let _ = events.send(Event::Ended { result });
        });
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                // Stop the threads already started rather than leave them running unowned.
                cancel.store(true, Ordering::Relaxed);
                return Err(Error::InvalidJob(format!("cannot start thread '{thread_name}': {e}")));
            }
        }
    }
    Ok(Attempt { cancel, drain, events: events_in, threads, sources: built.sources, span })
}

fn run_task(task: Box<dyn Task>, run: &TaskRun) -> Result<()> {
    let result = catch_unwind(AssertUnwindSafe(|| task.run(run)))
        .unwrap_or_else(|payload| Err(Error::InvalidJob(format!("internal error: {}", panic_message(&payload)))));
    if result.is_err() {
        // Stop the rest of the job quickly instead of letting it run into closed channels.
        run.cancel.store(true, Ordering::Relaxed);
    }
    result
}

/// What every task of a checkpointed attempt shares.
struct Wiring {
    events: Sender<Event>,
    mode: crate::checkpoint::CheckpointingMode,
    restored: Option<Arc<RestoredState>>,
    completed: Arc<AtomicU64>,
    incremental_base: Option<Arc<AtomicU64>>,
}

/// A task with its thread's name and where its waits are counted (`None`: metrics off).
type NamedTask = (String, Box<dyn Task>, Option<Arc<TaskTime>>);

/// The tasks of an attempt, and the command channels of its source tasks.
struct Built {
    tasks: Vec<NamedTask>,
    sources: Vec<Sender<Command>>,
}

/// The first node of the chain each node runs in.
fn chain_heads(graph: &JobGraph, plan: &Plan) -> Vec<usize> {
    let mut heads: Vec<usize> = (0..graph.nodes.len()).collect();
    for node in 0..graph.nodes.len() {
        let chained_input = graph.edges.iter().zip(&plan.chained).find(|(e, &chained)| chained && e.to == node);
        if let Some((edge, _)) = chained_input {
            heads[node] = heads[edge.from];
        }
    }
    heads
}

/// What every subtask of an attempt is built from.
#[derive(Clone, Copy)]
struct Job<'a> {
    graph: &'a JobGraph,
    plan: &'a Plan,
    config: &'a JobConfig,
    metrics: &'a MetricRegistry,
    queries: &'a QueryRegistry,
    /// The attempt's number: 0 first, then one more per restart.
    attempt: usize,
}

/// Builds every subtask, sinks first so each producer can be handed its consumers.
fn build_tasks(job: &Job<'_>, cancel: &Arc<AtomicBool>, wiring: Option<&Wiring>) -> Result<Built> {
    let Job { graph, plan, config, metrics, queries, attempt } = *job;
    let nodes = graph.nodes.len();
    let inputs_of = |node: usize| graph.edges.iter().enumerate().filter(move |(_, e)| e.to == node);
    let heads = chain_heads(graph, plan);
    let (hooks, sources) = checkpoint_hooks(graph, plan, wiring);
    let alignments = chain_alignments(graph, plan);
    let alignment = |node: usize, subtask: usize| {
        let found = alignments.iter().find(|(head, s, _)| *head == heads[node] && *s == subtask);
        &found.expect("every chain subtask has its alignment").2
    };
    let context = |node: usize, subtask: usize| BuildContext {
        info: OperatorInfo { name: graph.nodes[node].name.clone(), subtask, parallelism: plan.parallelism[node] },
        config,
        metrics,
        cancel,
        side_outputs: RefCell::new(Vec::new()),
        uid: graph.nodes[node].uid.clone(),
        attempt,
        checkpoint: hooks.iter().find(|(head, s, _)| *head == heads[node] && *s == subtask).map(|(_, _, h)| h),
        queries,
        alignment: alignment(node, subtask),
    };
    // One channel per subtask of every node fed by channels.
    let mut senders: Vec<Vec<AnyEnd>> = (0..nodes).map(|_| Vec::new()).collect();
    let mut receivers: Vec<Vec<Option<AnyEnd>>> = (0..nodes).map(|_| Vec::new()).collect();
    for node in 0..nodes {
        if let Some((_, first)) = inputs_of(node).next().filter(|_| plan.is_head(graph, node)) {
            for _ in 0..plan.parallelism[node] {
                let (s, r) = first.factory.channel(config.channel_capacity);
                senders[node].push(s);
                receivers[node].push(Some(r));
            }
        }
    }
    // Each edge's first input index within its consumer's gate.
    let mut input_base = vec![0; graph.edges.len()];
    for node in 0..nodes {
        let mut next = 0;
        for (e, edge) in inputs_of(node) {
            input_base[e] = next;
            next += senders_per_consumer(plan, e, edge.from);
        }
    }
    let mut instances: Vec<Vec<Option<NodeInstance>>> = (0..nodes).map(|_| Vec::new()).collect();
    let cells = |node: usize, subtask: usize| metrics.cells(node, subtask).filter(|_| config.operator_metrics);
    for node in (0..nodes).rev() {
        for subtask in 0..plan.parallelism[node] {
            let ctx = context(node, subtask);
            let mut outputs = Vec::new();
            let mut first_main = true;
            for (e, edge) in graph.edges.iter().enumerate().filter(|(_, e)| e.from == node) {
                let consumer = if plan.chained[e] {
                    match instances[edge.to][subtask].take() {
                        Some(NodeInstance::Operator(head)) => head,
                        _ => return Err(Error::InvalidJob("internal: chained consumer is not an operator".into())),
                    }
                } else {
                    let targets: Vec<&AnyEnd> = match plan.strategies[e] {
                        ShipStrategy::Forward => vec![&senders[edge.to][subtask]],
                        _ => senders[edge.to].iter().collect(),
                    };
                    // A forward edge has one sender per consumer subtask; others have one per producer.
                    let offset = if plan.strategies[e] == ShipStrategy::Forward { 0 } else { subtask };
                    let index = input_base[e] + offset;
                    edge.factory.writer(&ctx, &targets, index, plan.strategies[e])?
                };
                // The producer's records out are counted once, on its first main output.
                let from = (edge.tag.is_none() && std::mem::take(&mut first_main)).then(|| cells(node, subtask));
                let into = plan.chained[e].then(|| cells(edge.to, subtask));
                let observers = Observers { from: from.flatten(), into: into.flatten() };
                let consumer = if observers.any() { edge.factory.observe(consumer, observers)? } else { consumer };
                match &edge.tag {
                    None => outputs.push(consumer),
                    Some(tag) => {
                        ctx.side_outputs.borrow_mut().push((tag.clone(), edge.factory.side_channel(consumer)?))
                    }
                }
            }
            let instance = graph.nodes[node].factory.build(&ctx, outputs)?;
            instances[node].push(Some(instance));
        }
    }
    // A member no source took belongs to an operator that no source can pause for.
    alignments.iter().try_for_each(|(_, _, chain)| chain.check_taken())?;
    let mut tasks = Vec::new();
    for node in 0..nodes {
        if !plan.is_head(graph, node) {
            continue;
        }
        let inputs: usize = inputs_of(node).map(|(e, edge)| senders_per_consumer(plan, e, edge.from)).sum();
        for subtask in 0..plan.parallelism[node] {
            let thread_name = format!("{}#{subtask}", graph.nodes[node].name);
            let task = match instances[node][subtask].take() {
                Some(NodeInstance::Source(task)) => task,
                Some(NodeInstance::Operator(head)) => {
                    let (_, first) = inputs_of(node).next().ok_or_else(|| {
                        Error::InvalidJob(format!("operator '{}' has no input", graph.nodes[node].name))
                    })?;
                    let receiver = receivers[node][subtask].take().expect("one receiver per subtask");
                    let head = match cells(node, subtask) {
                        Some(into) => first.factory.observe(head, Observers { from: None, into: Some(into) })?,
                        None => head,
                    };
                    first.factory.gate(&context(node, subtask), receiver, inputs, head)?
                }
                None => return Err(Error::InvalidJob("internal: subtask built twice".into())),
            };
            let time = cells(node, subtask).map(|cells| cells.time.clone());
            tasks.push((thread_name, task, time));
        }
    }
    Ok(Built { tasks, sources })
}

/// Watermark alignment of every chain subtask `(head node, subtask, alignment)`, all in the
/// same groups: the groups of this attempt, so a restarted job starts them afresh.
fn chain_alignments(graph: &JobGraph, plan: &Plan) -> Vec<(usize, usize, ChainAlignment)> {
    let groups = AlignmentGroups::default();
    let heads = (0..graph.nodes.len()).filter(|&n| plan.is_head(graph, n));
    heads
        .flat_map(|node| (0..plan.parallelism[node]).map(move |subtask| (node, subtask)))
        .map(|(node, subtask)| (node, subtask, ChainAlignment::new(groups.clone())))
        .collect()
}

/// Checkpoint wiring of the chain subtask `(head node, subtask)`.
type ChainHooks = (usize, usize, CheckpointHooks);

/// Checkpoint wiring for every chain subtask, in task order, and the command channels of the
/// source tasks.
fn checkpoint_hooks(graph: &JobGraph, plan: &Plan, wiring: Option<&Wiring>) -> (Vec<ChainHooks>, Vec<Sender<Command>>) {
    let (mut hooks, mut sources) = (Vec::new(), Vec::new());
    let Some(wiring) = wiring else { return (hooks, sources) };
    for node in (0..graph.nodes.len()).filter(|&n| plan.is_head(graph, n)) {
        let is_source = !graph.edges.iter().any(|e| e.to == node);
        for subtask in 0..plan.parallelism[node] {
            let commands = is_source.then(|| {
                let (sender, receiver) = unbounded();
                sources.push(sender);
                receiver
            });
            let task = TaskCheckpointing {
                task: hooks.len(),
                parts: Default::default(),
                events: wiring.events.clone(),
                mode: wiring.mode,
            };
            let hook = CheckpointHooks {
                task,
                restored: wiring.restored.clone(),
                completed: wiring.completed.clone(),
                incremental_base: wiring.incremental_base.clone(),
                commands: RefCell::new(commands),
            };
            hooks.push((node, subtask, hook));
        }
    }
    (hooks, sources)
}

/// How many upstream subtasks send into each subtask of edge `edge`'s consumer.
fn senders_per_consumer(plan: &Plan, edge: usize, from: usize) -> usize {
    if plan.strategies[edge] == ShipStrategy::Forward {
        1
    } else {
        plan.parallelism[from]
    }
}
