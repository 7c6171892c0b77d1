//! Built-in sources: collections, iterators, a deterministic generator, text files, stdin.

mod collection;
mod generator;
mod stdin;
mod text_file;

pub use collection::{CollectionSource, IterSource};
pub use generator::GeneratorSource;
pub use stdin::StdinSource;
pub use text_file::TextFileSource;
