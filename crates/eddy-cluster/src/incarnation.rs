//! A task's incarnations: each time a task starts somewhere, it fences the previous owner and
//! then writes under a transactional id no producer has used before.
//!
//! Task `<application id>-sub-topology-0-3` started for the n-th time writes as
//! `<application id>-sub-topology-0-3-<n>`; the checkpoint store records which incarnations were
//! claimed (`incarnations/<task>/<n>`). A start:
//!
//! 1. finds the newest claimed incarnation `n` and calls `init_transactions` with its id:
//!    that aborts whatever incarnation `n` left open and fences it (a zombie can no longer
//!    commit), exactly as one id per task would;
//! 2. creates its own producer as incarnation `n + 1` (at the same time as step 1: neither
//!    waits for the other) and, once both are done, claims `n + 1` in the
//!    store (a create-if-absent). A start that loses the race for `n + 1` goes round again
//!    and fences the winner's incarnation in turn, so of two processes that both believe they
//!    own the task, only the last to start can commit.
//!
//! **Why not one transactional id per task.** Then the new owner's records carry the same
//! producer id as the transaction it just aborted. A broker must tell a read_committed reader
//! only of the aborted transactions inside the range it fetches; noida-db also reports older
//! ones, and librdkafka then skips every later record of that producer id on that partition
//! (it waits for an abort marker that never comes) while its position moves on. Window tasks
//! that had been reading all along silently lost the new owner's watermarks and records, and
//! windows never fired: the output missing after a SIGKILL (see `docs/scale-out.md`). A
//! producer id that never had a transaction aborted is never skipped; on Apache Kafka the
//! fresh ids cost only coordinator entries that expire (`transactional.id.expiration.ms`).

use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;

use crate::error::{ClusterError, Result};
use crate::store::CheckpointStore;

/// How long a transactional call may take before the task gives up.
pub(crate) const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the broker keeps a transaction open before aborting it (Kafka Streams' setting
/// under exactly-once): bounds how long a crashed owner's open transaction can hold back
/// read_committed readers when nobody takes its task over.
const TRANSACTION_ABORT_AFTER: &str = "10000";

/// Starts after this many lost races for an incarnation give up (several processes starting
/// the same task at once lose a race or two at most).
const ATTEMPTS: usize = 20;

/// The producer of a new incarnation of `task` (`<application id>-sub-topology-<n>-<p>`),
/// initialized: the previous incarnation is fenced, its open transaction aborted.
pub(crate) fn start(brokers: &str, store: &CheckpointStore, task: &str) -> Result<BaseProducer> {
    let started = Instant::now();
    for _ in 0..ATTEMPTS {
        let newest = store.newest_incarnation(task)?;
        let next = newest.map_or(0, |n| n + 1);
        // Fencing incarnation n and initializing n + 1 are each a few round trips to the
        // transaction coordinator and do not depend on each other: they run at once. Both end
        // before the claim, which is what makes the last of two racing starts the one that
        // can commit.
        let (fenced, own) = std::thread::scope(|scope| {
            let fencing = newest.map(|n| {
                // Fences incarnation n; the fencing producer itself writes nothing.
                scope.spawn(move || producer(brokers, &format!("{task}-{n}")).map(drop))
            });
            let own = producer(brokers, &format!("{task}-{next}"));
            let fenced = fencing.map_or(Ok(()), |fencing| {
                let panicked = || ClusterError::Config(format!("fencing the previous incarnation of {task} panicked"));
                fencing.join().unwrap_or_else(|_| Err(panicked()))
            });
            (fenced, own)
        });
        fenced?;
        let own = own?;
        let initialized = started.elapsed();
        if store.claim_incarnation(task, next)? {
            tracing::debug!(
                task,
                incarnation = next,
                initialized_ms = initialized.as_millis() as u64,
                claimed_ms = started.elapsed().as_millis() as u64,
                "incarnation started"
            );
            return Ok(own);
        }
    }
    Err(ClusterError::Config(format!(
        "task {task}: {ATTEMPTS} other starts claimed its next incarnation first; are many processes restarting in a loop?"
    )))
}

/// A transactional producer with id `transactional_id`, initialized (which fences the
/// id's previous producer and aborts its open transaction).
fn producer(brokers: &str, transactional_id: &str) -> Result<BaseProducer> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", TRANSACTION_ABORT_AFTER)
        .set("linger.ms", "5")
        .create()
        .map_err(ClusterError::kafka(format!("creating the producer {transactional_id}")))?;
    producer
        .init_transactions(TRANSACTION_TIMEOUT)
        .map_err(ClusterError::kafka(format!("initializing the producer {transactional_id}")))?;
    Ok(producer)
}
