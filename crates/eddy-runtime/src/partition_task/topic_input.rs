//! The head of a cut edge in a partition task: records of the edge's repartition topic,
//! decoded with the edge's codec, pushed into the operator that consumes the edge.
//!
//! Watermarks and the end of input of the producing tasks do not pass through here one by
//! one: the task combines them first (the minimum over all producers, the end once every
//! producer has ended) and hands this input only what changes the combined value.

use std::sync::Arc;

use eddy_core::{Barrier, OperatorInfo, Output, Record, Result, Timestamp};

use crate::codec::RecordCodec;
use crate::graph::{unerase, AnyOutput};
use crate::partition_task::topic_writer::CutTopic;
use crate::topic::TopicRecord;

/// A cut edge's consumer end, with its record type erased.
pub trait TopicInput: Send {
    /// Decodes one record of the repartition topic and passes it on; bytes that do not
    /// decode are an error naming the topic, the partition and the offset.
    fn record(&mut self, record: &TopicRecord<'_>) -> Result<()>;
    /// The combined watermark of the producing tasks has advanced.
    fn watermark(&mut self, watermark: Timestamp) -> Result<()>;
    /// Processing time has advanced.
    fn tick(&mut self, now: Timestamp) -> Result<()>;
    /// A checkpoint barrier: every record before it has been handed in.
    fn barrier(&mut self, barrier: Barrier) -> Result<()>;
    /// Every producing task has ended.
    fn finish(&mut self) -> Result<()>;
}

/// Decodes records of type `T` into the consuming operator.
struct TypedTopicInput<T> {
    topic: Arc<str>,
    codec: RecordCodec<T>,
    consumer: Box<dyn Output<T>>,
    /// The consuming operator, for errors.
    info: OperatorInfo,
    batch: Vec<Record<T>>,
}

/// The input of `topic` for records of type `T`, pushing into `consumer`.
pub(crate) fn topic_input<T: Send + 'static>(
    info: OperatorInfo,
    topic: &CutTopic,
    consumer: AnyOutput,
) -> Result<Box<dyn TopicInput>> {
    Ok(Box::new(TypedTopicInput {
        topic: topic.topic.clone(),
        codec: topic.codec::<T>()?,
        consumer: unerase::<T>(consumer)?,
        info,
        batch: Vec::with_capacity(1),
    }))
}

impl<T: Send + 'static> TopicInput for TypedTopicInput<T> {
    fn record(&mut self, record: &TopicRecord<'_>) -> Result<()> {
        let (topic, partition, offset) = (&self.topic, record.partition, record.offset);
        let where_ = || format!("repartition topic '{topic}' (partition {partition}, offset {offset})");
        let payload =
            record.payload.ok_or_else(|| self.info.error(format!("{} holds a null value, not a record", where_())))?;
        let decoded = self.codec.decode(payload).map_err(|e| self.info.error(format!("{}: {e}", where_())))?;
        self.batch.push(decoded);
        self.consumer.records(&mut self.batch)
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.consumer.watermark(watermark)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.consumer.tick(now)
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.consumer.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        self.consumer.finish()
    }
}
