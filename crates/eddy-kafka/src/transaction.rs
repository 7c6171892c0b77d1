//! Exactly-once delivery: one Kafka transaction per sink subtask and checkpoint, on eddy's
//! two-phase-commit machinery.
//!
//! - A subtask writes into an open transaction of its own producer, whose `transactional.id`
//!   is `<prefix>-<subtask>-<n>`, `n` being the id of the checkpoint after the last barrier
//!   it saw (the checkpoint it expects to close the transaction, as Flink's `KafkaSink`).
//! - At a barrier it flushes the producer (every record is in the transaction, durable on
//!   the brokers, invisible to `read_committed` consumers), adds a *commit marker* to the
//!   transaction ([`crate::marker`]), and hands the producer to the sink's committer. The
//!   checkpoint keeps the transaction's id, its marker, and a copy of its records.
//! - When the checkpoint completes, the committer commits the transaction on that same
//!   producer. A transaction of a checkpoint that never completes is never committed.
//!
//! **Recovery.** librdkafka cannot commit a transaction of another producer instance (Flink
//! resumes one by reflection). When a process dies after a checkpoint completed but before
//! its commit reached the broker, the restore finds the transaction's producer gone; so does
//! a restarted attempt when the commit failed (the job restarts, and the restart commits the
//! restored checkpoint's transactions again). The committer then opens a producer with the
//! same `transactional.id` (`init_transactions` fences the old one: a commit that had reached
//! the transaction coordinator completes, anything else is aborted) and reads the marker,
//! which is visible exactly when the transaction committed. If it shows this transaction,
//! nothing is left to do; otherwise the records kept in the checkpoint are written again, in
//! a new transaction with the same marker. Either way a `read_committed` consumer sees each
//! record once.
//!
//! **Restores from older snapshots.** Committed transactions cannot be taken back. Before a
//! restore from checkpoint *n*, the committer reads every subtask's marker
//! ([`KafkaCommitter`]'s `newer_commits`): a transaction of this job's history committed for a
//! checkpoint after *n* would be written again by the restored job, so the restore is
//! refused unless the job allows duplicate output.
//!
//! **Fencing.** After a restart in the same process, a new subtask aborts what its
//! predecessor left open. A restore fences, for every subtask of the restored checkpoint (and
//! every other one with a marker), the two ids after its last checkpoint that a dead process
//! may have left open (eddy runs one checkpoint at a time); otherwise they would hold back
//! `read_committed` consumers until `transaction.timeout.ms`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eddy_core::{BoxError, Timestamp};
use eddy_stream::sink::{Committer, NewerCommits, TwoPhaseCommitSink};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{Producer, ThreadedProducer};
use serde::{Deserialize, Serialize};

use crate::client::Context;
use crate::marker::{self, Commit, Marker};
use crate::sink_spec::{OutRecord, SinkSpec};

/// A pre-committed transaction as a checkpoint holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaTxn {
    /// The sink subtask that wrote it.
    pub subtask: usize,
    /// The job history it belongs to (see [`crate::marker`]).
    pub lineage: String,
    /// The producer's `transactional.id`; `None` when nothing was written.
    pub transactional_id: Option<String>,
    /// The checkpoint that closed it.
    pub checkpoint: u64,
    /// Its commit marker.
    pub marker: Option<Marker>,
    /// Its records, to write again if the commit is lost with the process.
    pub records: Vec<OutRecord>,
}

type SharedProducer = Arc<ThreadedProducer<Context>>;

/// How many transaction ids after the restored checkpoint a dead process may have left open:
/// the one it wrote into, and the next after a checkpoint that did not complete (eddy runs
/// one checkpoint at a time).
const LINGERING: u64 = 2;

/// What the sink's subtasks and its committer share in a process: the live transactional
/// producers, and where the job's history stands.
#[derive(Default)]
pub(crate) struct Registry {
    /// `transactional.id` → (subtask, producer).
    producers: Mutex<HashMap<String, (usize, SharedProducer)>>,
    /// The newest checkpoint restored or committed: new transactions are named after it.
    newest: AtomicU64,
    /// The job's history: the restored checkpoint's, or a new one at a fresh start.
    lineage: Mutex<Option<String>>,
}

impl Registry {
    /// The history new transactions belong to (a new one if no attempt was prepared: a job
    /// without checkpoints).
    fn lineage(&self) -> String {
        self.lineage.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(unique).clone()
    }

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

/// A name no other writer or run has: the clock and the process.
fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:x}-{:x}", nanos, std::process::id())
}

