//! Dead letters: inputs that could not be used, kept with the reason instead of failing the
//! job (like a delivery stream's error-output prefix). Fallible operators reject their input
//! value; sources reject the raw bytes they could not deserialise, as a [`RawRecord`].

/// An input that was rejected, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeadLetter<T> {
    /// The record as it came in.
    pub input: T,
    /// The error's text.
    pub error: String,
}

/// A record as a source read it, before deserialisation: what a source's dead letter holds,
/// so the bad input can be found again (and replayed once the reader is fixed).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RawRecord {
    /// The split it came from (a Kafka `topic-partition`, a Kinesis shard id).
    pub split: String,
    /// Its position within the split (a Kafka offset, a Kinesis sequence number).
    pub position: String,
    /// The record's own timestamp, ms since the epoch ([`crate::time::NO_TIMESTAMP`] if none).
    pub timestamp: crate::Timestamp,
    /// The record's key, if it has one.
    pub key: Option<Vec<u8>>,
    /// The record's payload as read.
    pub payload: Vec<u8>,
}
