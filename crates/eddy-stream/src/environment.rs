//! The stream environment: job settings and `execute`. Sources are added to it in
//! [`crate::source`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use eddy_core::{Error, Result};
use eddy_runtime::graph::JobGraph;
use eddy_runtime::{CheckpointConfig, JobConfig, JobHandle, Jobs, RestartStrategy};

/// Where a job is defined and started: holds the settings and the graph being built.
///
/// It is `Send` and cheap to clone (clones share one job being built), so a job can be
/// defined on any thread and held across `.await`s; the streams it hands out are `Send` too.
///
/// ```
/// use eddy_stream::prelude::*;
/// let env = StreamEnvironment::new();
/// env.set_parallelism(2);
/// let out = env.from_collection(vec![1, 2, 3]).map(|x| x * 10).collect();
/// env.execute("tens").unwrap().wait().unwrap();
/// let mut got = out.take();
/// got.sort();
/// assert_eq!(got, vec![10, 20, 30]);
/// ```
#[derive(Clone, Default)]
pub struct StreamEnvironment {
    inner: Arc<Mutex<EnvInner>>,
}

#[derive(Default)]
struct EnvInner {
    graph: JobGraph,
    config: JobConfig,
    /// API misuse found while building, reported by `execute`.
    misuse: Vec<String>,
    /// Where async functions run.
    #[cfg(feature = "tokio")]
    async_runtime: crate::async_runtime::AsyncRuntime,
    /// The jobs started so far, for observers (the metrics endpoint).
    jobs: Jobs,
}

impl StreamEnvironment {
    /// An environment with default settings (parallelism = number of cores, 128 key groups).
    pub fn new() -> Self {
        Self::default()
    }

    /// The job being built. Building never panics while holding it, but a user closure that
    /// panicked elsewhere must not make the environment unusable: a poisoned lock is taken over.
    fn inner(&self) -> MutexGuard<'_, EnvInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the default parallelism of operators that do not set their own.
    pub fn set_parallelism(&self, parallelism: usize) -> &Self {
        self.inner().config.parallelism = parallelism;
        self
    }

    /// The default parallelism.
    pub fn parallelism(&self) -> usize {
        self.inner().config.parallelism
    }

    /// Sets the number of key groups, the upper bound for any operator's parallelism.
    pub fn set_max_parallelism(&self, max_parallelism: usize) -> &Self {
        self.inner().config.max_parallelism = max_parallelism;
        self
    }

    /// Sets how many records go into one batch between subtasks.
    pub fn set_batch_size(&self, records: usize) -> &Self {
        self.inner().config.batch_size = records.max(1);
        self
    }

