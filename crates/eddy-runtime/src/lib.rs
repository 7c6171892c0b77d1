//! eddy's runtime: it takes the [`JobGraph`] the DataStream API built and runs it.
//!
//! - The planner resolves parallelism and partitioning and fuses forward edges into
//!   chains: operators in a chain call each other directly on one thread.
//! - Each chain subtask runs on its own OS thread: a [`source_task::SourceTask`] polls a
//!   source; an input gate drains the bounded channel its upstream subtasks feed, combines
//!   their watermarks and aligns their checkpoint barriers.
//! - A channel writer ends a chain where an edge leaves the thread: it batches records per
//!   target subtask and applies backpressure by blocking on a full channel (while still
//!   honouring cancellation).
//! - [`job::execute`] starts it all under a job master thread and returns a [`JobHandle`] to
//!   wait for, cancel, savepoint or observe.
//! - [`checkpoint`]: barriers from the sources, alignment in the input gates, the coordinator
//!   that completes checkpoints and commits transactional sinks, restarts from the newest one.
//! - Watermark alignment: a source subtask pauses while its watermark runs too far ahead of
//!   its group's ([`eddy_core::watermark_alignment`]); see [`graph::BuildContext::join_alignment`].
//! - Metrics: the planner wraps every operator's input and first output in an
//!   [`observed::Observed`] (records in and out, watermarks), gates, blocked sends and source
//!   polls add their waits to the thread's [`task_time`], and [`operator_metrics`] reads it all
//!   per operator and job on demand, with [`record_rates`] per second, the functions' own
//!   [`user_metrics`] and the [`checkpoint::history`]; [`jobs`] lists an environment's jobs for
//!   an endpoint, and [`explain`] shows a plan without running it.
//! - Distributed runs: [`sub_topology`] cuts a graph at its key_by, rebalance and shuffle
//!   edges into the pieces a task runs, [`distributed_plan`] checks the cut and names its
//!   repartition topics after the edges' [`repartition`] marks, whose [`codec`] turns the
//!   records that cross into bytes; a [`partition_task`] runs one piece for one partition on
//!   its caller's thread, reading and writing the [`topic`]s its consumer group hands it.
//! - Logs: `tracing` spans `job` › `attempt` › `task` / `checkpoint` (with the job's name, the
//!   attempt number, the task's name, the checkpoint's id) around every event the runtime
//!   logs.
//!
//! What an operator or connector builds on is public: the [`graph`] (nodes, edges,
//! [`BuildContext`](graph::BuildContext)), [`edge`] factories, [`source_task`], [`metrics`]
//! and the operator's side of [`checkpoint`] ([`StateContext`](checkpoint::StateContext),
//! [`TxnCommitter`](checkpoint::TxnCommitter)). The planner, gates, channels, partitioners
//! and the master are internal; `docs/architecture.md` in the repository shows how they fit.
//!
//! Users normally reach this crate only through `eddy::StreamEnvironment`.

mod attempt;
mod build_context;
mod chain_alignment;
mod channel;
pub mod checkpoint;
pub mod codec;
mod completion;
pub mod config;
mod counter;
pub mod distributed_plan;
pub mod edge;
pub mod explain;
pub mod fan_out;
mod gate;
pub mod graph;
#[cfg(feature = "tokio")]
pub mod io_runtime;
pub mod job;
mod job_result;
pub mod jobs;
mod master;
pub mod metric_names;
pub mod metrics;
pub mod observed;
pub mod operator_metrics;
pub mod partition_task;
mod partitioner;
mod planner;
pub mod record_rates;
pub mod repartition;
pub mod side_channel;
pub mod source_dead_letters;
pub mod source_task;
pub mod status;
pub mod sub_topology;
pub mod task;
pub mod task_time;
pub mod topic;
pub mod user_metrics;
pub mod warnings;

pub use build_context::DetachedBuild;
pub use checkpoint::{CheckpointConfig, CheckpointingMode, RestartStrategy};
pub use completion::JobCompletion;
pub use config::JobConfig;
pub use graph::{JobGraph, ShipStrategy};
pub use job::{execute, JobHandle};
pub use job_result::JobResult;
pub use jobs::Jobs;
pub use metrics::{Counter, JobMetrics, UnknownMetric};
pub use operator_metrics::{CheckpointStats, JobStats, OperatorMetrics, SubtaskMetrics};
pub use record_rates::RecordRates;
pub use status::JobStatus;
pub use task_time::TimeRates;
pub use warnings::Warnings;
