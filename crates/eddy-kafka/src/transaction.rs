//! Exactly-once delivery: one Kafka transaction per sink subtask and checkpoint, on eddy's
//! two-phase-commit machinery.
//!
//! - A subtask writes into an open transaction of its own producer, whose `transactional.id`
//!   is `<prefix>-<subtask>-<n>`, `n` being the id of the checkpoint after the last barrier
//!   it saw (the checkpoint it expects to close the transaction, as Flink's `KafkaSink`).
//! - At a barrier it flushes the producer (every record is in the transaction, durable on
//!   the brokers, invisible to `read_committed` consumers), adds a *commit marker* to the
//!   transaction, and hands the producer to the sink's committer. The checkpoint keeps the
//!   transaction's id, its marker, and a copy of its records.
//! - When the checkpoint completes, the committer commits the transaction on that same
//!   producer. A transaction of a checkpoint that never completes is never committed.
//!
//! **Recovery.** librdkafka cannot commit a transaction of another producer instance (Flink
//! resumes one by reflection). When a process dies after a checkpoint completed but before
//! its commit reached the broker, the restore finds the transaction's producer gone. It
//! opens a producer with the same `transactional.id` (`init_transactions` fences the dead
//! one: a commit that had reached the transaction coordinator completes, anything else is
//! aborted), then reads the marker: the marker is an offset commit of consumer group
//! `<prefix>-<subtask>.commits` made *inside* the transaction (`send_offsets_to_transaction`),
//! so it is visible exactly when the transaction committed. If it names this transaction,
//! nothing is left to do; otherwise the records kept in the checkpoint are written again, in
//! a new transaction with the same marker. Either way a `read_committed` consumer sees each
//! record once.
//!
//! **Fencing.** After a restart in the same process, a new subtask aborts what its
//! predecessor left open. A restore in a new process fences, for every subtask of the
//! restored checkpoint, the two ids after it that the dead process may have left open (eddy
//! runs one checkpoint at a time); otherwise they would hold back `read_committed` consumers
//! until `transaction.timeout.ms`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eddy_core::{BoxError, Timestamp};
use eddy_stream::sink::{Committer, TwoPhaseCommitSink};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::client::Context;
use crate::sink::{OutRecord, SinkSpec};

/// A pre-committed transaction as a checkpoint holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaTxn {
    /// The sink subtask that wrote it.
    pub subtask: usize,
    /// The producer's `transactional.id`; `None` when nothing was written.
    pub transactional_id: Option<String>,
    /// The checkpoint that closed it.
    pub checkpoint: u64,
    /// Where its commit marker is.
    pub marker: Option<Marker>,
    /// Its records, to write again if the commit is lost with the process.
    pub records: Vec<OutRecord>,
}

/// A transaction's commit marker: consumer group `group`'s committed offset of partition 0
/// of `topic` carries `token:checkpoint` as its metadata once the transaction committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The consumer group.
    pub group: String,
    /// A topic the transaction wrote to.
    pub topic: String,
    /// Tells the writer that made it from earlier writers with the same prefix.
    pub token: String,
}

impl Marker {
    fn metadata(&self, checkpoint: u64) -> String {
        format!("{}:{checkpoint}", self.token)
    }

    fn offsets(&self, checkpoint: u64) -> Result<TopicPartitionList, BoxError> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.topic, 0, Offset::Offset(0))?;
        if let Some(mut element) = list.find_partition(&self.topic, 0) {
            element.set_metadata(self.metadata(checkpoint));
        }
        Ok(list)
    }
}

type SharedProducer = Arc<ThreadedProducer<Context>>;

/// How many transaction ids after the restored checkpoint a dead process may have left open:
/// the one it wrote into, and the next after a checkpoint that did not complete (eddy runs
/// one checkpoint at a time).
const LINGERING: u64 = 2;

/// The sink's live transactional producers, shared by its subtasks and its committer.
#[derive(Default)]
pub(crate) struct Registry {
    /// `transactional.id` → (subtask, producer).
    producers: Mutex<HashMap<String, (usize, SharedProducer)>>,
    /// The newest checkpoint restored or committed: new transactions are named after it.
    newest: AtomicU64,
    /// Transactions of completed checkpoints that could not be committed: settled before a
    /// restarted attempt writes again.
    owed: Mutex<Vec<KafkaTxn>>,
}

impl Registry {
    fn take(&self, id: &str) -> Option<SharedProducer> {
        self.producers.lock().unwrap_or_else(|e| e.into_inner()).remove(id).map(|(_, p)| p)
    }

