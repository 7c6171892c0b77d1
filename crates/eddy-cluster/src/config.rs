//! How a process joins a distributed job: [`ClusterConfig`].

use std::time::Duration;

use crate::error::{ClusterError, Result};

/// Everything a process needs to join a distributed job. Every process of the job is started
/// with the same values (only `threads` may differ).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Kafka bootstrap servers, `host:port[,…]`.
    pub brokers: String,
    /// The job's identity (Kafka Streams' `application.id`): the consumer group, the prefix
    /// of every repartition topic and of every transactional id.
    pub application_id: String,
    /// The shared checkpoint store: `file:///shared/dir` or `s3://bucket/prefix`.
    pub checkpoint_store: String,
    /// The S3 endpoint (`http://host:port`) for an S3-compatible store that is not AWS.
    pub s3_endpoint: Option<String>,
    /// Group members this process runs (Kafka Streams' `num.stream.threads`), at least 1.
    pub threads: usize,
    /// Stop at the input's end offsets (seen once, when the first process starts): the end
    /// travels as a final watermark, every window fires, every process exits.
    pub bounded: bool,
    /// How often each task commits its transaction and checkpoints its state.
    pub commit_interval: Duration,
    /// The consumer group's session timeout: how long a dead process's tasks wait before
    /// they move (the broker drops the dead member; on a broker that never does, such as
    /// noida-db, a survivor stands in for a static member whose liveness lease stood still
    /// this long).
    pub session_timeout: Duration,
    /// The longest a member may take between two polls (`max.poll.interval.ms`, also the
    /// group's rebalance timeout: how long a rebalance waits for the members to rejoin).
    pub max_poll_interval: Duration,
    /// A stable name for this process (Kafka's static membership, `group.instance.id`; each
    /// member thread appends `-<n>`): a process restarted under the same name takes its
    /// place in the group at once, with its tasks, without waiting for the session timeout.
    /// A StatefulSet's pod name is the natural choice. `None`: a new member each start.
    /// With it each member also keeps a liveness lease in the checkpoint store, and the
    /// survivors stand in for a process that stays dead on a broker that never drops it
    /// (see `docs/scale-out.md`).
    pub instance_id: Option<String>,
    /// The number of key groups (fixed for the life of the job, as in one process).
    pub max_parallelism: usize,
    /// How often a member deletes the repartition records its tasks have committed past
    /// (Kafka Streams' `repartition.purge.interval.ms`; see `purge.rs`). Zero: after every
    /// commit.
    pub purge_interval: Duration,
}

impl ClusterConfig {
    /// A configuration for [`execute_distributed`](crate::execute_distributed), which takes
    /// its topics from the job's Kafka sources and sinks, with the defaults: one thread,
    /// unbounded, commits every second, a 6 s session timeout, a 300 s poll interval
    /// (Kafka's), 128 key groups, consumed repartition records deleted every 30 s (Kafka
    /// Streams').
    pub fn for_graph(
        brokers: impl Into<String>,
        application_id: impl Into<String>,
        checkpoint_store: impl Into<String>,
    ) -> Self {
        ClusterConfig {
            brokers: brokers.into(),
            application_id: application_id.into(),
            checkpoint_store: checkpoint_store.into(),
            s3_endpoint: None,
            threads: 1,
            bounded: false,
            commit_interval: Duration::from_secs(1),
            session_timeout: Duration::from_secs(6),
            max_poll_interval: Duration::from_secs(300),
            instance_id: None,
            max_parallelism: eddy_core::key::DEFAULT_MAX_PARALLELISM,
            purge_interval: Duration::from_secs(30),
        }
    }

    /// Refuses settings that cannot work, saying what to change.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: &str| Err(ClusterError::Config(message.to_string()));
        if self.application_id.is_empty()
            || !self.application_id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return bad("the application id must be non-empty and use only letters, digits, `.`, `_` and `-` (it names Kafka topics)");
        }
        if self.threads == 0 {
            return bad("threads must be at least 1");
        }
        if self.commit_interval.is_zero() {
            return bad("the commit interval must be positive");
        }
        Ok(())
    }
}
