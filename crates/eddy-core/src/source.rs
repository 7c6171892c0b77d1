//! The `Source` trait: how records enter a job.

/// An error a user's source or sink reports; it fails the job with the operator's name.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a source's poll found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourcePoll {
    /// Values were produced (or may be on the next poll); poll again right away.
    Ready,
    /// Nothing is available now and the source already waited briefly; poll again later.
    Pending,
    /// The input has ended; no more values will come.
    Done,
}

/// One parallel instance of a source. The runtime calls `poll_next` in a loop on the
/// subtask's own thread; a source may block briefly but should return [`SourcePoll::Pending`]
/// within about 100 ms when it has nothing, so time keeps moving and cancellation works.
pub trait Source<T>: Send {
    /// Fills the empty `out` with at most `max` values and says whether more may follow.
    fn poll_next(&mut self, out: &mut Vec<T>, max: usize) -> Result<SourcePoll, BoxError>;

    /// The position to resume from after a failure, as serialised splits (operator state,
    /// dealt out again when a job restores at another parallelism); `None` for a source that
    /// cannot rewind (the default), which a checkpointed job refuses.
    fn snapshot(&mut self) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        Ok(None)
    }
}
