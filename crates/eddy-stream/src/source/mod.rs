//! Built-in sources: collections, iterators, a deterministic generator, text files, stdin.
//! All but iterators and stdin can rewind: their position (a list of splits) goes into
//! checkpoints and is dealt out again when a job restores at another parallelism.
//!
//! The text sources bound the length of a line and send lines they cannot pass on (too
//! long, not UTF-8) to their dead-letter output, named by file and line.

mod collection;
mod generator;
mod lines;
pub(crate) mod rejects;
mod stdin;
mod stride;
mod text_file;

pub use collection::{CollectionSource, IterSource};
pub use generator::GeneratorSource;
pub use stdin::StdinSource;
pub use stride::{StrideSplit, StrideSplits};
pub use text_file::TextFileSource;
