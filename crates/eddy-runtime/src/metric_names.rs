//! Standard counter names: what the runtime, the operators and the connectors count, under
//! the names that the metrics endpoint and `JobMetrics` show.

/// Records that entered a subtask (from its channel, or from its source; per split of a
/// source that has splits: `<split>.records_in`).
pub const RECORDS_IN: &str = "records_in";
/// Bytes a source read (per split: `<split>.bytes_in`).
pub const BYTES_IN: &str = "bytes_in";
/// Records a source's split is behind the newest record of the split (`<split>.lag_records`).
pub const LAG_RECORDS: &str = "lag_records";
/// Milliseconds a source's split is behind the newest record of the split (`<split>.lag_ms`).
pub const LAG_MS: &str = "lag_ms";
/// Records rejected to the dead-letter output (by a source or a fallible function).
pub const DEAD_LETTERS: &str = "dead_letters";
/// Records a subtask sent to other subtasks.
pub const RECORDS_OUT: &str = "records_out";
/// Records a sink wrote.
pub const RECORDS_WRITTEN: &str = "records_written";
/// Records dropped because their window had already fired.
pub const LATE_RECORDS_DROPPED: &str = "late_records_dropped";
/// Milliseconds a source subtask spent paused by watermark alignment.
pub const ALIGNMENT_PAUSED_MS: &str = "watermark_alignment_paused_ms";
/// How far a source subtask's watermark was above its alignment group's minimum when it
/// last looked, in milliseconds (Flink's `watermarkAlignmentDrift`).
pub const ALIGNMENT_DRIFT_MS: &str = "watermark_alignment_drift_ms";
/// The name the job master's counters are filed under (subtask 0).
pub const CHECKPOINTS: &str = "Checkpoints";
/// Checkpoints and savepoints completed.
pub const CHECKPOINTS_COMPLETED: &str = "completed";
/// Checkpoints and savepoints abandoned (timeout, failure, end of input).
pub const CHECKPOINTS_ABANDONED: &str = "abandoned";
/// From trigger to complete, of the last completed one, in milliseconds.
pub const LAST_CHECKPOINT_MS: &str = "last_duration_ms";
/// Bytes of state (keys and values) in the last completed one.
pub const LAST_CHECKPOINT_BYTES: &str = "last_state_bytes";
/// Bytes of state (keys and values) an operator subtask put into the newest completed
/// checkpoint.
pub const STATE_BYTES: &str = "checkpointed_state_bytes";
/// State bytes (keys and values) the checkpoints and savepoints stored themselves, over
/// all completed ones: all their state for full ones, only the changed chunks for
/// incremental checkpoints.
pub const WRITTEN_STATE_BYTES: &str = "written_state_bytes";
/// Newer checkpoints or savepoints a restore skipped (damaged, incomplete, gone).
pub const RESTORE_SKIPPED: &str = "restore_skipped_snapshots";
/// Commits of newer checkpoints that transactional sinks rolled back on a restore.
pub const ROLLED_BACK_COMMITS: &str = "rolled_back_commits";
/// Commits of newer checkpoints left visible on a restore (duplicates that were allowed).
pub const DUPLICATE_COMMITS: &str = "duplicate_commits";