    /// Sets how long a partly filled batch may wait before it is sent (the latency bound);
    /// it is also how often processing time advances in idle subtasks.
    pub fn set_buffer_timeout(&self, timeout: Duration) -> &Self {
        self.inner().config.buffer_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets how many batches a channel holds before the sender waits (backpressure).
    pub fn set_channel_capacity(&self, batches: usize) -> &Self {
        self.inner().config.channel_capacity = batches.max(1);
        self
    }

    /// Turns the per-operator metrics (records in and out, watermarks, busy / idle /
    /// backpressured time; `JobHandle::metrics`) on or off; on by default. They cost one
    /// atomic add per batch and operator; off is for measuring that.
    pub fn set_operator_metrics(&self, on: bool) -> &Self {
        self.inner().config.operator_metrics = on;
        self
    }

    /// Sets the longest line, in bytes (without its line ending), that the text sources
    /// (`read_text_file`, `stdin_lines`) pass on; default 1 MiB. A longer line is read in
    /// bounded chunks and skipped, never held whole, and goes to the source's dead-letter
    /// output with its file, line number and length.
    pub fn set_max_line_length(&self, bytes: usize) -> &Self {
        self.inner().config.max_line_length = bytes.max(1);
        self
    }

    /// Keeps keyed state — windows, rolling aggregates, process functions' state, and their
    /// timers — in sled databases under `dir` instead of memory, for state larger than
    /// memory (Flink's RocksDB backend). Semantics are the same. Each keyed subtask gets its
    /// own database, removed when the subtask ends; checkpoints are what lasts.
    pub fn set_state_dir(&self, dir: impl Into<std::path::PathBuf>) -> &Self {
        self.inner().config.state_dir = Some(dir.into());
        self
    }

    /// How much of its database each keyed subtask's sled backend caches in memory
    /// (default 64 MiB; see [`set_state_dir`](Self::set_state_dir)). More cache, fewer reads
    /// from disk; the job's memory grows with it times the number of keyed subtasks.
    pub fn set_state_cache_size(&self, bytes: u64) -> &Self {
        self.inner().config.state_cache_bytes = bytes;
        self
    }

    /// Takes checkpoints as `config` says (Flink's `enableCheckpointing`): keyed state, source
    /// positions and sinks' pending transactions are snapshotted consistently, a failed job
    /// restarts from the newest complete checkpoint, and savepoints can be taken. Every
    /// stateful operator (sources, keyed operators, transactional sinks) then needs a `uid`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use eddy_stream::prelude::*;
    /// let env = StreamEnvironment::new();
    /// env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(100)));
    /// let sums = env
    ///     .generate(Some(1_000), |i| (i % 10, i))
    ///     .uid("numbers")
    ///     .key_by(|n| n.0)
    ///     .sum(|n| &mut n.1)
    ///     .uid("sums")
    ///     .collect();
    /// let result = env.execute("sums").unwrap().wait().unwrap();
    /// assert!(result.checkpoints >= 1); // at least the final one, which commits `collect`
    /// let nines = sums.take().into_iter().filter(|n| n.0 == 9).map(|n| n.1).max();
    /// assert_eq!(nines, Some((0..100).map(|i| i * 10 + 9).sum()));
    /// ```
    pub fn enable_checkpointing(&self, config: CheckpointConfig) -> &Self {
        self.inner().config.checkpoint = Some(config);
        self
    }

    /// Sets what happens when a subtask fails (default with checkpointing: 3 restarts, 1 s apart).
    pub fn set_restart_strategy(&self, strategy: RestartStrategy) -> &Self {
        self.inner().config.restart = Some(strategy);
        self
    }

    /// Starts the job from a savepoint, a checkpoint, or a checkpoint directory (its newest
    /// complete, undamaged checkpoint), at any parallelism up to max_parallelism.
    pub fn restore_from(&self, path: impl Into<std::path::PathBuf>) -> &Self {
        self.inner().config.restore_from = Some(path.into());
        self
    }

    /// Lets a restore drop state of operators the job no longer has (Flink's
    /// `--allowNonRestoredState`); without it such a restore is refused.
    pub fn allow_non_restored_state(&self) -> &Self {
        self.inner().config.allow_non_restored_state = true;
        self
    }

    /// Lets a restore start even when a transactional sink already committed output of later
    /// checkpoints that it cannot roll back, so that output appears twice (each such restore
    /// is still reported in [`JobHandle::warnings`]). Without it such a restore is refused
    /// with an error naming the snapshot and the output. Sinks that can roll back (the
    /// exactly-once file sink) do so either way.
    pub fn allow_duplicate_output(&self) -> &Self {
        self.inner().config.allow_duplicate_output = true;
        self
    }

    /// A copy of the current settings.
    pub fn config(&self) -> JobConfig {
        self.inner().config.clone()
    }

    /// Plans and starts the job built so far; the environment is then empty again.
    pub fn execute(&self, name: &str) -> Result<JobHandle> {
        let (graph, config, misuse) = {
            let mut inner = self.inner();
            (std::mem::take(&mut inner.graph), inner.config.clone(), std::mem::take(&mut inner.misuse))
        };
        if !misuse.is_empty() {
            return Err(Error::InvalidJob(misuse.join("; ")));
        }
        if graph.nodes.is_empty() {
            return Err(Error::InvalidJob("the job has no operators; add a source and a sink".into()));
        }
        let job = eddy_runtime::execute(name, graph, config)?;
        self.inner().jobs.add(job.clone());
        Ok(job)
    }

    /// Takes the job built so far, with its settings, for a runtime other than `execute`'s
    /// (the partition tasks of a distributed run, [`eddy_runtime::partition_task`]); the
    /// environment is then empty again. A job built wrongly is refused as `execute` refuses it.
    pub fn take_job(&self) -> Result<(JobGraph, JobConfig)> {
        let mut inner = self.inner();
        if !inner.misuse.is_empty() {
            return Err(Error::InvalidJob(std::mem::take(&mut inner.misuse).join("; ")));
        }
        Ok((std::mem::take(&mut inner.graph), inner.config.clone()))
    }

    /// The plan of the job built so far, as `execute` would run it: its chains, their
    /// parallelism, and how records cross between them (Flink's `explain`). Print it as text
    /// (`{}`), or take `to_dot()` / `to_mermaid()` for a picture. Builds nothing and starts
    /// nothing; the job can still be executed.
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// let env = StreamEnvironment::new();
    /// env.set_parallelism(2);
    /// env.from_collection(vec![1u64, 2, 3]).map(|x| x * 2).key_by(|x| *x % 2).reduce(|a, b| a + b).print();
    /// let plan = env.explain().unwrap();
    /// assert!(plan.to_string().contains("--HASH-->"), "{plan}");
    /// ```
    pub fn explain(&self) -> Result<eddy_runtime::explain::Explained> {
        let inner = self.inner();
        eddy_runtime::explain::Explained::of(&inner.graph, &inner.config)
    }

    /// The job built so far cut for a distributed run of the application `application_id`:
    /// its sub-topologies and the repartition topics between them
    /// (`<application id>-<name>-repartition`), checked and described as Kafka Streams'
    /// `Topology#describe()` does — print it with `{}`. Every `key_by` and `rebalance` must
    /// be marked ([`KeyedStream::repartitioned`](crate::KeyedStream::repartitioned),
    /// [`DataStream::repartition`](crate::DataStream::repartition)); an unmarked one, a
    /// broadcast, or the key_by of a join is refused with an error that names the edge. Every
    /// source must be read from a topic (eddy-kafka's `from_kafka` marks a Kafka source of one
    /// topic); sinks may write a topic (eddy-kafka's `sink_to_kafka`) or run in every task.
    /// Builds nothing and starts nothing; the job can still be executed in one process.
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// let env = StreamEnvironment::new();
    /// env.from_collection(vec!["a".to_string()]).key_by(|w: &String| w.clone()).reduce(|a, _| a).print();
    /// let refused = env.distributed_plan("wc").unwrap_err().to_string();
    /// assert!(refused.contains("the key_by from 'Source: Collection' to 'Reduce' is not marked"), "{refused}");
    /// ```
    pub fn distributed_plan(&self, application_id: &str) -> Result<eddy_runtime::distributed_plan::DistributedPlan> {
        let inner = self.inner();
        if !inner.misuse.is_empty() {
            return Err(Error::InvalidJob(inner.misuse.join("; ")));
        }
        eddy_runtime::distributed_plan::DistributedPlan::of(&inner.graph, application_id)
    }

    /// The jobs this environment has started, oldest first (also those started later: the
    /// list is shared), for observers such as the metrics endpoint.
    pub fn jobs(&self) -> Jobs {
        self.inner().jobs.clone()
    }

    /// Whether `other` is this same environment.
    pub(crate) fn same_as(&self, other: &StreamEnvironment) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Records a mistake in the job's definition; `execute` will refuse the job with it.
    pub(crate) fn report_misuse(&self, message: String) {
        self.inner().misuse.push(message);
    }

    /// Where the job's async functions run.
    #[cfg(feature = "tokio")]
    pub(crate) fn async_runtime(&self) -> crate::async_runtime::AsyncRuntime {
        self.inner().async_runtime.clone()
    }

    pub(crate) fn with_graph<R>(&self, f: impl FnOnce(&mut JobGraph) -> R) -> R {
        f(&mut self.inner().graph)
    }
}
