//! Checkpoint settings and the restart strategy, as a job sets them.

use std::path::PathBuf;
use std::time::Duration;

/// Whether operators with several inputs align barriers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointingMode {
    /// Align: after a barrier arrives on one input, hold that input back until the barrier
    /// arrived on all of them, so the snapshot holds exactly the records before it.
    #[default]
    ExactlyOnce,
    /// Do not align: snapshot when the last barrier arrives. Records that passed an early
    /// barrier are in the snapshot *and* replayed after a failure (duplicates), but no input
    /// ever waits.
    AtLeastOnce,
}

/// How a job takes checkpoints. Built with [`CheckpointConfig::every`] and adjusted with its
/// setters; defaults follow Flink's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// Time between the starts of two checkpoints; `None`: only savepoints, on request.
    pub interval: Option<Duration>,
    /// A checkpoint not complete after this long is abandoned (default 10 minutes).
    pub timeout: Duration,
    /// At least this long between the end of one checkpoint and the start of the next.
    pub min_pause: Duration,
    /// How many complete checkpoints to keep on disk (default 3; the newest is never deleted).
    pub retain: usize,
    /// Barrier alignment.
    pub mode: CheckpointingMode,
    /// Where checkpoints are written (`<dir>/chk-<id>`); `None` keeps the newest one in memory,
    /// enough to restart within the process but not after it dies.
    pub dir: Option<PathBuf>,
    /// Whether a checkpoint written to `dir` stores only the keyed parts (one state in one
    /// key group) that changed since the previous one, and refers to earlier checkpoints for
    /// the rest (default `false`, as Flink's `execution.checkpointing.incremental`).
    /// Savepoints are always full.
    pub incremental: bool,
}

impl CheckpointConfig {
    /// Checkpoints every `interval`, exactly-once, kept in memory until [`CheckpointConfig::dir`]
    /// says where to write them.
    pub fn every(interval: Duration) -> Self {
        CheckpointConfig { interval: Some(interval.max(Duration::from_millis(1))), ..Self::on_request() }
    }

    /// No periodic checkpoints: state is snapshotted only for savepoints the user asks for.
    pub fn on_request() -> Self {
        CheckpointConfig {
            interval: None,
            timeout: Duration::from_secs(600),
            min_pause: Duration::ZERO,
            retain: 3,
            mode: CheckpointingMode::ExactlyOnce,
            dir: None,
            incremental: false,
        }
    }

    /// Writes checkpoints under `dir`, so a new process can restore from them.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Sets how long a checkpoint may take before it is abandoned.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the least time between one checkpoint's end and the next one's start.
    pub fn min_pause(mut self, pause: Duration) -> Self {
        self.min_pause = pause;
        self
    }

    /// Sets how many complete checkpoints stay on disk (at least 1).
    pub fn retain(mut self, checkpoints: usize) -> Self {
        self.retain = checkpoints.max(1);
        self
    }

    /// Writes incremental checkpoints: each stores only the keyed parts that changed since
    /// the previous checkpoint and refers to earlier checkpoints in the same directory for
    /// the others, so a checkpoint of a large, slowly changing state writes little. Keyed
    /// operators on the heap backend then track the entries they change and hand over only
    /// those at a barrier (a changelog, as Flink's changelog state backend), so the task's
    /// share of a checkpoint also follows the change. Such a checkpoint is not
    /// self-contained: copy the whole checkpoint directory, or take a savepoint (always full)
    /// to move state elsewhere.
    pub fn incremental(mut self, incremental: bool) -> Self {
        self.incremental = incremental;
        self
    }

    /// Sets barrier alignment.
    pub fn mode(mut self, mode: CheckpointingMode) -> Self {
        self.mode = mode;
        self
    }
}

/// What the job does when a subtask fails (a panic or an `Err` in user code, a source or
/// sink error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartStrategy {
    /// Fail the job with the cause (the default without checkpoints).
    None,
    /// Restore every subtask from the newest complete checkpoint after `delay` and go on, at
    /// most `attempts` times in the life of the job; then fail with the last cause. With
    /// checkpointing on, the default is 3 attempts, 1 s apart.
    FixedDelay {
        /// Restarts allowed.
        attempts: usize,
        /// Wait before each restart.
        delay: Duration,
    },
}

impl RestartStrategy {
    /// The default once checkpointing is on.
    pub const DEFAULT_WITH_CHECKPOINTS: RestartStrategy =
        RestartStrategy::FixedDelay { attempts: 3, delay: Duration::from_secs(1) };
}
