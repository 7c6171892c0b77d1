//! A Kinesis record as the source read it, before deserialisation.

use eddy_core::{RawRecord, Timestamp};

/// One record of a shard, borrowed from the `GetRecords` response: what a
/// [`crate::Deserializer`] and a timestamp extractor see.
#[derive(Debug, Clone, Copy)]
pub struct KinesisRecord<'a> {
    /// The stream it was read from.
    pub stream: &'a str,
    /// Its shard (`shardId-000000000003`).
    pub shard: &'a str,
    /// Its sequence number, unique and increasing within the shard.
    pub sequence_number: &'a str,
    /// The partition key the producer gave it.
    pub partition_key: &'a str,
    /// Its payload.
    pub data: &'a [u8],
    /// When Kinesis accepted it, ms since the epoch (`ApproximateArrivalTimestamp`).
    pub arrival_ms: Timestamp,
}

impl KinesisRecord<'_> {
    /// The record as a dead letter holds it: `split` is `<stream>/<shard>`, `position` the
    /// sequence number, so the bad input can be found again.
    pub fn to_raw(&self) -> RawRecord {
        RawRecord {
            split: format!("{}/{}", self.stream, self.shard),
            position: self.sequence_number.to_string(),
            timestamp: self.arrival_ms,
            key: Some(self.partition_key.as_bytes().to_vec()),
            payload: self.data.to_vec(),
        }
    }
}