/// One sink subtask's transactional writer.
pub struct TransactionalWriter<T> {
    spec: Arc<SinkSpec<T>>,
    registry: Arc<Registry>,
    subtask: usize,
    current: Option<Open>,
    /// The checkpoint id the next transaction is named after.
    next: u64,
    /// The history and the token this writer's markers carry, its marker group, and a
    /// consumer of that group for its group metadata.
    lineage: String,
    token: String,
    group: String,
    marker_client: Option<BaseConsumer<Context>>,
}

impl<T: 'static> TransactionalWriter<T> {
    pub(crate) fn new(spec: Arc<SinkSpec<T>>, registry: Arc<Registry>, subtask: usize) -> Result<Self, BoxError> {
        // What an earlier attempt of this subtask in this process left open will never be
        // committed. (With checkpoints the committer's clean-up has done this already; a job
        // restarted without them has only this.)
        registry.abort_where(spec.timeout, |_, s| s == subtask);
        let newest = registry.newest.load(Ordering::Acquire);
        fence_lingering(&spec, subtask, newest)?;
        Ok(TransactionalWriter {
            group: marker::group(&spec.transactional_id_prefix, subtask),
            lineage: registry.lineage(),
            token: format!("{}-{subtask}", unique()),
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
        let commit = Commit { lineage: self.lineage.clone(), token: self.token.clone(), checkpoint };
        let marker = Marker { group: self.group.clone(), topic, commit };
        if self.marker_client.is_none() {
            self.marker_client = Some(marker::client(&self.spec, &self.group)?);
        }
        let client = self.marker_client.as_ref().expect("created above");
        let metadata = client.group_metadata().ok_or("Kafka sink: no consumer group metadata for the commit marker")?;
        open.producer
            .send_offsets_to_transaction(&marker.offsets()?, &metadata, self.spec.timeout)
            .map_err(|e| format!("Kafka sink: cannot add the commit marker to transaction {}: {e}", open.id))?;
        Ok(Some(marker))
    }

    fn txn(
        &self,
        checkpoint: u64,
        transactional_id: Option<String>,
        marker: Option<Marker>,
        records: Vec<OutRecord>,
    ) -> KafkaTxn {
        KafkaTxn { subtask: self.subtask, lineage: self.lineage.clone(), transactional_id, checkpoint, marker, records }
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
            // Nothing written; still recorded, so a restore knows the subtask and its history.
            return Ok(Some(self.txn(checkpoint, None, None, Vec::new())));
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
        // The end of a job without checkpoints (checkpoint 0) commits at once, and no restore
        // can come back to it: it needs neither marker nor records. The final checkpoint
        // (`u64::MAX`) does: a restore from it commits it again, and one from an older
        // checkpoint must see that it committed.
        let recoverable = checkpoint != 0;
        let marker = if recoverable { self.mark(&open, checkpoint)? } else { None };
        let records = if recoverable { open.records } else { Vec::new() };
        Ok(Some(self.txn(checkpoint, Some(id), marker, records)))
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

/// Finishes a transaction of a completed checkpoint whose producer is gone (another process
/// wrote it) or could not commit it: fences the id, and writes the records again unless the
/// marker shows the transaction committed.
fn recover<T: 'static>(spec: &SinkSpec<T>, id: &str, txn: &KafkaTxn) -> Result<(), BoxError> {
    let (producer, _) = transactional_producer(spec, id)?;
    let Some(marker) = &txn.marker else { return Ok(()) };
    if marker.committed(spec)? {
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
    let client = marker::client(spec, &marker.group)?;
    let metadata = client.group_metadata().ok_or("Kafka sink: no consumer group metadata for the commit marker")?;
    producer.send_offsets_to_transaction(&marker.offsets()?, &metadata, spec.timeout)?;
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
        // Fenced, or the broker lost the transaction: finish it as a restore would. If that
        // fails too (brokers away), the job fails, and its restart commits this checkpoint
        // again: this function once more, which then finds the producer gone and recovers.
        drop(producer);
        recover(&self.spec, id, txn).map_err(|e| {
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

    /// Before a start: takes up the restored checkpoint's history (or begins a new one),
    /// forgets producers of this process that the checkpoint does not hold, and fences what
    /// writers of that history may have left open: for every subtask of the checkpoint (also
    /// those a restore at lower parallelism no longer runs) and every other one with a
    /// marker, the ids after the later of the checkpoint and the subtask's last commit.
    fn clean_up(&self, restored: &[KafkaTxn]) -> Result<(), BoxError> {
        for txn in restored {
            self.registry.saw(txn.checkpoint);
        }
        let lineage = restored.first().map_or_else(unique, |t| t.lineage.clone());
        *self.registry.lineage.lock().unwrap_or_else(|e| e.into_inner()) = Some(lineage.clone());
        let keep: Vec<&str> = restored.iter().filter_map(|t| t.transactional_id.as_deref()).collect();
        self.registry.abort_where(self.spec.timeout, |id, _| !keep.contains(&id));
        let newest = self.registry.newest.load(Ordering::Acquire);
        let last = match restored.is_empty() {
            true => BTreeMap::new(),
            false => self.last_commits(&lineage, restored)?.unwrap_or_default(),
        };
        let subtasks: BTreeSet<usize> = restored.iter().map(|t| t.subtask).chain(last.keys().copied()).collect();
        for subtask in subtasks {
            // After the final checkpoint that history ended: nothing after it was begun.
            let committed = last.get(&subtask).map(|c| c.checkpoint).filter(|&c| c != u64::MAX);
            fence_lingering(&self.spec, subtask, committed.unwrap_or(0).max(newest))?;
        }
        Ok(())
    }

    /// Reads every subtask's marker: a transaction of the restored history committed for a
    /// checkpoint after `checkpoint`, other than the restored ones, is output the restored job
    /// writes again, and a committed transaction cannot be taken back.
    fn newer_commits(&self, checkpoint: u64, restored: &[KafkaTxn]) -> Result<NewerCommits, BoxError> {
        // A sink the checkpoint does not know (added since) has no history to compare with.
        let Some(lineage) = restored.first().map(|t| t.lineage.as_str()) else { return Ok(NewerCommits::Nothing) };
        let own: Vec<&Commit> = restored.iter().filter_map(|t| t.marker.as_ref().map(|m| &m.commit)).collect();
        // A sink whose topic comes from each record, restored without a marker, cannot tell.
        let Some(last) = self.last_commits(lineage, restored)? else { return Ok(NewerCommits::Untracked) };
        let newer: Vec<(usize, Commit)> =
            last.into_iter().filter(|(_, commit)| commit.checkpoint > checkpoint && !own.contains(&commit)).collect();
        if newer.is_empty() {
            return Ok(NewerCommits::Nothing);
        }
        let name = |c: u64| if c == u64::MAX { "the final checkpoint".to_string() } else { format!("checkpoint {c}") };
        let each: Vec<String> =
            newer.iter().map(|(subtask, c)| format!("subtask {subtask} up to {}", name(c.checkpoint))).collect();
        Ok(NewerCommits::Irrevocable {
            commits: newer.len(),
            description: format!(
                "Kafka transactions committed for checkpoints after {checkpoint}: {} (transactional id prefix '{}')",
                each.join(", "),
                self.spec.transactional_id_prefix
            ),
        })
    }
}

impl<T: 'static> KafkaCommitter<T> {
    /// The last commit of each subtask of `lineage`, looked for in the sink's topic and
    /// where the restored transactions put their markers; `None` when that is nowhere (a
    /// sink that takes each record's topic from its value, restored without a marker).
    fn last_commits(&self, lineage: &str, restored: &[KafkaTxn]) -> Result<Option<BTreeMap<usize, Commit>>, BoxError> {
        let marked = restored.iter().filter_map(|t| t.marker.as_ref().map(|m| m.topic.clone()));
        let topics: BTreeSet<String> = self.spec.topic.iter().cloned().chain(marked).collect();
        if topics.is_empty() {
            return Ok(None);
        }
        let topics: Vec<String> = topics.into_iter().collect();
        marker::last_commits(&self.spec, lineage, restored.iter().map(|t| t.subtask), &topics).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::KafkaSink;
    use crate::sink_spec::DeliveryGuarantee;
    use eddy_test_services::Service;
    use rdkafka::message::Message;
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

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
        let spec = spec(&kafka.address(), "recovered", "recovery-test");
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
        let spec = spec(&kafka.address(), "fenced", "fence-test");
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

    /// A commit that fails because the broker went away is finished when the restarted
    /// attempt commits the restored checkpoint again (the runtime's `prepare_attempt`): here
    /// the broker also forgot everything (noida-db), so the records are written again from
    /// the checkpoint's copy, once.
    #[test]
    fn a_commit_the_broker_lost_is_finished_when_the_restart_commits_again() {
        let Some(mut kafka) = Service::kafka() else { return };
        let spec = spec(&kafka.address(), "owed", "owed-test");
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
        // The restart: the restored checkpoint's transactions are committed again, then the
        // committer cleans up and the new writers open.
        committer.commit(&txn).unwrap();
        committer.clean_up(std::slice::from_ref(&txn)).unwrap();
        let _writer = TransactionalWriter::new(spec.clone(), committer.registry(), 0).unwrap();
        let mut got = read_committed(&kafka.address(), "owed");
        got.sort();
        let mut expected: Vec<String> = (0..10).map(|i| format!("value {i}")).collect();
        expected.sort();
        assert_eq!(got, expected);
    }

    fn spec(brokers: &str, topic: &str, prefix: &str) -> Arc<SinkSpec<String>> {
        let sink = KafkaSink::<String>::builder()
            .brokers(brokers)
            .topic(topic)
            .delivery(DeliveryGuarantee::ExactlyOnce)
            .transactional_id_prefix(prefix)
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        sink.spec
    }

    /// Writes `value` as subtask `subtask`'s transaction of `checkpoint` and commits it.
    fn committed(committer: &KafkaCommitter<String>, subtask: usize, checkpoint: u64, value: &str) -> KafkaTxn {
        let mut writer = TransactionalWriter::new(committer.spec.clone(), committer.registry(), subtask).unwrap();
        writer.write(value.to_string(), 0).unwrap();
        let txn = writer.pre_commit(checkpoint).unwrap().unwrap();
        committer.commit(&txn).unwrap();
        txn
    }

    /// The markers say which checkpoint each subtask of the job's history committed last,
    /// also for a subtask the restored checkpoint does not know (a run after a rescale had it).
    #[test]
    fn newer_commits_are_found_in_every_subtask_s_marker() {
        let Some(kafka) = Service::kafka() else { return };
        let spec = spec(&kafka.address(), "newer", "newer-test");
        let committer = KafkaCommitter::new(spec.clone());
        committer.clean_up(&[]).unwrap(); // a fresh start: a new history
        let zero = committed(&committer, 0, 3, "zero at 3");
        let one = committed(&committer, 1, 5, "one at 5");
        let restored = std::slice::from_ref(&zero);
        match committer.newer_commits(3, restored).unwrap() {
            NewerCommits::Irrevocable { commits, description } => {
                assert_eq!(commits, 1);
                assert!(description.contains("subtask 1 up to checkpoint 5"), "{description}");
                assert!(description.contains("'newer-test'"), "{description}");
            }
            other => panic!("subtask 1 committed checkpoint 5 after 3: {other:?}"),
        }
        assert_eq!(committer.newer_commits(5, &[zero.clone(), one]).unwrap(), NewerCommits::Nothing);
        // The final checkpoint's transaction (u64::MAX) is newer than any other, unless it is
        // among the restored ones.
        let last = committed(&committer, 0, u64::MAX, "zero at the end");
        match committer.newer_commits(5, restored).unwrap() {
            NewerCommits::Irrevocable { commits: 1, description } => {
                assert!(description.contains("subtask 0 up to the final checkpoint"), "{description}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(committer.newer_commits(7, std::slice::from_ref(&last)).unwrap(), NewerCommits::Nothing);
    }

    /// A fresh start with the same prefix begins a new history: what an unrelated earlier run
    /// committed, with higher checkpoint ids, does not make a restore of the new one refuse.
    #[test]
    fn commits_of_another_history_are_not_newer() {
        let Some(kafka) = Service::kafka() else { return };
        let spec = spec(&kafka.address(), "histories", "histories-test");
        let earlier = KafkaCommitter::new(spec.clone());
        earlier.clean_up(&[]).unwrap();
        committed(&earlier, 0, 40, "earlier run, subtask 0");
        committed(&earlier, 1, 40, "earlier run, subtask 1");
        let fresh = KafkaCommitter::new(spec.clone());
        fresh.clean_up(&[]).unwrap();
        let txn = committed(&fresh, 0, 2, "fresh run, subtask 0");
        assert_eq!(fresh.newer_commits(2, std::slice::from_ref(&txn)).unwrap(), NewerCommits::Nothing);
    }
}
