//! Checkpoint barriers: markers that flow with the records and cut the stream into "before
//! checkpoint n" and "after", so every operator snapshots the same consistent point.

/// A checkpoint barrier. Sources emit it after recording their position; an operator with
/// several inputs waits for it on every input (alignment), snapshots its state and passes it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Barrier {
    /// The checkpoint's id, increasing over the life of a job (also across restores).
    pub checkpoint: u64,
    /// What the snapshot is for.
    pub kind: BarrierKind,
}

/// What a barrier's snapshot is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarrierKind {
    /// A periodic checkpoint, for recovery.
    Checkpoint,
    /// A savepoint the user asked for; the job goes on.
    Savepoint,
    /// A savepoint after which the job stops. With `drain`, sources first emit the end of
    /// event time, so every window fires before the snapshot.
    Stop {
        /// Whether event time was advanced to the end before the snapshot.
        drain: bool,
    },
    /// Taken after the input ended and every operator finished: what a transactional sink
    /// still holds is committed with it.
    Final,
}

impl Barrier {
    /// The barrier sent through a finished chain to collect its final state.
    pub const FINAL: Barrier = Barrier { checkpoint: u64::MAX, kind: BarrierKind::Final };
}
