//! Built-in sources: collections, iterators, a deterministic generator, text files, stdin,
//! and `from_source` for split sources (Kafka, Kinesis) that generate watermarks per split.
//! All but iterators and stdin can rewind: their position (a list of splits) goes into
//! checkpoints and is dealt out again when a job restores at another parallelism.

mod collection;
mod from_source;
mod generator;
mod stdin;
mod stride;
mod text_file;

pub use collection::{CollectionSource, IterSource};
pub use generator::GeneratorSource;
pub use stdin::StdinSource;
pub use stride::{StrideSplit, StrideSplits};
pub use text_file::TextFileSource;
