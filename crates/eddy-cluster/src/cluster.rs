//! The members of this process: [`run_members`] starts them and waits for them; and the
//! metadata and admin calls a start makes (partition counts, end offsets, repartition topics).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::config::ClusterConfig;
use crate::error::{ClusterError, Result};
use crate::member::Summary;
use crate::work::Work;

/// How long a metadata or admin call may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `config.threads` members doing `work` until they all end; returns what they did, or
/// the first error of any member (the others then stop too).
pub(crate) fn run_members<W: Work>(
    work: W,
    config: &ClusterConfig,
    partitions: usize,
    stop: Arc<AtomicBool>,
) -> Result<Summary> {
    let process = Arc::new(Process {
        work: Arc::new(work),
        config: config.clone(),
        partitions,
        stop,
        members: Mutex::new(Vec::new()),
    });
    for i in 0..config.threads {
        let instance = config.instance_id.as_ref().map(|name| format!("{name}-{i}"));
        process.start_member(format!("member#{i}"), instance, false)?;
    }
    // Members may start more members (stand-ins) while they run: join until none is left.
    let mut total = Ok(Summary::default());
    loop {
        let next = process.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let Some(member) = next else { break };
        let outcome = member.join().unwrap_or_else(|_| Err(ClusterError::Config("a member thread panicked".into())));
        total = match (total, outcome) {
            (Ok(total), Ok(summary)) => Ok(Summary {
                tasks_started: total.tasks_started + summary.tasks_started,
                records: total.records + summary.records,
            }),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
    }
    total
}

/// What the members of this process share, and their threads.
pub(crate) struct Process<W> {
    pub(crate) work: Arc<W>,
    pub(crate) config: ClusterConfig,
    /// Partitions of the input topics (and of every repartition topic).
    pub(crate) partitions: usize,
    /// Set on SIGTERM, or when a member fails (the others then stop too).
    pub(crate) stop: Arc<AtomicBool>,
    members: Mutex<Vec<JoinHandle<Result<Summary>>>>,
}

impl<W: Work> Process<W> {
    /// Starts a member thread named `name`, with static membership under `instance` if
    /// given; a `stand_in` joins under a silent member's instance (see `liveness`).
    pub(crate) fn start_member(self: &Arc<Self>, name: String, instance: Option<String>, stand_in: bool) -> Result<()> {
        let process = self.clone();
        let member = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let outcome = crate::member::run(&process, instance, stand_in);
                if outcome.is_err() {
                    process.stop.store(true, Ordering::Relaxed);
                }
                outcome
            })
            .map_err(|e| ClusterError::Config(format!("cannot start a member thread: {e}")))?;
        self.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(member);
        Ok(())
    }
}

fn metadata_consumer(config: &ClusterConfig) -> Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .map_err(ClusterError::kafka("creating a metadata client"))
}

/// The number of partitions of the input topic `topic`.
pub(crate) fn input_partitions(config: &ClusterConfig, topic: &str) -> Result<usize> {
    let consumer = metadata_consumer(config)?;
    let what = format!("reading the metadata of {topic}");
    let metadata = consumer.fetch_metadata(Some(topic), METADATA_TIMEOUT).map_err(ClusterError::kafka(what))?;
    match metadata.topics().first().map(|t| (t.error(), t.partitions().len())) {
        Some((None, n)) if n > 0 => Ok(n),
        _ => Err(ClusterError::Config(format!(
            "the input topic {topic} does not exist (or has no partitions): create it first"
        ))),
    }
}

/// The high watermarks of the input topic `topic` now.
pub(crate) fn end_offsets(config: &ClusterConfig, topic: &str, partitions: usize) -> Result<Vec<i64>> {
    let consumer = metadata_consumer(config)?;
    (0..partitions as i32)
        .map(|p| {
            let what = format!("reading the end offset of {topic} partition {p}");
            consumer
                .fetch_watermarks(topic, p, METADATA_TIMEOUT)
                .map(|(_, high)| high)
                .map_err(ClusterError::kafka(what))
        })
        .collect()
}

/// Creates the repartition topic `topic` unless it exists.
pub(crate) fn create_repartition_topic(config: &ClusterConfig, topic: &str, partitions: usize) -> Result<()> {
    let (admin, runtime) = crate::admin::admin(&config.brokers)?;
    // Kept for ever, as Kafka Streams keeps its repartition topics (`retention.ms` -1): a
    // record's timestamp is its event time, which may be far in the past (replayed history),
    // and the broker's time-based retention would delete it before its task reads it.
    let new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(1)).set("retention.ms", "-1");
    let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
    let what = || format!("creating the repartition topic {topic}");
    let results = runtime.block_on(admin.create_topics([&new], &options)).map_err(ClusterError::kafka(what()))?;
    match results.into_iter().next() {
        Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) | None => Ok(()),
        Some(Err((_, code))) => {
            Err(ClusterError::Kafka { what: what(), source: rdkafka::error::KafkaError::AdminOp(code) })
        }
    }
}
