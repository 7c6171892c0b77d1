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
//!
//! The job is the one-process run's ([`job::word_counts`]), built on the topic's lines read
//! with `from_kafka` and written with an exactly-once `sink_to_kafka`, and run with
//! `eddy_cluster::execute_distributed`: it is cut at the marked `key_by` word into two
//! sub-topologies joined by the repartition topic `<A>-window-repartition`.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use clap::Args;
use eddy::prelude::*;

use crate::job::{self, Options};
use crate::kafka::{self, LineTime};
use crate::membership::{self, Membership};

/// The distributed mode's flags.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Run distributed: this process joins the job named A (a Kafka consumer group) with
    /// every other process started with the same A, and runs its share.
    #[arg(long, value_name = "A", requires_all = ["input_topic", "output_topic", "checkpoint_store"],
          conflicts_with_all = ["input", "output", "exactly_once_output", "checkpoint_dir", "restore",
                                "savepoint_dir", "explain", "state_dir", "metrics_addr"])]
    pub application_id: Option<String>,
    /// The S3 endpoint (`http://host:port`) of an S3-compatible --checkpoint-store.
    #[arg(long, value_name = "URL", requires = "checkpoint_store")]
    pub s3_endpoint: Option<String>,
    #[command(flatten)]
    pub membership: Membership,
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
    let (cluster, args) = (settings.cluster, settings.kafka);
    let mut config = cluster.membership.config(
        args.kafka_brokers.as_deref().unwrap_or_default(),
        cluster.application_id.as_deref().unwrap_or_default(),
    );
    config.s3_endpoint = cluster.s3_endpoint.clone();
    config.threads = settings.parallelism.unwrap_or(1);
    config.bounded = args.bounded;
    config.commit_interval = std::time::Duration::from_millis(settings.checkpoint_interval_ms);

    let env = StreamEnvironment::new();
    // Each task reads one partition, so the sources' watermark alignment has nothing to align.
    let strategy = job::watermark_strategy(settings.out_of_orderness_ms, None);
    let time = match settings.timestamped {
        true => LineTime::Prefix(strategy),
        false => LineTime::Record(strategy),
    };
    let topic = args.input_topic.as_deref().unwrap_or_default();
    let lines = kafka::lines(&env, args, topic, time)?.uid("lines");
    // Lines the source refuses (no time prefix, not UTF-8) are skipped and reported, as in
    // one process; a task fails on a refused record nobody reads.
    let malformed = Arc::new(AtomicU64::new(0));
    let reasons = lines
        .dead_letters::<RawRecord>()
        .map(|letter| format!("{}, {}: {}", letter.input.split, letter.input.position, letter.error));
    job::report_skipped(&reasons, malformed.clone());
    let options = Options {
        timestamped: settings.timestamped,
        window_ms: settings.window_ms,
        out_of_orderness_ms: settings.out_of_orderness_ms,
        max_drift_ms: None,
        stamped_by_source: true,
    };
    let counts = job::word_counts(&lines, &options, malformed).uid("counts");
    let output = args.output_topic.as_deref().unwrap_or_default();
    kafka::write(&counts, args, output, true)?.uid("output");
    membership::run("word count", &env, &config)
}
