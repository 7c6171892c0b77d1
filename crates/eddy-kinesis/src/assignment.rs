//! Which subtask reads which shard.
//!
//! Every subtask decides on its own, by the same pure function of the shard id and the
//! parallelism, so no coordinator is needed and each shard has exactly one reader: the shards
//! a subtask finds while running (the children of a split) and those a checkpoint restores
//! land on the same subtask, at any parallelism (Flink's Kafka source assigns partitions the
//! same way). Kinesis numbers shards in creation order (`shardId-000000000007`), so the
//! number modulo the parallelism spreads a new stream's shards, and the children of a
//! resharding, evenly.
//!
//! ```
//! use eddy_kinesis::owner;
//! assert_eq!(owner("shardId-000000000005", 2), 1);
//! assert_eq!(owner("shardId-000000000005", 3), 2);
//! ```

/// The subtask (`0..parallelism`) that reads `shard`.
pub fn owner(shard: &str, parallelism: usize) -> usize {
    let parallelism = parallelism.max(1) as u64;
    let number = shard.rsplit('-').next().and_then(|digits| digits.parse::<u64>().ok());
    // Ids that are not Kinesis' usual form still get a stable owner.
    let number = number.unwrap_or_else(|| xxhash_rust::xxh3::xxh3_64(shard.as_bytes()));
    (number % parallelism) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u64) -> String {
        format!("shardId-{n:012}")
    }

    proptest! {
        /// Every shard has exactly one owner, within range, and the owners of n consecutive
        /// shards (a new stream) differ by at most one shard per subtask.
        #[test]
        fn owners_are_unique_and_balanced(first in 0u64..1_000, shards in 1u64..64, parallelism in 1usize..16) {
            let mut load = vec![0usize; parallelism];
            for n in first..first + shards {
                let subtask = owner(&id(n), parallelism);
                prop_assert!(subtask < parallelism);
                prop_assert_eq!(subtask, owner(&id(n), parallelism), "deterministic");
                load[subtask] += 1;
            }
            let (min, max) = (load.iter().min().unwrap(), load.iter().max().unwrap());
            prop_assert!(max - min <= 1, "unbalanced: {:?}", load);
        }

        #[test]
        fn unusual_ids_get_a_stable_owner(shard in "[a-z]{1,12}", parallelism in 1usize..8) {
            prop_assert!(owner(&shard, parallelism) < parallelism);
            prop_assert_eq!(owner(&shard, parallelism), owner(&shard, parallelism));
        }
    }
}
