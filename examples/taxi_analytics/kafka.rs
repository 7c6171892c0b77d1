//! The taxi job over Kafka: trips read from a topic (watermarks per partition, inside the
//! source) and results written to two topics exactly-once. `eddy-kafka` here; a job of your
//! own gets it through eddy's `kafka` feature as `eddy::kafka`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use eddy::prelude::*;
use eddy_kafka::{DeliveryGuarantee, KafkaRecord, KafkaSink, KafkaSinkExt, KafkaSource, KafkaSourceExt};

use crate::job::{self, Format, Options, Outputs, Parsed, Tally};

/// Where records come from or go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Endpoint {
    /// Files (`--input`, `--output`).
    #[default]
    File,
    /// Kafka topics (`--kafka-brokers`, `--topic`, `--pickup-topic`, `--duration-topic`).
    Kafka,
}

/// The Kafka flags of taxi_analytics.
#[derive(Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Read trips from files or from a Kafka topic.
    #[arg(long, value_enum, default_value_t = Endpoint::File)]
    pub source: Endpoint,
    /// Write the two result streams to files or to Kafka topics (exactly-once).
    #[arg(long, value_enum, default_value_t = Endpoint::File)]
    pub sink: Endpoint,
    /// Kafka bootstrap servers (`host:port[,…]`).
    #[arg(long)]
    pub kafka_brokers: Option<String>,
    /// With `--source kafka`: the topic of JSON trip and watermark events.
    #[arg(long)]
    pub topic: Option<String>,
    /// With `--source kafka`: stop at the end offsets seen at start.
    #[arg(long)]
    pub bounded: bool,
    /// With `--sink kafka`: the topic of hot-spot results.
    #[arg(long, default_value = "pickup_count")]
    pub pickup_topic: String,
    /// With `--sink kafka`: the topic of airport-duration results.
    #[arg(long, default_value = "trip_duration")]
    pub duration_topic: String,
}

impl KafkaArgs {
    /// Refuses combinations that cannot work, saying what to add or drop.
    pub fn validate(&self, input: Option<&str>, csv: bool, report: bool) -> anyhow::Result<()> {
        let kafka = self.source == Endpoint::Kafka || self.sink == Endpoint::Kafka;
        if kafka && self.kafka_brokers.is_none() {
            bail!("--source kafka and --sink kafka need --kafka-brokers host:port");
        }
        if self.sink == Endpoint::Kafka && report {
            bail!("--report is drawn from the result files, which --sink kafka does not write: drop one");
        }
        if self.source == Endpoint::Kafka {
            if self.topic.is_none() {
                bail!("--source kafka needs --topic: the topic the replayer writes (taxi_replay --topic)");
            }
            if input.is_some() {
                bail!("--input and --source kafka exclude each other: drop one");
            }
            if csv {
                bail!("--source kafka reads JSON events (taxi_replay writes them); drop --format tlc-csv");
            }
        } else if self.topic.is_some() || self.bounded {
            bail!("--topic and --bounded are for --source kafka");
        }
        Ok(())
    }

    fn brokers(&self) -> String {
        self.kafka_brokers.clone().unwrap_or_default()
    }
}

/// The job over the topic: each record is parsed in the source, so the watermark events of
/// each partition drive that partition's watermark; the subtask's is the minimum. Records
/// that are not events are the source's dead letters. Read with `from_kafka`, so the
/// distributed run builds the same job (one task per partition).
pub fn build(
    env: &StreamEnvironment,
    args: &KafkaArgs,
    options: &Options,
    parallelism: usize,
    tally: Arc<Tally>,
) -> anyhow::Result<Outputs> {
    let topic = args.topic.clone().unwrap_or_default();
    let mut builder = KafkaSource::builder().brokers(args.brokers()).topics([topic.as_str()]);
    if args.bounded {
        builder = builder.bounded();
    }
    let source = builder
        // A record that is no event has no event time either, so it cannot enter the job: it
        // is refused here and becomes a dead letter with its bytes and the reason.
        .deserializer(|r: &KafkaRecord<'_>| -> Result<Parsed, BoxError> {
            let line = String::from_utf8_lossy(r.payload().unwrap_or_default()).into_owned();
            match job::parse_line(line, &Format::Json) {
                Parsed::Dead(dead) => Err(dead.reason.into()),
                Parsed::Skip => Err("an empty record: expected a JSON trip or watermark event".into()),
                event => Ok(event),
            }
        })
        .build()
        .context("the Kafka input")?
        .timestamps(Parsed::time)?;
    // Aligned as the file job is, per partition: one far ahead in event time is paused.
    let parsed = match options.out_of_orderness_ms {
        Some(bound) => {
            let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(bound));
            env.from_kafka(source, job::aligned(strategy, options), &topic)
        }
        None => {
            let strategy = WatermarkStrategy::for_generator(job::watermark_events());
            env.from_kafka(source, job::aligned(strategy, options), &topic)
        }
    }
    .uid("trips");
    Ok(job::analyse(&parsed, &parsed, job::unreadable(&parsed), parallelism, options, tally))
}

/// Writes both result streams as JSON documents to their topics, exactly-once when the job
/// takes checkpoints (read them with `isolation.level=read_committed`).
pub fn write(outputs: &Outputs, args: &KafkaArgs, exactly_once: bool) -> anyhow::Result<()> {
    let delivery = if exactly_once { DeliveryGuarantee::ExactlyOnce } else { DeliveryGuarantee::AtLeastOnce };
    let pickups = KafkaSink::builder()
        .brokers(args.brokers())
        .topic(&args.pickup_topic)
        .serializer(eddy_kafka::JsonValue)
        .delivery(delivery.clone())
        .transactional_id_prefix(format!("eddy-taxi-{}", args.pickup_topic))
        .build()
        .context("the Kafka output")?;
    outputs.pickups.sink_to_kafka(pickups).name(&sink_name(&args.pickup_topic)).uid("pickup-sink");
    let durations = KafkaSink::builder()
        .brokers(args.brokers())
        .topic(&args.duration_topic)
        .serializer(eddy_kafka::JsonValue)
        .delivery(delivery)
        .transactional_id_prefix(format!("eddy-taxi-{}", args.duration_topic))
        .build()
        .context("the Kafka output")?;
    outputs.durations.sink_to_kafka(durations).name(&sink_name(&args.duration_topic)).uid("duration-sink");
    Ok(())
}

/// The display name of the sink writing `topic` (its metrics are filed under it).
pub fn sink_name(topic: &str) -> String {
    format!("Sink: Kafka {topic}")
}
