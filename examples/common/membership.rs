//! What the examples' distributed modes (`eddy-cluster`) share: the flags of membership in the
//! application's consumer group and of the shared checkpoint store, and running a job until
//! its input ends or SIGTERM.
//!
//! Each example keeps its own `--application-id` flag (which of its other flags it conflicts
//! with is its own) and flattens [`Membership`] next to it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use eddy::prelude::StreamEnvironment;
use eddy_cluster::ClusterConfig;

/// The group-membership and checkpoint-store flags of a distributed run.
#[derive(Args, Debug, Clone)]
pub struct Membership {
    /// Where the distributed job's window state is checkpointed, shared by every process:
    /// `file:///shared/dir` or `s3://bucket/prefix`.
    #[arg(long, value_name = "URL", requires = "application_id")]
    pub checkpoint_store: Option<String>,
    /// The consumer group's session timeout: how long a dead process's tasks wait to move
    /// (with --instance-id, also how long a survivor waits to stand in for a process that
    /// stays silent, on a broker that never drops it).
    #[arg(long, default_value_t = 6000, requires = "application_id",
          value_parser = clap::value_parser!(u64).range(1000..=3_600_000))]
    pub session_timeout_ms: u64,
    /// The longest a member may go between polls (`max.poll.interval.ms`, also the rebalance
    /// timeout: how long a rebalance waits for the members to rejoin).
    #[arg(long, default_value_t = 300_000, requires = "application_id",
          value_parser = clap::value_parser!(u64).range(1000..=3_600_000))]
    pub max_poll_interval_ms: u64,
    /// A stable name for this process (Kafka's static membership): started again under the
    /// same name after a crash, it takes its old place and tasks at once; if it stays dead,
    /// a survivor stands in for it after the session timeout. Use the pod name in a
    /// Kubernetes StatefulSet.
    #[arg(long, value_name = "NAME", requires = "application_id")]
    pub instance_id: Option<String>,
}

impl Membership {
    /// The job's settings: `application_id` on `brokers`, with these flags' store and
    /// membership (the topics are the job's sources' and sinks').
    pub fn config(&self, brokers: &str, application_id: &str) -> ClusterConfig {
        let store = self.checkpoint_store.clone().unwrap_or_default();
        let mut config = ClusterConfig::for_graph(brokers, application_id, store);
        config.session_timeout = Duration::from_millis(self.session_timeout_ms);
        config.max_poll_interval = Duration::from_millis(self.max_poll_interval_ms);
        config.instance_id = self.instance_id.clone();
        config
    }
}

/// Runs this process's share of the job built in `env` (`eddy_cluster::execute_distributed`)
/// until the input ends (`config.bounded`) or SIGTERM / Ctrl-C, which commits and hands the
/// tasks back; says on stderr how it ended.
pub fn run(name: &str, env: &StreamEnvironment, config: &ClusterConfig) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    ctrlc::set_handler(move || on_signal.store(true, Ordering::Relaxed))
        .context("cannot install the SIGTERM / Ctrl-C handler")?;
    let started = Instant::now();
    let summary = eddy_cluster::execute_distributed(env, config, stop.clone())
        .with_context(|| format!("{name} (distributed) failed"))?;
    let why =
        if stop.load(Ordering::Relaxed) { "stopped; tasks handed back" } else { "input ended; all windows committed" };
    eprintln!(
        "{name}: {why} after {:.2} s; {} tasks started here, {} records processed",
        started.elapsed().as_secs_f64(),
        summary.tasks_started,
        summary.records
    );
    Ok(())
}
