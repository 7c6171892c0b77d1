//! Built-in sources: collections, iterators, a deterministic generator, text files, stdin,
//! an application's channels and streams (`from_channel`, `from_stream`), and `from_source`
//! for split sources (Kafka, Kinesis) that generate watermarks per split.
//! All but iterators and stdin can rewind: their position (a list of splits) goes into
//! checkpoints and is dealt out again when a job restores at another parallelism.
//!
//! The text sources are split sources ([`TextFileSource`], [`StdinSource`]): they bound the
//! length of a line and reject the lines they cannot pass on (too long, not UTF-8) to their
//! dead-letter output as [`RawRecord`](eddy_core::RawRecord)s named by file and line.

mod add_source;
mod channel;
mod collection;
mod from_source;
mod generator;
mod lines;
mod stdin;
#[cfg(feature = "tokio")]
mod stream;
mod stride;
mod text_file;

pub use channel::{ChannelReader, ChannelSource, Receive, Received};
pub use collection::{CollectionSource, IterSource};
pub use generator::GeneratorSource;
pub use stdin::{StdinReader, StdinSource};
#[cfg(feature = "tokio")]
pub use stream::StreamReceiver;
pub use stride::{StrideSplit, StrideSplits};
pub use text_file::{TextFileReader, TextFileSource};
