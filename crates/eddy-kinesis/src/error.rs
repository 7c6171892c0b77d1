//! What can go wrong when reading Kinesis, said so that a user knows what to change.

/// An error of the Kinesis source. Every message names the connector and the stream, so a
/// failed job says which of its inputs failed.
#[derive(Debug, thiserror::Error)]
pub enum KinesisError {
    /// The source was configured in a way that cannot work.
    #[error("kinesis source: {0}")]
    Config(String),
    /// A call to Kinesis failed and retrying will not help (unknown stream, rejected
    /// credentials, a malformed request).
    #[error("kinesis stream '{stream}': {operation} failed: {reason}{hint}")]
    Request {
        /// The stream the call was about.
        stream: String,
        /// The API call (`ListShards`, `GetRecords`, …), with the shard where there is one.
        operation: String,
        /// The service's error code and message, or the client's.
        reason: String,
        /// What to check, for the errors whose cause is known.
        hint: &'static str,
    },
    /// Kinesis kept refusing (throttling, unavailable, timeouts) through every retry.
    #[error("kinesis stream '{stream}': {operation} still failing after {attempts} attempts: {reason}")]
    RetriesExhausted {
        /// The stream the call was about.
        stream: String,
        /// The API call, with the shard.
        operation: String,
        /// How many calls were made.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// A checkpoint's record of a shard could not be read back.
    #[error("kinesis source: a checkpointed shard position is damaged ({0}); restore from another checkpoint")]
    Checkpoint(String),
}
