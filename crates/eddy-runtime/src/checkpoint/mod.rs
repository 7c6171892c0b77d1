//! Checkpoints and savepoints: consistent snapshots of a running job's state, taken without
//! stopping it, so it can recover from failures with exactly-once state and be stopped and
//! restarted (also at another parallelism).
//!
//! The coordinator starts checkpoint *n* by asking every source to record its position
//! and emit `Barrier(n)`. Barriers flow with the records; a subtask with several inputs
//! *aligns* them (holds back inputs whose barrier came first, see `alignment.rs`), then each
//! operator snapshots its state through its [`StateContext`] and the task acks. When every task has acked, the
//! snapshot is written (to sled under the checkpoint directory, or kept in memory) with its
//! metadata last, and transactional sinks' pre-committed transactions are committed. After a
//! failure the job master restores every subtask from the newest complete checkpoint; before
//! any restored attempt starts, each transactional sink is asked for output it committed
//! after that checkpoint ([`NewerCommits`]), which it rolls back or the job refuses to start.

pub(crate) mod alignment;
pub(crate) mod committer;
pub(crate) mod config;
pub(crate) mod coordinator;
pub mod history;
pub(crate) mod restored;
pub(crate) mod snapshot_port;
pub(crate) mod task;

pub use committer::{NewerCommits, TxnCommitter, PENDING_TRANSACTIONS};
pub use config::{CheckpointConfig, CheckpointingMode, RestartStrategy};
pub use history::{CheckpointHistory, CheckpointRecord, OperatorStateSize};
pub use snapshot_port::{StateContext, SubtaskChanges, SubtaskList};
pub(crate) use task::TaskCheckpointing;
