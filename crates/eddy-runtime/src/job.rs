//! Running a job: build every subtask, start one thread per chain subtask, and a handle to
//! wait for, cancel, or observe it.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use eddy_core::error::panic_message;
use eddy_core::{Error, OperatorInfo, Result};

use crate::config::JobConfig;
use crate::graph::{AnyEnd, BuildContext, JobGraph, NodeInstance, ShipStrategy, Task, TaskRun};
use crate::metrics::{JobMetrics, MetricRegistry};
use crate::planner::{plan, Plan};

/// A running job.
pub struct JobHandle {
    name: String,
    tasks: Vec<(String, JoinHandle<Result<()>>)>,
    /// Set to stop every subtask: by the user, or by a subtask that failed.
    cancel: Arc<AtomicBool>,
    /// Set only by [`JobHandle::cancel`], so a failure is never reported as a cancellation.
    cancelled_by_user: AtomicBool,
    metrics: MetricRegistry,
    started: Instant,
}

/// What a finished job reports.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// The job's name.
    pub name: String,
    /// Wall time from start to the end of the last subtask.
    pub duration: Duration,
    /// Final counter values.
    pub metrics: JobMetrics,
}

impl JobHandle {
    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Asks every subtask to stop; [`JobHandle::wait`] then returns [`Error::Cancelled`]
    /// (or the job's own failure, if it failed first).
    pub fn cancel(&self) {
        self.cancelled_by_user.store(true, Ordering::Relaxed);
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Whether every subtask has stopped.
    pub fn is_finished(&self) -> bool {
        self.tasks.iter().all(|(_, t)| t.is_finished())
    }

    /// The counters as they are now.
    pub fn metrics(&self) -> JobMetrics {
        self.metrics.snapshot()
    }

    /// Waits for every subtask. On failure returns the root cause: the first error that is
    /// not merely another subtask noticing the failure.
    pub fn wait(self) -> Result<JobResult> {
        let mut errors = Vec::new();
        for (name, task) in self.tasks {
            match task.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e),
                Err(payload) => errors
                    .push(Error::InvalidJob(format!("internal error in task '{name}': {}", panic_message(&payload)))),
            }
        }
        if let Some(root) = errors.iter().position(|e| !e.is_secondary()) {
            return Err(errors.swap_remove(root));
        }
        if self.cancelled_by_user.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        if let Some(first) = errors.into_iter().next() {
            return Err(first);
        }
        Ok(JobResult { name: self.name, duration: self.started.elapsed(), metrics: self.metrics.snapshot() })
    }
}

/// Plans `graph`, builds every subtask and starts the job's threads.
pub fn execute(name: &str, graph: JobGraph, config: JobConfig) -> Result<JobHandle> {
    let plan = plan(&graph, &config)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let metrics = MetricRegistry::default();
    let tasks = build_tasks(&graph, &plan, &config, &cancel, &metrics)?;
    let run = Arc::new(TaskRun { cancel: cancel.clone(), tick_interval: config.buffer_timeout });
    let mut threads = Vec::with_capacity(tasks.len());
    for (thread_name, task) in tasks {
        let run = run.clone();
        let spawned = std::thread::Builder::new().name(thread_name.clone()).spawn(move || run_task(task, &run));
        match spawned {
            Ok(handle) => threads.push((thread_name, handle)),
            Err(e) => {
                // Stop the threads already started rather than leave them running unowned.
                cancel.store(true, Ordering::Relaxed);
                return Err(Error::InvalidJob(format!("cannot start thread '{thread_name}': {e}")));
            }
        }
    }
    let cancelled_by_user = AtomicBool::new(false);
    Ok(JobHandle {
        name: name.to_string(),
        tasks: threads,
        cancel,
        cancelled_by_user,
        metrics,
        started: Instant::now(),
    })
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

/// Builds every subtask, sinks first so each producer can be handed its consumers.
fn build_tasks(
    graph: &JobGraph,
    plan: &Plan,
    config: &JobConfig,
    cancel: &Arc<AtomicBool>,
    metrics: &MetricRegistry,
) -> Result<Vec<(String, Box<dyn Task>)>> {
    let nodes = graph.nodes.len();
    let context = |node: usize, subtask: usize| BuildContext {
        info: OperatorInfo { name: graph.nodes[node].name.clone(), subtask, parallelism: plan.parallelism[node] },
        config,
        metrics,
        cancel,
        side_outputs: RefCell::new(Vec::new()),
    };
    let inputs_of = |node: usize| graph.edges.iter().enumerate().filter(move |(_, e)| e.to == node);
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
    for node in (0..nodes).rev() {
        for subtask in 0..plan.parallelism[node] {
            let ctx = context(node, subtask);
            let mut outputs = Vec::new();
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
                    first.factory.gate(&context(node, subtask), receiver, inputs, head)?
                }
                None => return Err(Error::InvalidJob("internal: subtask built twice".into())),
            };
            tasks.push((thread_name, task));
        }
    }
    Ok(tasks)
}

/// How many upstream subtasks send into each subtask of edge `edge`'s consumer.
fn senders_per_consumer(plan: &Plan, edge: usize, from: usize) -> usize {
    if plan.strategies[edge] == ShipStrategy::Forward {
        1
    } else {
        plan.parallelism[from]
    }
}
