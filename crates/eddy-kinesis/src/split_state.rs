//! A shard's position as a checkpoint records it.
//!
//! Each reader records every shard it owns, including the ones it has finished (so that a
//! restored job knows their children may start, and does not read them again) and the ones
//! still waiting for their parents. The record is versioned bincode: a format byte, then
//! `(stream, shard, position)`.

use eddy_core::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::KinesisError;

/// The format of [`ShardSplit::encode`].
const FORMAT: u8 = 1;

/// Where reading a shard resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Position {
    /// At its oldest record.
    TrimHorizon,
    /// At the first record that arrived at or after this time.
    AtTimestamp(Timestamp),
    /// Right after the record with this sequence number (the last one emitted).
    After(String),
    /// Read to its end (a closed shard).
    Finished,
}

/// One shard's entry in a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ShardSplit {
    pub stream: String,
    pub shard: String,
    pub position: Position,
}

impl ShardSplit {
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![FORMAT];
        // Encoding plain strings and integers into a Vec cannot fail.
        let body = bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default();
        bytes.extend(body);
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, KinesisError> {
        match bytes.split_first() {
            Some((&FORMAT, body)) => bincode::serde::decode_from_slice(body, bincode::config::standard())
                .map(|(split, _)| split)
                .map_err(|e| KinesisError::Checkpoint(e.to_string())),
            Some((other, _)) => Err(KinesisError::Checkpoint(format!("unknown format {other}"))),
            None => Err(KinesisError::Checkpoint("an empty entry".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn position() -> impl Strategy<Value = Position> {
        prop_oneof![
            Just(Position::TrimHorizon),
            any::<i64>().prop_map(Position::AtTimestamp),
            "[0-9]{1,56}".prop_map(Position::After),
            Just(Position::Finished),
        ]
    }

    proptest! {
        #[test]
        fn round_trips(stream in "[a-zA-Z0-9_.-]{1,20}", shard in "shardId-[0-9]{12}", position in position()) {
            let split = ShardSplit { stream, shard, position };
            prop_assert_eq!(ShardSplit::decode(&split.encode()).unwrap(), split);
        }
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let split =
            ShardSplit { stream: "s".into(), shard: "shardId-000000000001".into(), position: Position::Finished };
        let bytes = split.encode();
        assert!(ShardSplit::decode(&bytes[..bytes.len() - 3]).is_err());
        assert!(ShardSplit::decode(&[]).is_err());
        assert!(ShardSplit::decode(&[9, 1, 2]).unwrap_err().to_string().contains("unknown format 9"));
    }
}
