//! Partitions as splits: a topic partition and the offset to read next, which is what a
//! checkpoint records. Partitions are dealt to subtasks by a fixed function of the topic,
//! the partition and the parallelism (Flink's `KafkaSourceEnumerator.getSplitOwner`), so
//! every subtask knows, without asking anyone, which partitions are its own: those it finds
//! while running and those a checkpoint recorded land on the same subtask.

use serde::{Deserialize, Serialize};

/// One partition's position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionSplit {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset of the next record to read.
    pub next_offset: i64,
}

/// Java's `String.hashCode`, so partitions land on the same subtask index as in Flink.
fn java_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| hash.wrapping_mul(31).wrapping_add(unit as i32))
}

/// The subtask (of `parallelism`) that reads `partition` of `topic`: partitions of a topic go
/// round robin from a start index that depends on the topic, so several topics spread evenly.
pub fn owner(topic: &str, partition: i32, parallelism: usize) -> usize {
    let parallelism = parallelism.max(1) as i64;
    let start = ((java_hash(topic) as i64 * 31) & 0x7FFF_FFFF) % parallelism;
    ((start + partition as i64) % parallelism) as usize
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

impl PartitionSplit {
    /// The split as a checkpoint stores it.
    pub fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, config()).expect("a partition split always encodes")
    }

    /// A split a checkpoint recorded.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        bincode::serde::decode_from_slice(bytes, config())
            .map(|(split, _)| split)
            .map_err(|e| format!("a recorded Kafka partition position does not decode: {e}"))
    }

    /// `topic-partition`, as Kafka names it.
    pub fn name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn java_string_hash() {
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("orders"), -1_008_770_331); // "orders".hashCode() in Java
    }

    proptest! {
        /// Every partition has exactly one owner at any parallelism, and a topic's partitions
        /// are spread evenly (owners differ by at most one partition).
        #[test]
        fn each_partition_has_one_owner_and_load_is_even(
            topic in "[a-z_.-]{1,20}",
            partitions in 1i32..64,
            parallelism in 1usize..16,
        ) {
            let mut load = vec![0usize; parallelism];
            for partition in 0..partitions {
                let o = owner(&topic, partition, parallelism);
                prop_assert!(o < parallelism);
                load[o] += 1;
            }
            let (min, max) = (load.iter().min().unwrap(), load.iter().max().unwrap());
            prop_assert!(max - min <= 1, "uneven: {:?}", load);
        }

        #[test]
        fn splits_round_trip(topic in ".{0,30}", partition in 0i32..10_000, next_offset in 0i64..i64::MAX) {
            let split = PartitionSplit { topic, partition, next_offset };
            prop_assert_eq!(PartitionSplit::decode(&split.encode()).unwrap(), split);
        }
    }
}
