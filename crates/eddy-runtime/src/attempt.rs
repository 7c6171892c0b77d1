//! An attempt: one run of a job's tasks, from building every subtask (restoring its state
//! when there is a checkpoint) to one thread per chain subtask.
//!
//! The job master builds the first attempt when the job starts and one more after each
//! failure it restarts from; each attempt gets a fresh cancel flag, fresh channels and the
//! next attempt number (which sinks put into their file names, so that nothing of a failed
//! attempt collides with the next one). Building goes sinks first, so that every producer can
//! be handed the channels of its consumers; operators chained into their producer's thread
//! are built as part of that thread's chain.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{unbounded, Receiver, Sender};
use eddy_core::error::panic_message;
use eddy_core::{AlignmentGroups, Error, OperatorInfo, Result};
use eddy_state::QueryRegistry;

use crate::build_context::BuildContext;
use crate::chain_alignment::ChainAlignment;
use crate::checkpoint::coordinator::Coordinator;
use crate::checkpoint::restored::RestoredState;
use crate::checkpoint::task::{CheckpointHooks, Command, Event, TaskCheckpointing};
use crate::config::JobConfig;
use crate::graph::{AnyEnd, JobGraph, NodeInstance, ShipStrategy};
use crate::metrics::MetricRegistry;
use crate::observed::Observers;
use crate::planner::Plan;
use crate::task::{Task, TaskRun};
use crate::task_time::TaskTime;

/// One run of the job's tasks.
pub(crate) struct Attempt {
    pub(crate) cancel: Arc<AtomicBool>,
    /// Tells the attempt's sources to end their input (a drain).
    pub(crate) drain: Arc<AtomicBool>,
    pub(crate) events: Receiver<Event>,
    pub(crate) threads: Vec<JoinHandle<()>>,
    pub(crate) sources: Vec<Sender<Command>>,
    /// The `attempt` span, the parent of its tasks' spans and its checkpoints'.
    pub(crate) span: tracing::Span,
}

impl Attempt {
    pub(crate) fn stop_threads(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }

    pub(crate) fn tell_sources(&self, command: Command) {
        for source in &self.sources {
            let _ = source.send(command);
        }
    }
}

/// Builds and starts attempt `attempt` (0 first, then one more per restart) of the job,
/// restoring from `restored`.
pub(crate) fn build_attempt(job: &Job<'_>, restored: Option<Arc<RestoredState>>, attempt: usize) -> Result<Attempt> {
    let cancel = Arc::new(AtomicBool::new(false));
    let span = tracing::info_span!(parent: job.span, "attempt", attempt);
    tracing::info!(parent: &span, restored = restored.is_some(), "attempt starting");
    let (events, events_in) = unbounded();
    let completed = job.coordinator.map(Coordinator::completed_id);
    let incremental_base = job.coordinator.and_then(Coordinator::incremental_base);
    let wiring = job.config.checkpoint.as_ref().map(|checkpointing| Wiring {
        events: events.clone(),
        mode: checkpointing.mode,
        restored,
        completed: completed.unwrap_or_default(),
        incremental_base,
    });
    let built = build_tasks(job, attempt, &cancel, wiring.as_ref());
    // Every subtask has read its state: close the snapshot (sled locks an open one).
    if let Some(restored) = wiring.as_ref().and_then(|w| w.restored.as_ref()) {
        restored.release();
    }
    let built = built?;
    let drain = Arc::new(AtomicBool::new(false));
    let tick_interval = job.config.buffer_timeout;
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

/// What every attempt of a job is built from: the job master's view of the job.
#[derive(Clone, Copy)]
pub(crate) struct Job<'a> {
    pub(crate) graph: &'a JobGraph,
    pub(crate) plan: &'a Plan,
    pub(crate) config: &'a JobConfig,
    pub(crate) metrics: &'a MetricRegistry,
    pub(crate) queries: &'a QueryRegistry,
    /// The checkpoint coordinator, when the job checkpoints: tasks read the newest
    /// completed checkpoint's id from it.
    pub(crate) coordinator: Option<&'a Coordinator>,
    /// The `job` span, the parent of each attempt's.
    pub(crate) span: &'a tracing::Span,
}

/// Builds every subtask, sinks first so each producer can be handed its consumers.
fn build_tasks(job: &Job<'_>, attempt: usize, cancel: &Arc<AtomicBool>, wiring: Option<&Wiring>) -> Result<Built> {
    let Job { graph, plan, config, metrics, queries, .. } = *job;
    let nodes = graph.nodes.len();
    let inputs_of = |node: usize| graph.edges.iter().enumerate().filter(move |(_, e)| e.to == node);
    let heads = plan.chain_heads(graph);
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
