//! Exactly-once delivery: one Kafka transaction per sink subtask and checkpoint, on eddy's
//! two-phase-commit machinery.
//!
//! - A subtask writes into an open transaction of its own producer, whose `transactional.id`
//!   is `<prefix>-<subtask>-<n>`, `n` being the id of the checkpoint after the last barrier
//!   it saw (the checkpoint it expects to close the transaction, as Flink's `KafkaSink`).
//! - At a barrier it flushes the producer (every record is in the transaction, durable on
//!   the brokers, invisible to `read_committed` consumers) and hands the producer to the
//!   sink's committer; the transaction's id goes into the checkpoint.
//! - When the checkpoint completes, the committer commits the transaction on that same
//!   producer. A transaction of a checkpoint that never completes is never committed.
//! - After a restart in the same process, a new subtask aborts what its predecessor left
//!   open. After a crash, producers of the new process start with `init_transactions` on
//!   the same ids (the restored checkpoint's, then the next ones in turn), which fences the
//!   dead process's producers and aborts their open transactions.
//!
//! librdkafka cannot commit a transaction of another producer instance (Flink resumes one by
//! reflection). So the restore of a checkpoint whose commit was cut off by a crash calls
//! `init_transactions` with that transaction's id: if the commit had reached the
//! transaction coordinator it completes; otherwise the transaction is aborted and its
//! records are lost. See docs/connectors.md for the exact guarantee.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use eddy_core::{BoxError, Timestamp};
use eddy_stream::sink::{Committer, TwoPhaseCommitSink};
use rdkafka::producer::{Producer, ThreadedProducer};
use serde::{Deserialize, Serialize};

use crate::client::Context;
use crate::sink::SinkSpec;

/// A pre-committed transaction as a checkpoint holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaTxn {
    /// The producer's `transactional.id`; `None` when nothing was written.
    pub transactional_id: Option<String>,
    /// The checkpoint that closed it.
    pub checkpoint: u64,
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

    /// Aborts and drops the producers `keep` rejects.
    fn abort_where(&self, timeout: std::time::Duration, discard: impl Fn(&str, usize) -> bool) {
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

/// One sink subtask's transactional writer.
pub struct TransactionalWriter<T> {
    spec: Arc<SinkSpec<T>>,
    registry: Arc<Registry>,
    subtask: usize,
    current: Option<(String, SharedProducer, Context)>,
    /// The checkpoint id the next transaction is named after.
    next: u64,
}

impl<T: 'static> TransactionalWriter<T> {
    pub(crate) fn new(spec: Arc<SinkSpec<T>>, registry: Arc<Registry>, subtask: usize) -> Result<Self, BoxError> {
        // What an earlier attempt of this subtask in this process left open or pre-committed
        // without a completed checkpoint will never be committed.
        registry.abort_where(spec.timeout, |_, s| s == subtask);
        let newest = registry.newest.load(Ordering::Acquire);
        // A process that died after the restored checkpoint had at most one checkpoint in
        // flight, so its open transactions are named after the next two ids: fence them now,
        // or they hold back read_committed consumers until the broker times them out.
        for ahead in 1..=LINGERING {
            let id = format!("{}-{}-{}", spec.transactional_id_prefix, subtask, newest + ahead);
            drop(transactional_producer(&spec, &id)?);
        }
        Ok(TransactionalWriter { spec, registry, subtask, current: None, next: newest + 1 })
    }

    fn begin(&mut self) -> Result<(), BoxError> {
        let id = format!("{}-{}-{}", self.spec.transactional_id_prefix, self.subtask, self.next);
        let producer = transactional_producer(&self.spec, &id)?;
        let (producer, context) = producer;
        producer.begin_transaction().map_err(|e| format!("Kafka sink: cannot begin transaction {id}: {e}"))?;
        let producer = Arc::new(producer);
        self.registry
            .producers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), (self.subtask, producer.clone()));
        self.current = Some((id, producer, context));
        Ok(())
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

impl<T: Send + 'static> TwoPhaseCommitSink<T> for TransactionalWriter<T> {
    type Txn = KafkaTxn;

    fn write(&mut self, value: T, timestamp: Timestamp) -> Result<(), BoxError> {
        if self.current.is_none() {
            self.begin()?;
        }
        let (_, producer, _) = self.current.as_ref().expect("begun above");
        self.spec.send(producer, &value, timestamp)
    }

    fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<KafkaTxn>, BoxError> {
        if checkpoint != u64::MAX {
            self.next = self.next.max(checkpoint + 1);
        }
        let Some((id, producer, context)) = self.current.take() else {
            // Nothing written; still recorded, so a restore knows which checkpoint it resumes.
            return Ok(Some(KafkaTxn { transactional_id: None, checkpoint }));
        };
        producer.flush(self.spec.timeout).map_err(|e| format!("Kafka sink: cannot flush transaction {id}: {e}"))?;
        let failed = context.health.failed_deliveries.load(Ordering::Relaxed);
        if failed > 0 {
            let last = context.health.last().unwrap_or_default();
            return Err(format!(
                "Kafka sink: {failed} record(s) of transaction {id} were not delivered (last: {last})"
            )
            .into());
        }
        Ok(Some(KafkaTxn { transactional_id: Some(id), checkpoint }))
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

impl<T: 'static> Committer<KafkaTxn> for KafkaCommitter<T> {
    fn commit(&self, txn: &KafkaTxn) -> Result<(), BoxError> {
        self.registry.saw(txn.checkpoint);
        let Some(id) = &txn.transactional_id else { return Ok(()) };
        let Some(producer) = self.registry.take(id) else {
            // Restored in a new process: the producer that wrote it is gone.
            let _ = transactional_producer(&self.spec, id)?;
            tracing::info!("Kafka sink: transaction {id} of a restored checkpoint finished by init_transactions");
            return Ok(());
        };
        let mut attempt = 0;
        loop {
            match producer.commit_transaction(self.spec.timeout) {
                Ok(()) => return Ok(()),
                Err(rdkafka::error::KafkaError::Transaction(e)) if e.is_retriable() && attempt < 3 => attempt += 1,
                Err(e) => return Err(format!("Kafka sink: cannot commit transaction {id}: {e}").into()),
            }
        }
    }

    fn abort(&self, txn: &KafkaTxn) -> Result<(), BoxError> {
        let Some(id) = &txn.transactional_id else { return Ok(()) };
        match self.registry.take(id) {
            Some(producer) => producer.abort_transaction(self.spec.timeout)?,
            None => drop(transactional_producer(&self.spec, id)?),
        }
        Ok(())
    }

    fn clean_up(&self, restored: &[KafkaTxn]) -> Result<(), BoxError> {
        for txn in restored {
            self.registry.saw(txn.checkpoint);
        }
        let keep: Vec<&str> = restored.iter().filter_map(|t| t.transactional_id.as_deref()).collect();
        self.registry.abort_where(self.spec.timeout, |id, _| !keep.contains(&id));
        Ok(())
    }
}
