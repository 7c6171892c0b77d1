//! A task: one partition of one sub-topology, with its own transactional producer.
//!
//! What a task computes is its [`Work`]'s body (a DataStream graph's partition task: see
//! [`GraphWork`](crate::graph_work::GraphWork)); what every task does the same way is here:
//! it reads its partitions — partition `p` of each topic its sub-topology reads, its
//! *partition group*, the lead topic's first — each from its committed offset on, skipping
//! what it read before a restart, and commits on its own, every commit interval. In one Kafka
//! transaction of its own producer (`transactional.id = <application.id>-<name>-<partition>-<n>`,
//! its [incarnation](crate::incarnation) `n`) go the records it wrote and the offsets it read
//! up to in every partition of its group (`send_offsets_to_transaction` with the consumer
//! group's metadata, each with the body's checkpoint metadata; a restart reads the lead's),
//! so the input consumed and the output produced commit together or not at all. Its body files its state
//! in the checkpoint store under that offset first. When a task starts elsewhere, it fences
//! the previous incarnation (aborting what the old owner left open: a zombie can no longer
//! commit) and writes as the next.

use std::time::{Duration, Instant};

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer, PurgeConfig};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{ClusterError, Result};
use crate::incarnation::TRANSACTION_TIMEOUT;
use crate::store::CheckpointStore;
use crate::work::{Committed, Out, Received, Role, Work};

/// How long dropping a task may wait for its transaction's abort.
const ABORT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a member's tasks share: the work, the names, where state goes.
pub struct Context<W> {
    pub(crate) work: std::sync::Arc<W>,
    pub(crate) application_id: String,
    pub(crate) brokers: String,
    /// Partitions of the input topics (= of each repartition topic, = tasks per sub-topology).
    pub(crate) partitions: usize,
    pub(crate) store: CheckpointStore,
}

/// One partition of one sub-topology.
pub struct Task<W: Work> {
    role: Role<W>,
    partition: i32,
    /// Where it is in each topic's partition `partition`, the lead topic's first.
    inputs: Vec<Input>,
    producer: BaseProducer,
    in_transaction: bool,
    /// Whether anything happened since the last commit.
    dirty: bool,
    /// When it started, until its first commit (logged: how long a moved task takes to run).
    started: Option<Instant>,
    /// Whether its `done/` marker is written.
    marked_done: bool,
    body: W::Body,
}

/// A task's read position in one topic of its partition group.
struct Input {
    topic: String,
    /// The offset after the last record processed.
    next_offset: i64,
    /// The committed offset, from which the task started or last committed.
    committed: Option<i64>,
    /// Whether the task has processed a record of this partition since it started.
    read_any: bool,
}

impl<W: Work> Task<W> {
    /// The producer of a new incarnation of `role`'s task `partition`: the previous owner is
    /// fenced, its open transaction aborted. Read the task's committed offset after this
    /// (the fencing aborted any offsets the previous owner left pending), then
    /// [`resume`](Task::resume).
    pub fn incarnate(cx: &Context<W>, role: Role<W>, partition: i32) -> Result<BaseProducer> {
        let task = format!("{}-{}-{partition}", cx.application_id, cx.work.name(role));
        crate::incarnation::start(&cx.brokers, &cx.store, &task)
    }

    /// Starts `role`'s task of `partition`, writing with `producer` (from
    /// [`incarnate`](Task::incarnate)), from its last commit: `committed` holds each topic
    /// it reads (the lead topic first) with that topic's committed offset. Restores its
    /// state from the checkpoint the lead's commit names (one transaction committed them
    /// all, with the same metadata).
    pub fn resume(
        cx: &Context<W>,
        role: Role<W>,
        partition: i32,
        producer: BaseProducer,
        committed: Vec<(String, Option<Committed>)>,
    ) -> Result<Self> {
        let lead = committed.first().and_then(|(_, c)| c.as_ref());
        let body = W::resume(cx, role, partition, lead)?;
        let inputs = committed
            .into_iter()
            .map(|(topic, committed)| {
                let committed = committed.map(|c| c.offset);
                Input { topic, next_offset: committed.unwrap_or(0), committed, read_any: false }
            })
            .collect();
        let mut task = Task {
            role,
            partition,
            inputs,
            producer,
            in_transaction: false,
            dirty: false,
            started: Some(Instant::now()),
            marked_done: false,
            body,
        };
        task.mark_done_if_finished(cx)?;
        Ok(task)
    }

