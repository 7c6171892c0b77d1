//! The marks that let a distributed job read a source node's records from a topic and write
//! a sink node's records to one, and the outbox a partition task's writers fill.
//!
//! In one process, a source node runs its own reader (a Kafka consumer, a file) and a sink
//! node its own writer. A distributed job (`docs/scale-out.md`) runs each sub-topology as
//! tasks, one per partition, inside a consumer group: the group's consumer reads the input
//! topic and hands each record to the task of its partition, and the task's transactional
//! producer writes what the task produced, so the input offsets and the output commit in one
//! transaction. For that, a source node carries an [`InputTopic`] — the topic, and how a
//! record of it becomes a typed record with its event time and watermarks — and a sink node
//! an [`OutputTopic`] — the topic, and how a typed record becomes a Kafka record. A connector
//! sets both where it knows them (eddy-kafka's source and sink); one-process runs never look
//! at them.
//!
//! Whatever a task writes — records of cut edges and output topics, and the watermarks and
//! end of input that cross cut edges — goes into its [`Outbox`]; the task drains it into its
//! producer.

use std::sync::{Arc, Mutex};

use eddy_core::{Barrier, Result, Timestamp};

use crate::build_context::BuildContext;
use crate::graph::AnyOutput;

/// One record of a topic partition, as a distributed task hands it to a source node.
#[derive(Debug, Clone, Copy)]
pub struct TopicRecord<'a> {
    /// The partition it was read from.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// Its key, if it has one.
    pub key: Option<&'a [u8]>,
    /// Its value (`None`: a null value, a tombstone).
    pub payload: Option<&'a [u8]>,
    /// Its Kafka timestamp (create or log-append time), ms since the epoch.
    pub timestamp: Option<i64>,
}

/// A source node's reader of one topic partition in a distributed task: it turns records
/// into typed records, assigns their event time and generates watermarks as the source's
/// watermark strategy says, and passes them to the node's consumers.
pub trait TopicReader: Send {
    /// Decodes one record and passes it on. A record that does not decode goes to the
    /// source's dead letters, or fails the task when the source has none.
    fn record(&mut self, record: &TopicRecord<'_>) -> Result<()>;
    /// Processing time has advanced to `now`: passes on what is buffered and the watermark
    /// the strategy allows now (idleness included).
    fn tick(&mut self, now: Timestamp) -> Result<()>;
    /// A checkpoint barrier: every record before it has been handed in. Pass it on to the
    /// consumers; after [`finish`](Self::finish) the task sends `Barrier::FINAL` here too,
    /// to collect what they still hold.
    fn barrier(&mut self, barrier: Barrier) -> Result<()>;
    /// The partition's input has ended (a bounded run reached the end offset seen at start):
    /// emits the final watermark and finishes the node's consumers.
    fn finish(&mut self) -> Result<()>;
}

/// Builds a source node's [`TopicReader`]s.
pub trait TopicReaderFactory: Send + Sync {
    /// The reader of the task `ctx` describes, sending to `outputs` (one erased
    /// `Box<dyn Output<T>>` per consumer of the node, as [`NodeFactory::build`](crate::graph::NodeFactory::build) gets).
    fn build(&self, ctx: &BuildContext, outputs: Vec<AnyOutput>) -> Result<Box<dyn TopicReader>>;
}

/// The mark on a source node that a distributed job reads from a topic.
#[derive(Clone)]
pub struct InputTopic {
    /// The topic; its partition count is the number of tasks of the node's sub-topology.
    pub topic: String,
    /// Builds each task's reader.
    pub reader: Arc<dyn TopicReaderFactory>,
}

impl std::fmt::Debug for InputTopic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputTopic").field("topic", &self.topic).finish_non_exhaustive()
    }
}

/// Builds the input end of a sink node in a distributed task.
pub trait TopicWriterFactory: Send + Sync {
    /// An erased `Box<dyn Output<T>>` of the sink's record type that turns each record into
    /// an [`OutRecord`] for `topic` and puts it into `outbox`.
    fn build(&self, ctx: &BuildContext, topic: Arc<str>, outbox: Outbox) -> Result<AnyOutput>;
}

/// The mark on a sink node that a distributed job writes to a topic, in the transaction of
/// the task that produced the records.
#[derive(Clone)]
pub struct OutputTopic {
    /// The topic.
    pub topic: String,
    /// Builds each task's writer.
    pub writer: Arc<dyn TopicWriterFactory>,
}

impl std::fmt::Debug for OutputTopic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputTopic").field("topic", &self.topic).finish_non_exhaustive()
    }
}

/// A record for a topic, as a task's producer sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition (a cut keyed edge's: its key's key group's); `None`: the producer's
    /// partitioner picks one by key.
    pub partition: Option<i32>,
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value.
    pub payload: Vec<u8>,
    /// The timestamp, ms since the epoch.
    pub timestamp: Option<i64>,
}

/// What a task's writers hand to its producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A record.
    Record(OutRecord),
    /// The producing task's watermark on a cut edge, for every partition of `topic`: a task
    /// reading the topic takes the minimum over the producing tasks.
    Watermark {
        /// The repartition topic.
        topic: Arc<str>,
        /// The watermark.
        watermark: Timestamp,
    },
    /// The producing task's input has ended, for every partition of `topic` (a bounded run).
    End {
        /// The repartition topic.
        topic: Arc<str>,
    },
}

/// Where a task's writers put what they produce, in order; the task drains it into its
/// producer. Writers of one task share it (they run on the task's thread, so the lock is
/// never contended).
#[derive(Debug, Clone, Default)]
pub struct Outbox(Arc<Mutex<Vec<Outgoing>>>);

impl Outbox {
    /// Appends `items`, in order.
    pub fn extend(&self, items: impl IntoIterator<Item = Outgoing>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend(items);
    }

    /// Appends one item.
    pub fn push(&self, item: Outgoing) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(item);
    }

    /// Takes everything put in since the last call.
    pub fn take(&self) -> Vec<Outgoing> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