    fn saw(&self, checkpoint: u64) {
        if checkpoint != u64::MAX {
            self.newest.fetch_max(checkpoint, Ordering::AcqRel);
        }
    }

    /// Aborts and drops the producers `discard` picks.
    fn abort_where(&self, timeout: Duration, discard: impl Fn(&str, usize) -> bool) {
        let doomed: Vec<(String, SharedProducer)> = {
            let mut producers = self.producers.lock().unwrap_or_else(|e| e.into_inner());
            let ids: Vec<String> =
                producers.iter().filter(|(id, (s, _))| discard(id, *s)).map(|(id, _)| id.clone()).collect();
            ids.into_iter().filter_map(|id| producers.remove(&id).map(|(_, p)| (id, p))).collect()
        };
        for (id, producer) in doomed {
            if let Err(e) = producer.abort_transaction(timeout) {
                tracing::debug!("Kafka sink: aborting leftover transaction {id}: {e}");
            }
        }
    }
}

/// The open transaction of a writer.
struct Open {
    id: String,
    producer: SharedProducer,
    context: Context,
    records: Vec<OutRecord>,
}

/// One sink subtask's transactional writer.
pub struct TransactionalWriter<T> {
    spec: Arc<SinkSpec<T>>,
    registry: Arc<Registry>,
    subtask: usize,
    current: Option<Open>,
    /// The checkpoint id the next transaction is named after.
    next: u64,
    /// This writer's commit-marker group, token, and a consumer for its group metadata.
    group: String,
    token: String,
    marker_client: Option<BaseConsumer<Context>>,
}

impl<T: 'static> TransactionalWriter<T> {
    pub(crate) fn new(spec: Arc<SinkSpec<T>>, registry: Arc<Registry>, subtask: usize) -> Result<Self, BoxError> {
        // What an earlier attempt of this subtask in this process left open or pre-committed
        // without a completed checkpoint will never be committed.
        registry.abort_where(spec.timeout, |_, s| s == subtask);
        // What completed checkpoints hold but could not be committed (the broker was away)
        // is settled first, as a restore would.
        let owed: Vec<KafkaTxn> = {
            let mut owed = registry.owed.lock().unwrap_or_else(|e| e.into_inner());
            let (mine, others) = owed.drain(..).partition(|t| t.subtask == subtask);
            *owed = others;
            mine
        };
        for txn in &owed {
            if let Some(id) = &txn.transactional_id {
                if let Err(e) = recover(&spec, id, txn) {
                    registry.owed.lock().unwrap_or_else(|e| e.into_inner()).push(txn.clone());
                    return Err(
                        format!("Kafka sink: cannot settle transaction {id} of a completed checkpoint: {e}").into()
                    );
                }
            }
        }
        let newest = registry.newest.load(Ordering::Acquire);
        fence_lingering(&spec, subtask, newest)?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Ok(TransactionalWriter {
            group: format!("{}-{}.commits", spec.transactional_id_prefix, subtask),
            token: format!("{:x}-{:x}-{subtask}", nanos, std::process::id()),
            spec,
            registry,
            subtask,
            current: None,
            next: newest + 1,
            marker_client: None,
        })
    }

    fn begin(&mut self) -> Result<(), BoxError> {
        let id = format!("{}-{}-{}", self.spec.transactional_id_prefix, self.subtask, self.next);
        let (producer, context) = transactional_producer(&self.spec, &id)?;
        producer.begin_transaction().map_err(|e| format!("Kafka sink: cannot begin transaction {id}: {e}"))?;
        let producer = Arc::new(producer);
        let entry = (self.subtask, producer.clone());
        self.registry.producers.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), entry);
        self.current = Some(Open { id, producer, context, records: Vec::new() });
        Ok(())
    }

    /// Adds the commit marker of `checkpoint` to the open transaction.
    fn mark(&mut self, open: &Open, checkpoint: u64) -> Result<Option<Marker>, BoxError> {
        let Some(topic) = open.records.first().map(|r| r.topic.clone()) else { return Ok(None) };
        let marker = Marker { group: self.group.clone(), topic, token: self.token.clone() };
        if self.marker_client.is_none() {
            self.marker_client = Some(marker_client(&self.spec, &self.group)?);
        }
        let client = self.marker_client.as_ref().expect("created above");
        let metadata = client.group_metadata().ok_or("Kafka sink: no consumer group metadata for the commit marker")?;
        open.producer
            .send_offsets_to_transaction(&marker.offsets(checkpoint)?, &metadata, self.spec.timeout)
            .map_err(|e| format!("Kafka sink: cannot add the commit marker to transaction {}: {e}", open.id))?;
        Ok(Some(marker))
    }
}

