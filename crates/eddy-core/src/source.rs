//! How records enter a job.
//!
//! Two traits, one for simple inputs and one for inputs cut into *splits*:
//!
//! - [`Source`] yields plain values (`poll_next`), and the runtime gives them no event time. A
//!   collection, a file, stdin, an application's channel.
//! - [`SourceReader`] is Flink's `SourceReader`: it pushes records into a [`SourceOutput`]
//!   with their timestamps, per split (a Kafka partition, a Kinesis shard), so the watermark
//!   can be generated per split inside the source and the subtask emits the minimum over its
//!   active splits. It can also reject undeserialisable records as dead letters, report
//!   per-split metrics (records, bytes, lag), and hear when a checkpoint completed. A
//!   [`SplitSource`] opens one reader per subtask and says how restored splits are dealt out.
//!
//! A [`Source`] runs as a [`SourceReader`] through [`PlainReader`], which moves its values
//! into the output untouched, so the runtime runs one kind of thing and simple sources pay
//! nothing.
//!
//! With watermark alignment ([`crate::watermark_alignment`]) the runtime stops polling a
//! reader whose watermark ran too far ahead of its group, and tells a reader of several splits
//! which ones to pause ([`SourceReader::pause_or_resume_splits`]).

use std::sync::Arc;

pub use crate::source_output::{SourceOutput, SourceWatermarks, SplitId, SplitMetrics, SplitWatermarkGenerator};

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

/// One parallel instance of a source whose input is cut into splits (Flink's
/// `SourceReader`). The runtime calls [`SourceReader::poll`] in a loop on the subtask's own
/// thread, with the same contract as [`Source::poll_next`]: return [`SourcePoll::Pending`]
/// within about 100 ms when nothing is there.
///
/// A reader registers each split it reads with [`SourceOutput::add_split`] and emits records
/// with [`SourceOutput::collect_in`]; the runtime turns the splits' watermarks into the
/// subtask's (see [`SourceOutput`]).
pub trait SourceReader<T>: Send {
    /// Adds at most `max` records (and any dead letters) to `out`; says whether more may follow.
    fn poll(&mut self, out: &mut SourceOutput<T>, max: usize) -> Result<SourcePoll, BoxError>;

    /// The position of every split this reader owns, serialised, as checkpoint `checkpoint`
    /// records it; `None` for a reader that cannot rewind (which a checkpointed job refuses).
    fn snapshot_splits(&mut self, checkpoint: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError>;

    /// Checkpoint `checkpoint` (and every one before it) is complete: the positions
    /// [`SourceReader::snapshot_splits`] gave for it are durable. A reader may tell its
    /// system (commit offsets back to a Kafka consumer group, for lag tooling); it must not
    /// need this for correctness, as a failure can come between completion and the call.
    fn checkpoint_complete(&mut self, checkpoint: u64) -> Result<(), BoxError> {
        let _ = checkpoint;
        Ok(())
    }

    /// Watermark alignment (Flink's `pauseOrResumeSplits`): stop fetching the splits in
    /// `pause`, whose watermark ran more than the allowed drift ahead of their alignment
    /// group, and fetch the splits in `resume` again. Both hold only splits registered with
    /// [`SourceOutput::add_split`] and not finished; a split is paused at most once before
    /// it is resumed. Records of a paused split that were already fetched may still be
    /// emitted. The runtime keeps calling [`SourceReader::poll`] while some splits are
    /// paused; it stops calling it while the whole subtask is above the bound.
    ///
    /// The default does nothing: such a reader is aligned per subtask only (Flink with
    /// `pipeline.watermark-alignment.allow-unaligned-source-splits`), which is all a reader
    /// needs that reads one split at a time. A reader of several splits at once pauses them
    /// in its client (the Kafka reader calls its consumer's `pause`/`resume` for the
    /// partitions; a reader that fetches each split itself leaves paused ones out when it
    /// picks what to fetch next).
    fn pause_or_resume_splits(&mut self, pause: &[SplitId], resume: &[SplitId]) -> Result<(), BoxError> {
        let _ = (pause, resume);
        Ok(())
    }
}

/// A [`Source`] as a [`SourceReader`]: its values go on untouched, without event time.
pub struct PlainReader<S>(pub S);

impl<T, S: Source<T>> SourceReader<T> for PlainReader<S> {
    #[inline]
    fn poll(&mut self, out: &mut SourceOutput<T>, max: usize) -> Result<SourcePoll, BoxError> {
        self.0.poll_next(out.values(), max)
    }

