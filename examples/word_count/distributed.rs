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

use clap::Args;
use eddy_cluster::{InputRecord, Keyed, WindowedJob};

use crate::job::{parse_stamped, Tokens, WindowCount, Word};
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
    let mut config = cluster.membership.config(
        kafka.kafka_brokers.as_deref().unwrap_or_default(),
        cluster.application_id.as_deref().unwrap_or_default(),
        kafka.input_topic.as_deref().unwrap_or_default(),
        kafka.output_topic.as_deref().unwrap_or_default(),
    );
    config.s3_endpoint = cluster.s3_endpoint.clone();
    config.threads = settings.parallelism.unwrap_or(1);
    config.bounded = kafka.bounded;
    config.commit_interval = std::time::Duration::from_millis(settings.checkpoint_interval_ms);
    let job = WordCount {
        timestamped: settings.timestamped,
        window_ms: settings.window_ms as i64,
        out_of_orderness_ms: settings.out_of_orderness_ms as i64,
    };
    membership::run("word count", job, &config)
}
