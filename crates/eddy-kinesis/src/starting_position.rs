//! Where a fresh job starts reading each shard.

use eddy_core::Timestamp;

/// Where a job that starts without a checkpoint begins reading the shards that exist when it
/// starts (Flink's `STREAM_INITIAL_POSITION`). Shards found later (the children of a split or
/// merge) are always read from their start, and a restored job resumes every shard where its
/// checkpoint left it, whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartingPosition {
    /// The oldest record each shard still holds (`TRIM_HORIZON`, the default).
    #[default]
    TrimHorizon,
    /// Only records that arrive after the job starts (`LATEST`). Recorded as the job's start
    /// time, so a checkpoint taken before the first record arrives still resumes without a gap.
    Latest,
    /// Records that arrived at or after this time, ms since the epoch (`AT_TIMESTAMP`).
    AtTimestamp(Timestamp),
}
