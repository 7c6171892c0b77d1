//! Settings that apply to a whole job.

use std::time::Duration;

use eddy_core::key::DEFAULT_MAX_PARALLELISM;

use crate::checkpoint::config::{CheckpointConfig, RestartStrategy};

pub use eddy_core::source::DEFAULT_MAX_LINE_LENGTH;

/// The default [`JobConfig::state_cache_bytes`]: 64 MiB per keyed subtask.
pub const DEFAULT_STATE_CACHE_BYTES: u64 = 64 << 20;

/// Job-wide settings; the stream environment fills these in.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Parallelism of operators that do not set their own.
    pub parallelism: usize,
    /// Number of key groups: the upper bound for any keyed operator's parallelism.
    pub max_parallelism: usize,
    /// Records per batch sent between subtasks.
    pub batch_size: usize,
    /// A partly filled batch is sent after at most this long (the latency bound).
    pub buffer_timeout: Duration,
    /// Batches a channel holds before its sender blocks (backpressure).
    pub channel_capacity: usize,
    /// Where keyed state lives: `None` in memory, `Some(dir)` in sled databases under `dir`.
    pub state_dir: Option<std::path::PathBuf>,
    /// What each keyed subtask's sled database caches in memory, in bytes.
    pub state_cache_bytes: u64,
    /// Checkpointing; `None`: off (no savepoints either).
    pub checkpoint: Option<CheckpointConfig>,
    /// What happens when a subtask fails; `None`: [`RestartStrategy::DEFAULT_WITH_CHECKPOINTS`]
    /// with checkpointing, [`RestartStrategy::None`] without.
    pub restart: Option<RestartStrategy>,
    /// A savepoint, checkpoint, or checkpoint directory (its newest valid checkpoint) to start from.
    pub restore_from: Option<std::path::PathBuf>,
    /// Start even if the snapshot holds state of an operator uid the job does not have.
    pub allow_non_restored_state: bool,
    /// Start a restore even if a transactional sink already committed output of later
    /// checkpoints that it cannot roll back (that output then appears twice).
    pub allow_duplicate_output: bool,
    /// The longest line, in bytes, a text source passes on; longer ones are skipped
    /// without being held in memory and go to its dead-letter output.
    pub max_line_length: usize,
    /// Count each operator's records in and out, watermarks, and busy / idle / backpressured
    /// time (see [`operator_metrics`](crate::operator_metrics)); on by default. Named
    /// counters (a sink's records written, dead letters) are kept either way.
    pub operator_metrics: bool,
}

impl JobConfig {
    /// The restart strategy in force.
    pub fn restart_strategy(&self) -> RestartStrategy {
        match (self.restart, &self.checkpoint) {
            (Some(strategy), _) => strategy,
            (None, Some(_)) => RestartStrategy::DEFAULT_WITH_CHECKPOINTS,
            (None, None) => RestartStrategy::None,
        }
    }
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_parallelism: DEFAULT_MAX_PARALLELISM,
            batch_size: 1024,
            buffer_timeout: Duration::from_millis(100),
            channel_capacity: 16,
            state_dir: None,
            state_cache_bytes: DEFAULT_STATE_CACHE_BYTES,
            checkpoint: None,
            restart: None,
            restore_from: None,
            allow_non_restored_state: false,
            allow_duplicate_output: false,
            max_line_length: DEFAULT_MAX_LINE_LENGTH,
            operator_metrics: true,
        }
    }
}
