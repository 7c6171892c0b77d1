//! The word count over several processes (`eddy-cluster`; a job of your own gets it through
//! eddy's `cluster` feature as `eddy::cluster`): start the same command in as many processes
//! as you like, with the same `--application-id`; the Kafka consumer group shares the input
//! partitions among them, and the results in `--output-topic` (read them `read_committed`)
//! are those of one process.
//!
//! ```text
//! word_count --kafka-brokers B --input-topic T --output-topic O --application-id A \
//!     --checkpoint-store file:///shared/dir [--timestamped] [--parallelism P] [--bounded]
//! ```
//!
//! `--checkpoint-store s3://bucket/prefix --s3-endpoint http://host:port` keeps the state in
//! S3 (credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`). `--parallelism P`
//! runs P group members in this process. Without `--timestamped`, a record's event time is
//! its Kafka timestamp (Kafka Streams' default), so windows are event-time windows either way.
//! SIGTERM / Ctrl-C commits, hands this process's tasks back to the group and exits 0.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use eddy_cluster::{ClusterConfig, InputRecord, Keyed, WindowedJob};

use crate::job::{parse_stamped, Tokens, WindowCount, Word};

/// The distributed mode's flags.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Run distributed: this process joins the job named A (a Kafka consumer group) with
    /// every other process started with the same A, and runs its share.
    #[arg(long, value_name = "A", requires_all = ["input_topic", "output_topic", "checkpoint_store"],
          conflicts_with_all = ["input", "output", "exactly_once_output", "checkpoint_dir", "restore",
                                "savepoint_dir", "explain", "state_dir", "metrics_addr"])]
    pub application_id: Option<String>,
    /// Where the distributed job's window state is checkpointed, shared by every process:
    /// `file:///shared/dir` or `s3://bucket/prefix`.
    #[arg(long, value_name = "URL", requires = "application_id")]
    pub checkpoint_store: Option<String>,
    /// The S3 endpoint (`http://host:port`) of an S3-compatible --checkpoint-store.
    #[arg(long, value_name = "URL", requires = "checkpoint_store")]
    pub s3_endpoint: Option<String>,
    /// The consumer group's session timeout: how long a dead process's tasks wait to move.
    #[arg(long, default_value_t = 6000, requires = "application_id",
          value_parser = clap::value_parser!(u64).range(1000..=3_600_000))]
    pub session_timeout_ms: u64,
    /// The longest a member may go between polls (`max.poll.interval.ms`); brokers that
    /// drop dead members by it rather than by the session timeout (noida-db) need it short.
    #[arg(long, default_value_t = 300_000, requires = "application_id",
          value_parser = clap::value_parser!(u64).range(1000..=3_600_000))]
    pub max_poll_interval_ms: u64,
    /// A stable name for this process (Kafka's static membership): started again under the
    /// same name after a crash, it takes its old place and tasks at once. Use the pod name in a
    /// Kubernetes StatefulSet.
    #[arg(long, value_name = "NAME", requires = "application_id")]
    pub instance_id: Option<String>,
}

/// The word count as two sub-topologies: lines → words (keyed by word), then windows.
struct WordCount {
    timestamped: bool,
    window_ms: i64,
    out_of_orderness_ms: i64,
}

impl WindowedJob for WordCount {
    type Key = Word;
    type Value = u64;
    type Accumulator = u64;

    fn window_ms(&self) -> i64 {
        self.window_ms
    }

    fn out_of_orderness_ms(&self) -> i64 {
        self.out_of_orderness_ms
    }

    fn extract(&self, record: &InputRecord<'_>, out: &mut Vec<Keyed<Word, u64>>) {
        // Lines that are not UTF-8, lack the time prefix, or carry a reserved time are
        // skipped, as the one-process run skips them.
        let Ok(line) = std::str::from_utf8(record.payload) else { return };
        let (timestamp, tokens) = match self.timestamped {
            true => match parse_stamped(line.to_string()) {
                Some(stamped) => (stamped.timestamp(), stamped.tokens()),
                None => return,
            },
            false => match record.timestamp {
                Some(timestamp) => (timestamp, Tokens::new(line.to_string(), 0)),
                None => return,
            },
        };
        if timestamp == i64::MIN || timestamp == i64::MAX {
            return;
        }
        out.extend(tokens.map(|word| Keyed { branch: 0, key: word, value: 1, timestamp }));
    }

    fn add(&self, _branch: usize, count: &mut u64, value: u64) {
        *count += value;
    }

    fn format(&self, _branch: usize, word: &Word, start: i64, end: i64, count: &u64) -> Option<Vec<u8>> {
        Some(WindowCount { start, end, word: word.clone(), count: *count }.to_string().into_bytes())
    }
}

/// The distributed run's settings, from the flags.
pub struct Settings<'a> {
    pub cluster: &'a ClusterArgs,
    pub kafka: &'a crate::kafka::KafkaArgs,
    pub timestamped: bool,
    pub window_ms: u64,
    pub out_of_orderness_ms: u64,
    pub parallelism: Option<usize>,
    pub checkpoint_interval_ms: u64,
}

/// Runs this process's share until the input ends (`--bounded`) or SIGTERM.
pub fn run(settings: Settings<'_>) -> anyhow::Result<()> {
    let (cluster, kafka) = (settings.cluster, settings.kafka);
    let mut config = ClusterConfig::new(
        kafka.kafka_brokers.clone().unwrap_or_default(),
        cluster.application_id.clone().unwrap_or_default(),
        kafka.input_topic.clone().unwrap_or_default(),
        kafka.output_topic.clone().unwrap_or_default(),
        cluster.checkpoint_store.clone().unwrap_or_default(),
    );
    config.s3_endpoint = cluster.s3_endpoint.clone();
    config.threads = settings.parallelism.unwrap_or(1);
    config.bounded = kafka.bounded;
    config.session_timeout = std::time::Duration::from_millis(cluster.session_timeout_ms);
    config.max_poll_interval = std::time::Duration::from_millis(cluster.max_poll_interval_ms);
    config.instance_id = cluster.instance_id.clone();
    config.commit_interval = std::time::Duration::from_millis(settings.checkpoint_interval_ms);
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    ctrlc::set_handler(move || on_signal.store(true, Ordering::Relaxed))
        .context("cannot install the SIGTERM / Ctrl-C handler")?;
    let job = WordCount {
        timestamped: settings.timestamped,
        window_ms: settings.window_ms as i64,
        out_of_orderness_ms: settings.out_of_orderness_ms as i64,
    };
    let started = std::time::Instant::now();
    let summary = eddy_cluster::run(job, &config, stop.clone()).context("word count (distributed) failed")?;
    let why =
        if stop.load(Ordering::Relaxed) { "stopped; tasks handed back" } else { "input ended; all windows committed" };
    eprintln!(
        "word count: {why} after {:.2} s; {} tasks started here, {} records processed",
        started.elapsed().as_secs_f64(),
        summary.tasks_started,
        summary.records
    );
    Ok(())
}
