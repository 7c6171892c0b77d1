//! What a member's tasks run, apart from what every task does the same way.
//!
//! Every task of a distributed job — whatever it computes — is one partition of one
//! sub-topology with its own transactional producer: it reads its partitions (partition `p`
//! of each topic the sub-topology reads) from their committed offsets on, writes through its
//! producer, and every commit interval commits one transaction holding what it wrote and the
//! offsets it read up to ([`crate::task`]). The
//! member around it (consumer, rebalances, fencing, liveness, stand-ins: [`crate::member`])
//! is the same too. What differs is the task's *body*: what it keeps, what it does with a
//! record, and what it files in the checkpoint store before a commit. [`Work`] is that part,
//! and [`GraphWork`](crate::graph_work::GraphWork) does it: a DataStream job graph's
//! sub-topologies, each task an `eddy_runtime::partition_task::PartitionTask`. The seam keeps
//! the membership machinery apart from what a task computes, and lets it be tested alone.

use std::fmt::Debug;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::error::Result;
use crate::task::{transaction_error, Context};

/// One record a task reads from one of its partitions.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// The topic it was read from.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<&'a [u8]>,
    /// Its value (`None`: a null value).
    pub payload: Option<&'a [u8]>,
    /// Its Kafka timestamp, ms since the epoch.
    pub timestamp: Option<i64>,
    /// The value of its [`CONTROL_HEADER`](crate::control::CONTROL_HEADER) header, if it has
    /// one: a producing task's watermark or end of input, not a record.
    pub control: Option<&'a [u8]>,
}

/// Where a task's last commit left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The committed offset: the task reads on from there.
    pub offset: i64,
    /// What its body committed with the offset ([`Work::checkpoint`]'s result).
    pub metadata: String,
}

/// What a job's tasks do beyond what every task does (see the module docs).
pub(crate) trait Work: Send + Sync + Sized + 'static {
    /// Which sub-topology a task runs: with the partition, it names the task.
    type Role: Copy + Ord + Debug + Send + Sync + 'static;
    /// What a task keeps besides its offsets and its producer.
    type Body: Send;

    /// Every topic a member subscribes to: each sub-topology's lead topic (an input or a
    /// repartition topic), by whose partitions the consumer group assigns the tasks.
    fn subscribed(&self) -> Vec<String>;

    /// The topics `role`'s tasks read besides their lead topic (none for most): task `p`
    /// reads partition `p` of each too (see [`crate::member`]).
    fn co_read(&self, _role: Role<Self>) -> &[String] {
        &[]
    }

    /// The sub-topology that reads `topic`.
    fn role_of(&self, topic: &str) -> Role<Self>;

    /// The name of `role`'s tasks (`<application id>-<name>-<partition>` is a task's
    /// transactional id; its checkpoints and `done/` marker are filed under it).
    fn name(&self, role: Role<Self>) -> &str;

    /// Whether tasks reading `topic` commit the consumer's position in it rather than the
    /// offset after the last record they processed (past transaction markers), once they
    /// read a record of it.
    fn skips_markers(&self, topic: &str) -> bool;

    /// Whether `topic` is internal to the job (a repartition topic): the records its tasks
    /// committed past may be deleted.
    fn purges(&self, topic: &str) -> bool;

    /// How many sub-topologies the job has: a bounded run ends once every task of each (one
    /// per partition) is finished.
    fn sub_topologies(&self) -> usize;

    /// The body of `role`'s task `partition` as of its last commit (a fresh one without).
    fn resume(
        cx: &Context<Self>,
        role: Role<Self>,
        partition: i32,
        committed: Option<&Committed>,
    ) -> Result<Self::Body>;

    /// Processes one record, sending what it produces through `out`.
    fn process(cx: &Context<Self>, body: &mut Self::Body, record: &Received<'_>, out: &mut Out<'_>) -> Result<()>;

    /// Processing time passed (every poll of the member): sends what is due through `out`.
    fn tick(_cx: &Context<Self>, _body: &mut Self::Body, _out: &mut Out<'_>) -> Result<()> {
        Ok(())
    }

    /// Before a commit of the task whose read positions are `next_offsets` (each topic it
    /// reads, the lead first): sends what is due (a watermark, an end of input) through
    /// `out`; returns whether it sent anything.
    fn prepare(
        cx: &Context<Self>,
        body: &mut Self::Body,
        partition: i32,
        next_offsets: &[(&str, i64)],
        out: &mut Out<'_>,
    ) -> Result<bool>;

    /// Files the task's state in the checkpoint store for the transaction about to commit
    /// `offset` (the lead topic's), sending whatever must be in that transaction first; returns the metadata
    /// to commit with the offset (what [`resume`](Work::resume) finds the state by).
    fn checkpoint(
        cx: &Context<Self>,
        body: &mut Self::Body,
        partition: i32,
        offset: i64,
        out: &mut Out<'_>,
    ) -> Result<String>;

    /// The transaction holding the checkpoint at `offset` committed.
    fn committed(cx: &Context<Self>, body: &mut Self::Body, offset: i64) -> Result<()>;

    /// Whether the task has done all it will (a bounded run): its `done/` marker is written
    /// once this holds and it is committed.
    fn finished(body: &Self::Body) -> bool;
}

/// A work's role.
pub(crate) type Role<W> = <W as Work>::Role;

/// A task's way out: its producer, in its open transaction (begun on the first send).
pub struct Out<'a> {
    pub(crate) producer: &'a BaseProducer,
    pub(crate) in_transaction: &'a mut bool,
}

impl Out<'_> {
    /// Sends `record` (to `partition`, if given) in the task's transaction, waiting while the
    /// producer's queue is full.
    pub fn send_record(&mut self, mut record: BaseRecord<'_, [u8], [u8]>, partition: Option<i32>) -> Result<()> {
        if !*self.in_transaction {
            let what = || format!("beginning a transaction on {}", record.topic);
            self.producer.begin_transaction().map_err(|e| transaction_error(self.producer, what(), e))?;
            *self.in_transaction = true;
        }
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    self.producer.poll(Duration::from_millis(10));
                    record = returned;
                }
                Err((e, returned)) => {
                    return Err(transaction_error(self.producer, format!("writing to {}", returned.topic), e))
                }
            }
        }
    }

    /// Sends a control record (see [`crate::control`]) with `payload` to `partition` of
    /// `topic`.
    pub fn send_control(&mut self, topic: &str, partition: i32, payload: &[u8]) -> Result<()> {
        let headers = OwnedHeaders::new()
            .insert(rdkafka::message::Header { key: crate::control::CONTROL_HEADER, value: Some(payload) });
        let record = BaseRecord::to(topic).payload(&[][..]).headers(headers);
        self.send_record(record, Some(partition))
    }
}