    /// The lead topic: the one the consumer group assigned the task by.
    pub fn lead(&self) -> &str {
        &self.inputs[0].topic
    }

    /// The offsets the task last committed, by topic and partition (none before its first
    /// commit): one per topic of its partition group.
    pub fn committed_offsets(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        let partition = self.partition;
        self.inputs
            .iter()
            .filter_map(move |input| input.committed.map(|offset| (input.topic.as_str(), partition, offset)))
    }

    /// Each topic the task reads (partition `partition` of it), with where the consumer
    /// starts reading it.
    pub fn start_offsets(&self) -> impl Iterator<Item = (&str, Offset)> {
        self.inputs
            .iter()
            .map(|input| (input.topic.as_str(), input.committed.map_or(Offset::Beginning, Offset::Offset)))
    }

    /// Processes `record` (one read again after a restart is skipped).
    pub fn process(&mut self, cx: &Context<W>, record: &Received<'_>) -> Result<()> {
        // The consumer reads only the partitions of the task's group: no other topic comes.
        let Some(input) = self.inputs.iter_mut().find(|input| input.topic == record.topic) else { return Ok(()) };
        if record.offset < input.next_offset {
            return Ok(());
        }
        input.next_offset = record.offset + 1;
        input.read_any = true;
        self.dirty = true;
        let mut out = Out { producer: &self.producer, in_transaction: &mut self.in_transaction };
        W::process(cx, &mut self.body, record, &mut out)
    }

    /// Processing time passed: sends what the body has due.
    pub fn tick(&mut self, cx: &Context<W>) -> Result<()> {
        let mut out = Out { producer: &self.producer, in_transaction: &mut self.in_transaction };
        W::tick(cx, &mut self.body, &mut out)
    }

    /// Moves the read position in each topic that `skips` names to the consumer's
    /// `positions`, past what the consumer skipped (transaction markers), once the task has
    /// read a record of it itself: until then the consumer's position may still be the one a
    /// previous owner of the partition in this process reached, and taking it would commit
    /// input this task never processed.
    pub fn skip_to(&mut self, positions: &TopicPartitionList, skips: impl Fn(&str) -> bool) {
        for input in self.inputs.iter_mut().filter(|input| input.read_any && skips(&input.topic)) {
            let position = positions.find_partition(&input.topic, self.partition).map(|e| e.offset());
            if let Some(Offset::Offset(position)) = position {
                if position > input.next_offset {
                    input.next_offset = position;
                    self.dirty = true;
                }
            }
        }
    }

