//! `from_kafka`: a stream from a [`KafkaSource`] that a distributed job can also read.

use eddy_stream::{Data, DataStream, StreamEnvironment, WatermarkGenerator, WatermarkStrategy};

use crate::source::KafkaSource;
use crate::topic_reader::KafkaTopicReaders;

/// Adds [`KafkaSourceExt::from_kafka`] to the stream environment.
pub trait KafkaSourceExt {
    /// A stream from `source`, as
    /// [`from_source(source, strategy, name)`](StreamEnvironment::from_source) makes it, with
    /// the mark that lets a distributed job read it (`docs/scale-out.md`): the source's topic,
    /// and how a task turns a record of it into a value with its event time and watermarks
    /// — the source's deserializer, its [`timestamps`](KafkaSource::timestamps) (or the
    /// record timestamp), and `strategy` per partition, as in one process. One-process runs
    /// ignore the mark.
    ///
    /// Only a source of one topic is marked: a distributed job runs one task per partition of
    /// its input topic, so a source of several topics or of a pattern runs in one process
    /// only, and [`StreamEnvironment::distributed_plan`] refuses it.
    ///
    /// ```no_run
    /// use eddy_kafka::{KafkaSource, KafkaSourceExt};
    /// use eddy_stream::prelude::*;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let lines = KafkaSource::builder().brokers("127.0.0.1:9092").topics(["lines"]).build()?;
    /// let env = StreamEnvironment::new();
    /// let lines = env.from_kafka(lines, WatermarkStrategy::monotonous(), "lines");
    /// lines.flat_map(|l: String| l.split(' ').map(String::from).collect::<Vec<_>>()).print();
    /// println!("{}", env.distributed_plan("wc")?); // Source: lines (topic lines) …
    /// # Ok(()) }
    /// ```
    // Named as `from_source` and Flink's `fromSource`: a stream *from* Kafka, made by the
    // environment.
    #[allow(clippy::wrong_self_convention)]
    fn from_kafka<T, G>(&self, source: KafkaSource<T>, strategy: WatermarkStrategy<G>, name: &str) -> DataStream<T>
    where
        T: Data,
        G: WatermarkGenerator<T>;
}

impl KafkaSourceExt for StreamEnvironment {
    fn from_kafka<T, G>(&self, source: KafkaSource<T>, strategy: WatermarkStrategy<G>, name: &str) -> DataStream<T>
    where
        T: Data,
        G: WatermarkGenerator<T>,
    {
        let mark = KafkaTopicReaders::mark(source.spec.clone(), strategy.per_split());
        let stream = self.from_source(source, strategy, name);
        match mark {
            Some(topic) => stream.read_from_topic(topic),
            None => stream,
        }
    }
}
