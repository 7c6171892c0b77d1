//! The taxi job spread over several processes (`eddy-cluster`; a job of your own gets it
//! through eddy's `cluster` feature as `eddy::cluster`): start the same command in as many
//! processes as you like, with the same `--application-id`; the Kafka consumer group shares
//! the trip topic's partitions among them, and the rows in `--pickup-topic` and
//! `--duration-topic` (read them `read_committed`) are those of one process.
//!
//! ```text
//! taxi_analytics --kafka-brokers B --topic T --application-id A --checkpoint-store file:///shared/dir \
//!     [--pickup-topic P] [--duration-topic D] [--parallelism N] [--bounded]
//! ```
//!
//! `--checkpoint-store s3://bucket/prefix --s3-endpoint http://host:port` keeps the state in
//! S3. SIGTERM / Ctrl-C commits, hands this process's tasks back to the group and exits 0.
//!
//! The job is the one-process run's over Kafka ([`kafka::build`]: parse, keep trips inside
//! NYC, then hot spots and airport trips), its results written with exactly-once
//! `sink_to_kafka`s, run with `eddy_cluster::execute_distributed`. It is cut at its two marked
//! `key_by`s, as Kafka Streams cuts a topology: one extract sub-topology feeds two
//! keyed-window sub-topologies, each behind its own repartition topic
//! (`<A>-hot-spots-repartition`, `<A>-airport-trips-repartition`). Event time is the
//! drop-off time; watermarks come from bounded out-of-orderness (`--out-of-orderness-ms`,
//! default 60 s) per partition: the input's watermark events are not used. Records that are
//! not trips and late trips are counted, not written (this mode has no file outputs).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use eddy::prelude::*;

use crate::job::{Options, Tally};
use crate::kafka;
use crate::membership::{self, Membership};

/// The distributed mode's flags.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Run distributed: this process joins the job named A (a Kafka consumer group) with
    /// every other process started with the same A, reads its share of --topic and writes to
    /// --pickup-topic and --duration-topic.
    #[arg(long, value_name = "A", requires_all = ["kafka_brokers", "topic", "checkpoint_store"],
          conflicts_with_all = ["input", "output", "report", "dead_letter", "checkpoint_dir", "restore",
                                "metrics_addr", "es", "s3", "source", "sink"])]
    pub application_id: Option<String>,
    #[command(flatten)]
    pub membership: Membership,
}

/// Bounded out-of-orderness when none is given: the disorder `taxi_replay` generates.
const DEFAULT_OUT_OF_ORDERNESS_MS: u64 = 60_000;

/// The distributed run's settings, from the flags.
pub struct Settings<'a> {
    pub cluster: &'a ClusterArgs,
    pub kafka: &'a crate::kafka::KafkaArgs,
    pub options: Options,
    /// The S3-compatible server of an `s3://` checkpoint store.
    pub s3_endpoint: Option<String>,
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
    config.s3_endpoint = settings.s3_endpoint;
    config.threads = settings.parallelism.unwrap_or(1);
    config.bounded = args.bounded;
    config.commit_interval = Duration::from_millis(settings.checkpoint_interval_ms);

    let mut options = settings.options;
    options.out_of_orderness_ms = Some(options.out_of_orderness_ms.unwrap_or(DEFAULT_OUT_OF_ORDERNESS_MS));
    // Each task reads one partition, so there is nothing for watermark alignment to align.
    options.max_drift_ms = None;
    let env = StreamEnvironment::new();
    let outputs = kafka::build(&env, args, &options, env.parallelism(), Arc::new(Tally::default()))?;
    kafka::write(&outputs, args, true)?;
    // Each task counts what it could not use; a task fails on a dead letter nobody reads.
    let (dead, late) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    count(&outputs.dead_letters, dead.clone());
    count(&outputs.late, late.clone());
    membership::run("taxi analytics", &env, &config)?;
    eprintln!(
        "taxi analytics: {} dead letters, {} late trips here (not written in the distributed mode)",
        dead.load(Ordering::Relaxed),
        late.load(Ordering::Relaxed)
    );
    Ok(())
}

/// Counts `stream`'s records into `into`.
fn count<T: Clone + Send + 'static>(stream: &DataStream<T>, into: Arc<AtomicU64>) {
    stream.for_each(move |_| {
        into.fetch_add(1, Ordering::Relaxed);
    });
}