    /// Commits what the task did since its last commit, in one transaction with its input
    /// offsets (every partition of its group); its body checkpoints its state first. `group`
    /// is the consumer group's current metadata (the broker refuses the offsets of a member
    /// that is no longer in it).
    pub fn commit(&mut self, cx: &Context<W>, group: &ConsumerGroupMetadata) -> Result<()> {
        let mut out = Out { producer: &self.producer, in_transaction: &mut self.in_transaction };
        let read: Vec<(&str, i64)> = self.inputs.iter().map(|i| (i.topic.as_str(), i.next_offset)).collect();
        if W::prepare(cx, &mut self.body, self.partition, &read, &mut out)? {
            self.dirty = true;
        }
        // What the body sent between commits (a tick's output) commits too.
        if !self.dirty && !self.in_transaction {
            return Ok(());
        }
        let mut out = Out { producer: &self.producer, in_transaction: &mut self.in_transaction };
        let lead = self.inputs[0].next_offset;
        let metadata = W::checkpoint(cx, &mut self.body, self.partition, lead, &mut out)?;
        let what = || format!("committing {} partition {}", self.inputs[0].topic, self.partition);
        if !self.in_transaction {
            self.producer.begin_transaction().map_err(|e| transaction_error(&self.producer, what(), e))?;
            self.in_transaction = true;
        }
        let mut offsets = TopicPartitionList::new();
        for input in &self.inputs {
            let mut offset = offsets.add_partition(&input.topic, self.partition);
            offset.set_offset(Offset::Offset(input.next_offset)).map_err(ClusterError::kafka(what()))?;
            offset.set_metadata(metadata.clone());
        }
        let committed = self
            .producer
            .send_offsets_to_transaction(&offsets, group, TRANSACTION_TIMEOUT)
            .and_then(|()| self.producer.commit_transaction(TRANSACTION_TIMEOUT));
        self.in_transaction = false;
        committed.map_err(|e| transaction_error(&self.producer, what(), e))?;
        W::committed(cx, &mut self.body, lead)?;
        self.inputs.iter_mut().for_each(|input| input.committed = Some(input.next_offset));
        self.dirty = false;
        if let Some(started) = self.started.take() {
            let after_ms = started.elapsed().as_millis() as u64;
            tracing::debug!(topic = self.lead(), partition = self.partition, after_ms, "first commit");
        }
        self.mark_done_if_finished(cx)
    }

    /// Drops the task without committing (it runs elsewhere now, or will): its open
    /// transaction is aborted, so readers need not wait for it to time out.
    pub fn abandon(self) {
        if self.in_transaction {
            // Fails at once when this producer is fenced: the new owner aborted it already.
            let _ = abort(&self.producer);
        }
    }

    fn mark_done_if_finished(&mut self, cx: &Context<W>) -> Result<()> {
        if W::finished(&self.body) && !self.marked_done && !self.dirty {
            cx.store.mark_done(cx.work.name(self.role), self.partition)?;
            self.marked_done = true;
        }
        Ok(())
    }
}

/// Aborts `producer`'s open transaction. Records still queued are dropped (they never reach a
/// broker); those in flight are waited for, serving their delivery reports: the abort waits
/// for those reports, and nothing else polls this producer any more. Purging them instead
/// left the abort to time out (5 s a task, its transaction left open), long enough for a
/// member dropping several tasks to miss its poll interval and be thrown out of the group.
fn abort(producer: &BaseProducer) -> rdkafka::error::KafkaResult<()> {
    producer.purge(PurgeConfig::default().queue());
    producer.flush(ABORT_TIMEOUT)?;
    producer.abort_transaction(ABORT_TIMEOUT)
}

