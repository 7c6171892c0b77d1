//! A repartition topic, between the source sub-topology and a branch's window sub-topology:
//! its name, which partition a key goes to, and what its records hold.
//!
//! Each branch has its own topic, with as many partitions as the input topic (as Kafka
//! Streams sizes its repartition topics). A key's partition is derived from its key group, never from the key
//! directly: `key_group = xxh3(key) % max_parallelism`, and partition `p` of `n` holds the
//! contiguous key groups Flink's `KeyGroupRangeAssignment` gives subtask `p` of `n`. So key
//! groups stay the unit of state, the same as in one process, and a checkpoint's state is
//! filed per key group.
//!
//! Besides records, the topic carries **watermarks**: every source task (one per input
//! partition) writes its watermark to every partition of every repartition topic when it
//! commits, so a window task knows, per producing task, how far event time has got, and
//! takes the minimum.
//! With `--bounded` a source task that reached the end offsets writes `i64::MAX`, the final
//! watermark that fires every window.

use eddy_core::key::{key_group, subtask_for_key_group, KeyHasher};
use serde::{Deserialize, Serialize};

use crate::error::{ClusterError, Result};

/// The repartition topic of `application_id`'s branch `branch` (a word count's one branch,
/// `window`, gives `<application id>-window-repartition`).
pub fn topic_name(application_id: &str, branch: &str) -> String {
    format!("{application_id}-{branch}-repartition")
}

/// A record of the repartition topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Envelope<K, V> {
    /// A keyed value.
    Record {
        /// The key.
        key: K,
        /// The value.
        value: V,
        /// Its event time.
        timestamp: i64,
    },
    /// Source task `producer` (its input partition) has seen every record up to `watermark`.
    Watermark {
        /// The producing source task's input partition.
        producer: u32,
        /// Its watermark (`i64::MAX`: the end of its input).
        watermark: i64,
    },
}

impl<K: Serialize, V: Serialize> Envelope<K, V> {
    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, bincode::config::standard()).expect("keys and values serialize")
    }
}

impl<K: serde::de::DeserializeOwned, V: serde::de::DeserializeOwned> Envelope<K, V> {
    /// Reads a record written by [`Envelope::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .map(|(envelope, _)| envelope)
            .map_err(|e| {
                ClusterError::Config(format!(
                    "a repartition record does not decode ({e}): was the topic written by another version of the job? Use a new --application-id"
                ))
            })
    }
}

/// Maps keys to key groups and key groups to repartition partitions.
#[derive(Debug, Clone)]
pub struct Partitioner {
    hasher: KeyHasher,
    max_parallelism: usize,
    partitions: usize,
}

impl Partitioner {
    /// `partitions` repartition partitions over `max_parallelism` key groups.
    pub fn new(max_parallelism: usize, partitions: usize) -> Self {
        Partitioner { hasher: KeyHasher::default(), max_parallelism, partitions }
    }

    /// The key group of `key`.
    pub fn key_group<K: Serialize>(&mut self, key: &K) -> usize {
        let hash = self.hasher.hash(key).expect("keys serialize");
        key_group(hash, self.max_parallelism)
    }

    /// The number of key groups.
    pub fn max_parallelism(&self) -> usize {
        self.max_parallelism
    }

    /// The partition that holds `key_group`.
    pub fn partition_of(&self, key_group: usize) -> i32 {
        subtask_for_key_group(key_group, self.max_parallelism, self.partitions) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_holds_a_contiguous_range_of_key_groups() {
        let partitioner = Partitioner::new(128, 12);
        let owners: Vec<i32> = (0..128).map(|kg| partitioner.partition_of(kg)).collect();
        assert!(owners.windows(2).all(|w| w[0] <= w[1] && w[1] - w[0] <= 1), "{owners:?}");
        assert_eq!((owners[0], owners[127]), (0, 11));
    }

    #[test]
    fn envelopes_round_trip() {
        let record: Envelope<String, u64> = Envelope::Record { key: "a".into(), value: 1, timestamp: -5 };
        let mark: Envelope<String, u64> = Envelope::Watermark { producer: 3, watermark: i64::MAX };
        for envelope in [record, mark] {
            assert_eq!(Envelope::decode(&envelope.encode()).unwrap(), envelope);
        }
        assert!(Envelope::<String, u64>::decode(&[0xff, 0xff]).is_err());
    }
}