/// A producer with `transactional.id` `id`, initialised: any earlier producer with that id
/// is fenced and its open transaction finished (committed if its commit had reached the
/// coordinator, aborted otherwise).
fn transactional_producer<T: 'static>(
    spec: &SinkSpec<T>,
    id: &str,
) -> Result<(ThreadedProducer<Context>, Context), BoxError> {
    let (producer, context) =
        spec.producer(&[("transactional.id", id), ("acks", "all"), ("transaction.timeout.ms", "60000")])?;
    producer.init_transactions(spec.timeout).map_err(|e| {
        format!("Kafka sink at {}: cannot initialise transactions for {id}: {e}", spec.settings.brokers)
    })?;
    Ok((producer, context))
}

/// Fences the transaction ids a dead writer of `subtask` may have left open after checkpoint
/// `newest`: a process that died after it had at most one checkpoint in flight.
fn fence_lingering<T: 'static>(spec: &SinkSpec<T>, subtask: usize, newest: u64) -> Result<(), BoxError> {
    for ahead in 1..=LINGERING {
        let id = format!("{}-{}-{}", spec.transactional_id_prefix, subtask, newest + ahead);
        drop(transactional_producer(spec, &id)?);
    }
    Ok(())
}

/// A consumer of the marker group (never subscribed: it only reads or lends its metadata).
fn marker_client<T: 'static>(spec: &SinkSpec<T>, group: &str) -> Result<BaseConsumer<Context>, BoxError> {
    let config = spec.settings.config(&[("group.id", group), ("enable.auto.commit", "false")]);
    Ok(config.create_with_context(Context::default())?)
}

impl<T: Send + 'static> TwoPhaseCommitSink<T> for TransactionalWriter<T> {
    type Txn = KafkaTxn;

    fn write(&mut self, value: T, timestamp: Timestamp) -> Result<(), BoxError> {
        let record = self.spec.record(&value, timestamp)?;
        if self.current.is_none() {
            self.begin()?;
        }
        let open = self.current.as_mut().expect("begun above");
        self.spec.send(&open.producer, &record)?;
        open.records.push(record);
        Ok(())
    }

    fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<KafkaTxn>, BoxError> {
        if checkpoint != u64::MAX {
            self.next = self.next.max(checkpoint + 1);
        }
        let Some(open) = self.current.take() else {
            // Nothing written; still recorded, so a restore knows which checkpoint it resumes.
            let subtask = self.subtask;
            return Ok(Some(KafkaTxn {
                subtask,
                transactional_id: None,
                checkpoint,
                marker: None,
                records: Vec::new(),
            }));
        };
        let id = open.id.clone();
        open.producer
            .flush(self.spec.timeout)
            .map_err(|e| format!("Kafka sink: cannot flush transaction {id}: {e}"))?;
        let failed = open.context.health.failed_deliveries.load(Ordering::Relaxed);
        if failed > 0 {
            let last = open.context.health.last().unwrap_or_default();
            return Err(format!(
                "Kafka sink: {failed} record(s) of transaction {id} were not delivered (last: {last})"
            )
            .into());
        }
        // The final checkpoint (and the end of a job without checkpoints) commits at once:
        // no later restore can come back to it, so it needs neither marker nor records.
        let recoverable = checkpoint != u64::MAX && checkpoint != 0;
        let marker = if recoverable { self.mark(&open, checkpoint)? } else { None };
        let records = if recoverable { open.records } else { Vec::new() };
        Ok(Some(KafkaTxn { subtask: self.subtask, transactional_id: Some(id), checkpoint, marker, records }))
    }
}

/// Commits and aborts the sink's transactions; runs on the job master's thread.
pub struct KafkaCommitter<T> {
    spec: Arc<SinkSpec<T>>,
    registry: Arc<Registry>,
}

impl<T> KafkaCommitter<T> {
    pub(crate) fn new(spec: Arc<SinkSpec<T>>) -> Self {
        KafkaCommitter { spec, registry: Arc::default() }
    }

    pub(crate) fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }
}

/// Whether `marker` says transaction `checkpoint` of its writer committed.
fn committed<T: 'static>(spec: &SinkSpec<T>, marker: &Marker, checkpoint: u64) -> Result<bool, BoxError> {
    let client = marker_client(spec, &marker.group)?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(&marker.topic, 0, Offset::Invalid)?;
    let committed = client
        .committed_offsets(list, spec.timeout)
        .map_err(|e| format!("Kafka sink: cannot read commit marker group {}: {e}", marker.group))?;
    let metadata = committed.find_partition(&marker.topic, 0).map(|e| e.metadata().to_string());
    Ok(metadata.as_deref() == Some(marker.metadata(checkpoint).as_str()))
}

