//! The vocabulary every other eddy crate speaks. No threads, no I/O.
//!
//! - [`Record`]: a value with its event timestamp, the unit that flows through a job.
//! - [`time`]: event time is `i64` milliseconds since the epoch; watermarks are the same type.
//! - [`key`]: the stable key hash and key groups, which decide where a key's state lives.
//! - [`Source`]: what a user implements to bring records in; [`SourceReader`] and
//!   [`SplitSource`] for inputs cut into splits, with per-split watermarks ([`source`]).
//! - [`DeadLetter`]: an input that was rejected, and why.
//! - [`Output`]: the push interface every operator implements; batches go in, batches come out.
//! - [`Barrier`]: the checkpoint marker that flows with the records.
//! - [`WatermarkValve`]: how an operator with several inputs combines their watermarks.
//! - [`watermark_alignment`]: how sources of a group stay within a bounded distance in event
//!   time, so a keyed stage need not hold what one of them read far ahead.
//! - [`Error`]: what can go wrong, said so a user knows what to change.
//!
//! ```
//! use eddy_core::key::{KeyHasher, key_group, subtask_for_key_group};
//! let mut hasher = KeyHasher::default();
//! let hash = hasher.hash(&"word").unwrap();
//! let group = key_group(hash, 128);
//! assert!(subtask_for_key_group(group, 128, 4) < 4);
//! ```

pub mod barrier;
pub mod dead_letter;
pub mod error;
pub mod key;
pub mod key_encoding;
pub mod output;
pub mod record;
pub mod source;
pub mod source_output;
pub mod time;
pub mod watermark;
pub mod watermark_alignment;

pub use barrier::{Barrier, BarrierKind};
pub use dead_letter::{DeadLetter, RawRecord};
pub use error::{Error, OperatorInfo, Result};
pub use output::Output;
pub use record::Record;
pub use source::{
    BoxError, PlainReader, ReaderContext, Source, SourcePoll, SourceReader, SplitAssignment, SplitSource,
};
pub use source_output::{SourceOutput, SourceWatermarks, SplitId, SplitMetrics, SplitWatermarkGenerator};
pub use time::Timestamp;
pub use watermark::{ValveUpdate, WatermarkValve};
pub use watermark_alignment::{AlignmentGroups, AlignmentMember, SourceAlignment, WatermarkAlignment};