/// [`ClusterError::Fenced`] when a newer producer with the task's transactional id fenced
/// this one (the task runs elsewhere now), else the Kafka error.
pub(crate) fn transaction_error(producer: &BaseProducer, what: String, error: KafkaError) -> ClusterError {
    let fenced = |code| {
        matches!(
            code,
            RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch
        )
    };
    let code = error.rdkafka_error_code();
    let fatal = producer.client().fatal_error().map(|(code, _)| code);
    match code.into_iter().chain(fatal).any(fenced) {
        true => ClusterError::Fenced(format!("{what}: {error}: another process runs the task now")),
        false => ClusterError::kafka(what)(error),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    use rdkafka::producer::BaseRecord;
    use rdkafka::ClientConfig;

    use super::*;
    use crate::graph_work::GraphWork;
    use crate::test_graph::{context, WORDS};

    /// The lost output after a SIGKILL: a source task's new owner fenced the old one, which
    /// aborted the old owner's open transaction; a task that had been reading the repartition
    /// partition all along then never saw a record of the new owner (noida-db reports the old
    /// abort to every later fetch, and librdkafka skips that producer id's records from then
    /// on). With a fresh transactional id per incarnation it sees them.
    #[test]
    fn a_reader_waiting_at_an_aborted_transaction_sees_what_the_next_owner_commits() {
        let Some(kafka) = eddy_test_services::Service::kafka() else { return };
        let brokers = kafka.address();
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let topics = [
            NewTopic::new("lines", 1, TopicReplication::Fixed(1)),
            NewTopic::new(WORDS, 1, TopicReplication::Fixed(1)),
        ];
        runtime.block_on(admin.create_topics(&topics, &AdminOptions::new())).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cx, _) = context(&format!("file://{}", dir.path().display()), &brokers, 1);
        let record = |text: &'static str| Received {
            topic: "lines",
            partition: 0,
            offset: 0,
            key: None,
            payload: Some(text.as_bytes()),
            timestamp: Some(1_000),
            control: None,
        };

        // The first owner of the source task (sub-topology 0) writes a record and never commits.
        let start = |cx: &Context<GraphWork>| {
            let producer = Task::incarnate(cx, 0, 0).unwrap();
            Task::resume(cx, 0, 0, producer, vec![("lines".into(), None)]).unwrap()
        };
        let mut first = start(&cx);
        first.process(&cx, &record("first")).unwrap();
        // The Kafka source batches what it reads until processing time passes.
        first.tick(&cx).unwrap();
        assert!(first.in_transaction, "the source task wrote nothing to the repartition topic");
        first.producer.flush(TRANSACTION_TIMEOUT).unwrap();
        // A reader waits at its open transaction.
        let reader: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", "reader")
            .set("isolation.level", "read_committed")
            .create()
            .unwrap();
        let mut from = TopicPartitionList::new();
        from.add_partition_offset(WORDS, 0, Offset::Beginning).unwrap();
        reader.assign(&from).unwrap();
        // The records (not the control messages: watermarks) the reader has read, as text.
        let mut seen: Vec<String> = vec![];
        let mut read = |for_: Duration| {
            let deadline = Instant::now() + for_;
            while Instant::now() < deadline {
                if let Some(Ok(m)) = reader.poll(Duration::from_millis(100)) {
                    if m.headers().is_none_or(|h| h.iter().all(|h| h.key != crate::control::CONTROL_HEADER)) {
                        seen.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
                    }
                }
            }
            seen.clone()
        };
        assert_eq!(read(Duration::from_secs(1)), Vec::<String>::new());
        // The next owner fences the first (aborting its transaction); the reader reads past
        // the abort before the next owner writes.
        let mut next = start(&cx);
        assert_eq!(read(Duration::from_secs(1)), Vec::<String>::new());
        next.process(&cx, &record("next")).unwrap();
        let group: BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", &brokers).set("group.id", "app").create().unwrap();
        next.commit(&cx, &group.group_metadata().unwrap()).unwrap();
        let seen = read(Duration::from_secs(3));
        assert_eq!(seen.len(), 1, "the reader lost the next owner's records, or read the first's: {seen:?}");
        assert!(seen[0].contains("next"), "{seen:?}");
        drop(first);
    }

    /// A task dropped mid-transaction, with records still in flight, aborts it at once.
    #[test]
    fn an_abandoned_transaction_is_aborted_not_left_to_time_out() {
        let Some(kafka) = eddy_test_services::Service::kafka() else { return };
        let brokers = kafka.address();
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let topic = NewTopic::new("abandoned", 1, TopicReplication::Fixed(1));
        runtime.block_on(admin.create_topics([&topic], &AdminOptions::new())).unwrap();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("transactional.id", "abandoned")
            .set("linger.ms", "0")
            .create()
            .unwrap();
        producer.init_transactions(TRANSACTION_TIMEOUT).unwrap();
        let payload = vec![b'x'; 2000];
        for round in 0..3 {
            producer.begin_transaction().unwrap();
            for _ in 0..600 {
                let record = BaseRecord::<(), [u8]>::to("abandoned").payload(&payload[..]).partition(0);
                producer.send(record).map_err(|(e, _)| e).unwrap();
                producer.poll(Duration::ZERO);
            }
            abort(&producer).unwrap_or_else(|e| panic!("round {round}: the abort failed: {e}"));
        }
    }
}