/// Finishes a transaction of a completed checkpoint whose producer is gone (another process
/// wrote it) or could not commit it: fences the id, and writes the records again unless the
/// marker shows the transaction committed.
fn recover<T: 'static>(spec: &SinkSpec<T>, id: &str, txn: &KafkaTxn) -> Result<(), BoxError> {
    let (producer, _) = transactional_producer(spec, id)?;
    let Some(marker) = &txn.marker else { return Ok(()) };
    if committed(spec, marker, txn.checkpoint)? {
        return Ok(());
    }
    tracing::warn!(
        "Kafka sink: the commit of transaction {id} was lost; writing its {} records again",
        txn.records.len()
    );
    producer.begin_transaction()?;
    for record in &txn.records {
        spec.send(&producer, record)?;
    }
    producer.flush(spec.timeout)?;
    let client = marker_client(spec, &marker.group)?;
    let metadata = client.group_metadata().ok_or("Kafka sink: no consumer group metadata for the commit marker")?;
    producer.send_offsets_to_transaction(&marker.offsets(txn.checkpoint)?, &metadata, spec.timeout)?;
    producer.commit_transaction(spec.timeout)?;
    Ok(())
}

impl<T: 'static> Committer<KafkaTxn> for KafkaCommitter<T> {
    fn commit(&self, txn: &KafkaTxn) -> Result<(), BoxError> {
        self.registry.saw(txn.checkpoint);
        let Some(id) = &txn.transactional_id else { return Ok(()) };
        let Some(producer) = self.registry.take(id) else {
            let recovered = recover(&self.spec, id, txn);
            return recovered.map_err(|e| format!("Kafka sink: cannot recover transaction {id}: {e}").into());
        };
        let mut attempt = 0;
        let failure = loop {
            match producer.commit_transaction(self.spec.timeout) {
                Ok(()) => return Ok(()),
                Err(rdkafka::error::KafkaError::Transaction(e)) if e.is_retriable() && attempt < 3 => attempt += 1,
                Err(e) => break e,
            }
        };
        // Fenced, or the broker lost the transaction: finish it as a restore would; if that
        // fails too (brokers away), the restarted attempt settles it before writing.
        drop(producer);
        recover(&self.spec, id, txn).map_err(|e| {
            self.registry.owed.lock().unwrap_or_else(|e| e.into_inner()).push(txn.clone());
            format!("Kafka sink: cannot commit transaction {id} ({failure}), nor finish it again: {e}").into()
        })
    }

    fn abort(&self, txn: &KafkaTxn) -> Result<(), BoxError> {
        let Some(id) = &txn.transactional_id else { return Ok(()) };
        match self.registry.take(id) {
            Some(producer) => producer.abort_transaction(self.spec.timeout)?,
            None => drop(transactional_producer(&self.spec, id)?),
        }
        Ok(())
    }

    /// Before a start: forgets producers of this process that the restored checkpoint does
    /// not hold, and fences what the writers of the restored checkpoint may have left open
    /// (every old subtask's, also those a restore at lower parallelism no longer runs).
    fn clean_up(&self, restored: &[KafkaTxn]) -> Result<(), BoxError> {
        for txn in restored {
            self.registry.saw(txn.checkpoint);
        }
        let keep: Vec<&str> = restored.iter().filter_map(|t| t.transactional_id.as_deref()).collect();
        self.registry.abort_where(self.spec.timeout, |id, _| !keep.contains(&id));
        let newest = self.registry.newest.load(Ordering::Acquire);
        let subtasks: std::collections::BTreeSet<usize> = restored.iter().map(|t| t.subtask).collect();
        for subtask in subtasks {
            fence_lingering(&self.spec, subtask, newest)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{DeliveryGuarantee, KafkaSink};
    use eddy_test_services::Service;
    use rdkafka::message::Message;

    fn read_committed(brokers: &str, topic: &str) -> Vec<String> {
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "reader")
            .set("isolation.level", "read_committed")
            .create()
            .unwrap();
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
        consumer.assign(&list).unwrap();
        let mut values = Vec::new();
        let mut quiet = std::time::Instant::now();
        while quiet.elapsed() < Duration::from_secs(3) {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
                quiet = std::time::Instant::now();
            }
        }
        values
    }

    /// A transaction whose checkpoint completed but whose process died before committing it
    /// is written again on restore, once, however often the restore is repeated.
    #[test]
    fn a_commit_lost_with_its_process_is_recovered_exactly_once() {
        let Some(kafka) = Service::kafka() else { return };
        let sink = KafkaSink::<String>::builder()
            .brokers(kafka.address())
            .topic("recovered")
            .delivery(DeliveryGuarantee::ExactlyOnce)
            .transactional_id_prefix("recovery-test")
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let spec = sink.spec;
        let first = KafkaCommitter::new(spec.clone());
        let mut writer = TransactionalWriter::new(spec.clone(), first.registry(), 0).unwrap();
        for i in 0..10 {
            writer.write(format!("value {i}"), 0).unwrap();
        }
        let txn = writer.pre_commit(5).unwrap().unwrap();
        assert_eq!(txn.records.len(), 10);
        // The process dies: its producers go without a commit.
        drop(writer);
        drop(first);
        assert!(read_committed(&kafka.address(), "recovered").is_empty());
        // A new process restores the checkpoint, twice (it died again during the restore).
        for restore in 0..2 {
            let committer = KafkaCommitter::new(spec.clone());
            committer.commit(&txn).unwrap();
            let mut got = read_committed(&kafka.address(), "recovered");
            got.sort();
            let mut expected: Vec<String> = (0..10).map(|i| format!("value {i}")).collect();
            expected.sort();
            assert_eq!(got, expected, "after restore {restore}");
        }
    }

    /// A restore at a lower parallelism fences the transactions that subtasks it no longer
    /// runs left open, so they do not hold back read_committed consumers for a minute.
    #[test]
    fn a_restore_fences_what_vanished_subtasks_left_open() {
        let Some(kafka) = Service::kafka() else { return };
        let sink = KafkaSink::<String>::builder()
            .brokers(kafka.address())
            .topic("fenced")
            .delivery(DeliveryGuarantee::ExactlyOnce)
            .transactional_id_prefix("fence-test")
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let spec = sink.spec;
        // Subtask 2 of the old run pre-committed checkpoint 7 (empty), then began writing
        // after it and died with its transaction open.
        let old = KafkaCommitter::new(spec.clone());
        let mut vanished = TransactionalWriter::new(spec.clone(), old.registry(), 2).unwrap();
        let restored = vanished.pre_commit(7).unwrap().unwrap();
        vanished.write("from the dead".into(), 0).unwrap();
        vanished.current.as_ref().unwrap().producer.flush(Duration::from_secs(10)).unwrap();
        drop(vanished);
        drop(old);
        // The restore runs one subtask (0) only.
        let committer = KafkaCommitter::new(spec.clone());
        committer.clean_up(std::slice::from_ref(&restored)).unwrap();
        let mut writer = TransactionalWriter::new(spec.clone(), committer.registry(), 0).unwrap();
        writer.write("after the restore".into(), 0).unwrap();
        let txn = writer.pre_commit(8).unwrap().unwrap();
        committer.commit(&txn).unwrap();
        assert_eq!(read_committed(&kafka.address(), "fenced"), vec!["after the restore".to_string()]);
    }

    /// A commit that fails because the broker went away is settled by the restarted
    /// attempt's writer before it writes: here the broker also forgot everything (noida-db),
    /// so the records are written again from the checkpoint's copy, once.
    #[test]
    fn a_commit_the_broker_lost_is_settled_by_the_next_attempt() {
        let Some(mut kafka) = Service::kafka() else { return };
        let sink = KafkaSink::<String>::builder()
            .brokers(kafka.address())
            .topic("owed")
            .delivery(DeliveryGuarantee::ExactlyOnce)
            .transactional_id_prefix("owed-test")
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let spec = sink.spec;
        let committer = KafkaCommitter::new(spec.clone());
        let mut writer = TransactionalWriter::new(spec.clone(), committer.registry(), 0).unwrap();
        for i in 0..10 {
            writer.write(format!("value {i}"), 0).unwrap();
        }
        let txn = writer.pre_commit(4).unwrap().unwrap();
        kafka.stop();
        assert!(committer.commit(&txn).is_err(), "no broker to commit with");
        drop(writer);
        kafka.restart();
        // The restarted attempt's writer for subtask 0 settles the transaction first.
        let _writer = TransactionalWriter::new(spec.clone(), committer.registry(), 0).unwrap();
        let mut got = read_committed(&kafka.address(), "owed");
        got.sort();
        let mut expected: Vec<String> = (0..10).map(|i| format!("value {i}")).collect();
        expected.sort();
        assert_eq!(got, expected);
    }
}
