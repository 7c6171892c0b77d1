//! A shard as `ListShards` describes it: its id, the shards it came from, and whether it is
//! closed; and how sequence numbers compare.

use std::cmp::Ordering;

/// What the reader needs to know about one shard of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShardInfo {
    /// `shardId-000000000003`.
    pub id: String,
    /// The shards it was split or merged from (none for a shard the stream was created with).
    pub parents: Vec<String>,
    /// For a closed shard (split or merged into children), the sequence number of its last
    /// record; `None` while it is open.
    pub ending_sequence: Option<String>,
}

impl ShardInfo {
    /// The shard from a `ListShards` entry.
    pub(crate) fn from_sdk(shard: &aws_sdk_kinesis::types::Shard) -> Self {
        let parents = [shard.parent_shard_id(), shard.adjacent_parent_shard_id()];
        ShardInfo {
            id: shard.shard_id().to_string(),
            parents: parents.into_iter().flatten().map(str::to_string).collect(),
            ending_sequence: shard
                .sequence_number_range()
                .and_then(|range| range.ending_sequence_number())
                .map(str::to_string),
        }
    }

    /// Whether the shard is closed: no record will be added to it any more.
    pub fn is_closed(&self) -> bool {
        self.ending_sequence.is_some()
    }
}

/// Compares two sequence numbers. They are decimal strings of up to 128 bits, longer than
/// any integer type's text, so they compare by length first and then digit by digit.
pub(crate) fn compare_sequence(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn long_sequence_numbers_compare_as_numbers() {
        let a = "49590338271490256608559692538361571095921575989136588898";
        let b = "49590338271490256608559692540925702759324208523137515618";
        assert_eq!(compare_sequence(a, b), Ordering::Less);
        assert_eq!(compare_sequence("10", "9"), Ordering::Greater);
        assert_eq!(compare_sequence("007", "7"), Ordering::Equal);
    }

    proptest! {
        #[test]
        fn agrees_with_integer_order(a: u128, b: u128) {
            prop_assert_eq!(compare_sequence(&a.to_string(), &b.to_string()), a.cmp(&b));
        }
    }
}
