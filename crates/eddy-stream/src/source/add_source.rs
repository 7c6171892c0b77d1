//! Sources as nodes of the job graph: `add_source` and `add_replayable_source` for a user's
//! own [`Source`], and the built-in ones (`from_iter`, `from_collection`, `generate`,
//! `read_text_file`, `stdin_lines`). Each adds one source node and hands back the stream
//! of its records; `from_source`, `from_channel` and `from_stream` add theirs the same way.

use eddy_core::{BoxError, Result, Source, SplitSource};
use eddy_runtime::graph::Node;

use crate::node::{FnSource, Restore, SourceNode};
use crate::source::{CollectionSource, GeneratorSource, IterSource, StdinSource, TextFileSource};
use crate::{Data, DataStream, StreamEnvironment};

impl StreamEnvironment {
    /// A stream from a user [`Source`]: `create(subtask, parallelism)` opens each subtask's part.
    /// A checkpointed job needs sources that can rewind: see [`StreamEnvironment::add_replayable_source`].
    pub fn add_source<T, S, C>(&self, name: &str, create: C) -> DataStream<T>
    where
        T: Data,
        S: Source<T> + 'static,
        C: Fn(usize, usize) -> Result<S, BoxError> + Send + Sync + 'static,
    {
        self.source_node(name, false, create, None)
    }

    /// A stream from a user [`Source`] that can rewind: its [`Source::snapshot`] returns its
    /// position as splits, and `restore(splits)` reopens a subtask at the splits a checkpoint
    /// recorded (pooled over the old subtasks and dealt round robin to the new ones).
    pub fn add_replayable_source<T, S, C, R>(&self, name: &str, create: C, restore: R) -> DataStream<T>
    where
        T: Data,
        S: Source<T> + 'static,
        C: Fn(usize, usize) -> Result<S, BoxError> + Send + Sync + 'static,
        R: Fn(Vec<Vec<u8>>) -> Result<S, BoxError> + Send + Sync + 'static,
    {
        self.source_node(name, false, create, Some(Box::new(restore)))
    }

    fn source_node<T, S, C>(
        &self,
        name: &str,
        non_parallel: bool,
        create: C,
        restore: Option<Restore<S>>,
    ) -> DataStream<T>
    where
        T: Data,
        S: Source<T> + 'static,
        C: Fn(usize, usize) -> Result<S, BoxError> + Send + Sync + 'static,
    {
        self.add_source_node(name, non_parallel, SourceNode::new(FnSource::new(create, restore), None))
    }

    /// Adds a source node to the graph (`non_parallel`: read by a single subtask).
    pub(crate) fn add_source_node<T, F>(
        &self,
        name: &str,
        non_parallel: bool,
        source: SourceNode<T, F>,
    ) -> DataStream<T>
    where
        T: Data,
        F: SplitSource<T>,
    {
        let node = self.with_graph(|g| {
            g.add_node(Node {
                non_parallel,
                // A source's position is state (for the replayable ones; others are refused
                // by a checkpointed job).
                stateful: true,
                ..Node::new(format!("Source: {name}"), std::sync::Arc::new(source))
            })
        });
        DataStream::new(self.clone(), node)
    }

    /// A stream of the items of an iterator, read by a single subtask (parallelism 1).
    pub fn from_iter<T, I>(&self, items: I) -> DataStream<T>
    where
        T: Data,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        let source = std::sync::Mutex::new(Some(items.into_iter()));
        self.source_node("Iterator", true, move |_, _| IterSource::take(&source), None)
    }

    /// A stream of a collection's elements, split across parallel subtasks.
    pub fn from_collection<T: Data + Sync>(&self, items: Vec<T>) -> DataStream<T> {
        let items = std::sync::Arc::new(items);
        let restored = items.clone();
        let restore: Restore<_> = Box::new(move |splits| CollectionSource::restore(restored.clone(), splits));
        self.source_node(
            "Collection",
            false,
            move |subtask, parallelism| Ok(CollectionSource::new(items.clone(), subtask, parallelism)),
            Some(restore),
        )
    }

    /// A deterministic stream: record `i` is `f(i)` for `i` in `0..count` (`None`: unbounded).
    /// Subtask `s` of `p` produces the indices `i` with `i % p == s`.
    pub fn generate<T, F>(&self, count: Option<u64>, f: F) -> DataStream<T>
    where
        T: Data,
        F: Fn(u64) -> T + Clone + Send + Sync + 'static,
    {
        let g = f.clone();
        let restore: Restore<_> = Box::new(move |splits| GeneratorSource::restore(g.clone(), count, splits));
        self.source_node(
            "Generator",
            false,
            move |subtask, parallelism| Ok(GeneratorSource::new(f.clone(), count, subtask, parallelism)),
            Some(restore),
        )
    }

    /// The lines of a text file (without line endings), split into byte ranges across
    /// parallel subtasks; a line belongs to the range its first byte is in.
    ///
    /// A line longer than [`StreamEnvironment::set_max_line_length`] (1 MiB by default) or
    /// not valid UTF-8 is not passed on: it goes to the dead-letter output,
    /// `dead_letters::<RawRecord>()`, as a [`RawRecord`](eddy_core::RawRecord) whose `split`
    /// is the file, whose `position` is the line number and byte offset, and whose `payload`
    /// is the line as read (its first 256 bytes if it is too long); the `error` says what is
    /// wrong with it.
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// let file = tempfile::NamedTempFile::new().unwrap();
    /// std::fs::write(file.path(), b"fine\nnot \xff utf-8\nalso fine\n").unwrap();
    /// let env = StreamEnvironment::new();
    /// let lines = env.read_text_file(file.path());
    /// let bad = lines.dead_letters::<RawRecord>().collect();
    /// let good = lines.collect();
    /// env.execute("lines").unwrap().wait().unwrap();
    /// let mut good = good.take();
    /// good.sort();
    /// assert_eq!(good, ["also fine", "fine"]);
    /// let bad = bad.take();
    /// assert_eq!(bad[0].input.position, "line 2 (byte 5)");
    /// assert_eq!(bad[0].input.payload, b"not \xff utf-8");
    /// assert!(bad[0].error.starts_with("the line is not UTF-8"));
    /// ```
    pub fn read_text_file(&self, path: impl Into<std::path::PathBuf>) -> DataStream<String> {
        self.add_source_node("TextFile", false, SourceNode::new(TextFileSource::new(path), None))
    }

    /// The lines of standard input, read by a single subtask. Lines too long or not UTF-8
    /// go to the dead-letter output, as for [`StreamEnvironment::read_text_file`] (their
    /// `split` is `stdin`).
    pub fn stdin_lines(&self) -> DataStream<String> {
        self.add_source_node("Stdin", true, SourceNode::new(StdinSource, None))
    }
}
