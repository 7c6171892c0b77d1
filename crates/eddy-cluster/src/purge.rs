//! Deleting repartition records that no task will read again: [`Purger`].
//!
//! Repartition topics are created with no time retention (a record's timestamp is its event
//! time, which may be long past), so without help they grow with the input for ever. But a
//! record of a repartition topic is read by one task only, and once that task has committed
//! an offset past it, no owner of the task will read it again: a task that moves restores
//! its state from the checkpoint its committed offset names and reads on from that offset.
//! So, as Kafka Streams does (`repartition.purge.interval.ms`, 30 s), every purge interval
//! a member asks the broker to delete each of its repartition partitions' records before the
//! offset its task last committed there (`DeleteRecords`; a task that reads two repartition
//! topics committed an offset in each). Input topics are the user's, and are never purged.
//!
//! Purging is housekeeping: a failed request is logged and tried again at the next
//! interval, never an error of the job.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::Result;

/// How long a purge request may take.
const PURGE_TIMEOUT: Duration = Duration::from_secs(10);

/// A member's purges of its repartition partitions (see the module docs).
pub(crate) struct Purger {
    admin: AdminClient<DefaultClientContext>,
    runtime: tokio::runtime::Runtime,
    interval: Duration,
    last: Instant,
    /// What was purged already, by topic and partition: a partition is asked again only
    /// when its committed offset moved on.
    purged: BTreeMap<(String, i32), i64>,
}

impl Purger {
    /// A purger that asks `brokers` every `interval`.
    pub(crate) fn new(brokers: &str, interval: Duration) -> Result<Self> {
        let (admin, runtime) = crate::admin::admin(brokers)?;
        Ok(Purger { admin, runtime, interval, last: Instant::now(), purged: BTreeMap::new() })
    }

    /// Whether the purge interval has passed since the last purge.
    pub(crate) fn is_due(&self) -> bool {
        self.last.elapsed() >= self.interval
    }

    /// Deletes the records of each `(topic, partition)` before its committed `offset`, where
    /// that offset moved on since the last purge.
    pub(crate) fn purge(&mut self, committed: impl IntoIterator<Item = (String, i32, i64)>) {
        self.last = Instant::now();
        let mut list = TopicPartitionList::new();
        let mut asked = Vec::new();
        for (topic, partition, offset) in committed {
            if self.purged.get(&(topic.clone(), partition)).is_some_and(|&done| done >= offset) || offset <= 0 {
                continue;
            }
            if list.add_partition_offset(&topic, partition, Offset::Offset(offset)).is_ok() {
                asked.push(((topic, partition), offset));
            }
        }
        if asked.is_empty() {
            return;
        }
        let options = AdminOptions::new().operation_timeout(Some(PURGE_TIMEOUT));
        match self.runtime.block_on(self.admin.delete_records(&list, &options)) {
            Ok(result) => {
                for ((topic, partition), offset) in asked {
                    match result.find_partition(&topic, partition).map(|e| e.error()) {
                        Some(Ok(())) => {
                            self.purged.insert((topic, partition), offset);
                        }
                        Some(Err(error)) => tracing::warn!(topic, partition, %error, "purging a repartition topic"),
                        None => tracing::warn!(topic, partition, "purging a repartition topic: no answer"),
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "purging the repartition topics"),
        }
    }
}