    fn snapshot_splits(&mut self, _checkpoint: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        self.0.snapshot()
    }
}

/// How the splits a checkpoint recorded are dealt to the subtasks of a restored job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SplitAssignment {
    /// The splits of all old subtasks are pooled and dealt round robin: each goes to exactly
    /// one new subtask (files, collections, generators).
    #[default]
    RoundRobin,
    /// Every new subtask sees every recorded split and keeps those it owns by a deterministic
    /// function of the split (Flink's Kafka source: a partition's owner is a function of its
    /// topic, its number and the parallelism). Then a split found while running and a split
    /// restored from a checkpoint land on the same subtask, never on two.
    Owned,
}

/// What a reader is opened with: which subtask it is, the splits it restores, and the
/// job's settings that concern readers (the place for any further such setting, as Flink's
/// `SourceReaderContext` hands its readers the job's configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReaderContext {
    /// This subtask's index, `0..parallelism`.
    pub subtask: usize,
    /// How many subtasks read the source.
    pub parallelism: usize,
    /// `None` on a fresh start. On a restore: the splits the checkpoint recorded, this
    /// subtask's share of them ([`SplitAssignment::RoundRobin`]) or all of them
    /// ([`SplitAssignment::Owned`]); possibly none.
    pub restored: Option<Vec<Vec<u8>>>,
    /// The longest line, in bytes without its line ending, the job lets a reader pass on
    /// (`StreamEnvironment::set_max_line_length`, 1 MiB by default). A reader that cuts its
    /// input into records itself (lines of text) keeps at most this much of one and rejects
    /// a longer one with [`SourceOutput::reject`], so no single record can exhaust memory.
    pub max_line_length: usize,
}

/// The default [`ReaderContext::max_line_length`]: 1 MiB, as Kafka's default largest message.
pub const DEFAULT_MAX_LINE_LENGTH: usize = 1 << 20;

impl ReaderContext {
    /// The context of subtask `subtask` of `parallelism` on a fresh start, with the default
    /// settings; the runtime fills in the job's. New fields get defaults here, so code that
    /// opens readers itself (tests, tools) keeps compiling.
    pub fn new(subtask: usize, parallelism: usize) -> Self {
        ReaderContext { subtask, parallelism, restored: None, max_line_length: DEFAULT_MAX_LINE_LENGTH }
    }

    /// The same context, restoring `splits` (this subtask's share, or all of them).
    pub fn restoring(self, splits: Vec<Vec<u8>>) -> Self {
        ReaderContext { restored: Some(splits), ..self }
    }

    /// The same context with another line limit.
    pub fn with_max_line_length(self, bytes: usize) -> Self {
        ReaderContext { max_line_length: bytes, ..self }
    }
}

/// A source that opens one [`SourceReader`] per parallel subtask (Flink's `Source`); give
/// it to `StreamEnvironment::from_source`. Shared by the subtasks, so `Send + Sync`.
pub trait SplitSource<T>: Send + Sync + 'static {
    /// The reader each subtask runs.
    type Reader: SourceReader<T> + 'static;

    /// Opens the reader of `context.subtask`, at the restored splits if there are any.
    fn open(&self, context: &ReaderContext) -> Result<Self::Reader, BoxError>;

    /// How restored splits are dealt out (default: round robin).
    fn split_assignment(&self) -> SplitAssignment {
        SplitAssignment::RoundRobin
    }
}

impl<T, S: SplitSource<T>> SplitSource<T> for Arc<S> {
    type Reader = S::Reader;

    fn open(&self, context: &ReaderContext) -> Result<Self::Reader, BoxError> {
        (**self).open(context)
    }

    fn split_assignment(&self) -> SplitAssignment {
        (**self).split_assignment()
    }
}
