//! The word count over Kafka: each record value of the input topic is one input line, and
//! each result row goes to the output topic as one record value (`eddy-kafka`; a job of
//! your own gets it through eddy's `kafka` feature as `eddy::kafka`).

use anyhow::{bail, Context};
use clap::Args;
use eddy::core::time::NO_TIMESTAMP;
use eddy::prelude::*;
use eddy_kafka::{
    DeliveryGuarantee, Deserializer, KafkaRecord, KafkaSink, KafkaSinkExt, KafkaSource, KafkaSourceExt, Utf8,
};

use crate::job::{parse_stamped, WindowCount};

/// The Kafka flags.
#[derive(Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (`host:port[,…]`) for --input-topic and --output-topic.
    #[arg(long)]
    pub kafka_brokers: Option<String>,
    /// Read lines from this topic (one line per record value) instead of --input.
    #[arg(long, requires = "kafka_brokers", conflicts_with = "input")]
    pub input_topic: Option<String>,
    /// With --input-topic: stop at the end offsets seen at start, fire every window, exit.
    #[arg(long, requires = "input_topic")]
    pub bounded: bool,
    /// Write each result row to this topic; exactly-once with --checkpoint-dir, else at least once.
    #[arg(long, requires = "kafka_brokers", conflicts_with_all = ["output", "exactly_once_output"])]
    pub output_topic: Option<String>,
}

impl KafkaArgs {
    /// Refuses flags that would be silently ignored.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.kafka_brokers.is_some() && self.input_topic.is_none() && self.output_topic.is_none() {
            bail!("--kafka-brokers is given but neither --input-topic nor --output-topic: say which topic to use");
        }
        Ok(())
    }
}

/// Where the lines of a topic get their event time.
pub enum LineTime {
    /// Each line's `<epoch_ms>\t` prefix, with the strategy's watermarks.
    Prefix(WatermarkStrategy),
    /// Each record's Kafka timestamp (Kafka Streams' default), with the strategy's watermarks.
    Record(WatermarkStrategy),
    /// None: the job runs in processing time.
    Processing,
}

/// The lines of topic `topic`, read with `from_kafka` (so a distributed run reads the same
/// source, one task per partition). With event time, the strategy's watermarks are generated
/// per partition inside the source, so partitions read in bursts never make each other's
/// records late; aligned (one process), a partition far ahead of the others is paused until
/// they catch up.
pub fn lines(
    env: &StreamEnvironment,
    args: &KafkaArgs,
    topic: &str,
    time: LineTime,
) -> anyhow::Result<DataStream<String>> {
    let mut builder = KafkaSource::builder().brokers(args.kafka_brokers.clone().unwrap_or_default()).topics([topic]);
    if args.bounded {
        builder = builder.bounded();
    }
    let lines = match time {
        LineTime::Prefix(strategy) => {
            // A line without its time prefix is refused by the source: a dead letter, counted
            // and named with the other skipped lines.
            let source = builder
                .deserializer(|record: &KafkaRecord<'_>| -> Result<String, BoxError> {
                    let line = Utf8.deserialize(record)?;
                    match parse_stamped(line.clone()) {
                        Some(_) => Ok(line),
                        None => Err("no `<epoch_ms>` and tab before the text".into()),
                    }
                })
                .build()
                .context("the Kafka input")?
                .timestamps(|line: &String| parse_stamped(line.clone()).map_or(NO_TIMESTAMP, |s| s.timestamp()))?;
            env.from_kafka(source, strategy, topic)
        }
        LineTime::Record(strategy) => env.from_kafka(builder.build().context("the Kafka input")?, strategy, topic),
        LineTime::Processing => {
            let source = builder.build().context("the Kafka input")?;
            env.from_kafka(source, WatermarkStrategy::no_watermarks(), topic)
        }
    };
    Ok(lines)
}

/// Writes `counts` to `topic`, exactly-once when the job takes checkpoints to disk.
pub fn write(
    counts: &DataStream<WindowCount>,
    args: &KafkaArgs,
    topic: &str,
    exactly_once: bool,
) -> anyhow::Result<StreamSink> {
    let delivery = if exactly_once { DeliveryGuarantee::ExactlyOnce } else { DeliveryGuarantee::AtLeastOnce };
    let sink = KafkaSink::builder()
        .brokers(args.kafka_brokers.clone().unwrap_or_default())
        .topic(topic)
        .delivery(delivery)
        .transactional_id_prefix(format!("eddy-word-count-{topic}"))
        .build()
        .context("the Kafka output")?;
    Ok(counts.sink_to_kafka(sink))
}
