//! Sinks: where results leave the job. Built in: print, collect into a `Vec`, text files,
//! exactly-once files, an application's channel, a callback, and with feature `tokio` a
//! `futures::Sink` or a `futures::Stream` of results.

mod callback;
mod channel;
mod collect;
mod exactly_once_file;
#[cfg(feature = "tokio")]
mod futures_sink;
mod print;
mod text_file;
mod transactional;
mod two_phase;

use eddy_core::{Barrier, BoxError, OperatorInfo, Output, Record, Result, Timestamp};
use eddy_runtime::metrics::{names, Counter};
use std::sync::Arc;
use transactional::{two_phase_operator, typed_committer};

pub use channel::{ChannelSender, Undelivered};
pub use collect::Collected;
pub use exactly_once_file::{ExactlyOnceFileSink, FileCommitter, FileTxn, ROLLED_BACK_DIR};
#[cfg(feature = "tokio")]
pub use futures_sink::CollectStream;
pub use print::PrintSink;
pub use text_file::TextFileSink;
pub use two_phase::{Committer, NewerCommits, TwoPhaseCommitSink};

use crate::{Data, DataStream};

/// Writes records somewhere. One instance per parallel subtask.
pub trait Sink<T>: Send {
    /// Writes one record with its event time.
    fn write(&mut self, value: T, timestamp: Timestamp) -> Result<(), BoxError>;
    /// Makes what was written so far durable or visible; called regularly and at the end.
    fn flush(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The end of a pipeline, returned by `add_sink` so the sink's parallelism, name and uid
/// can be set.
pub struct StreamSink {
    pub(crate) stream: DataStream<()>,
}

impl StreamSink {
    /// Sets the sink's parallelism.
    pub fn set_parallelism(self, parallelism: usize) -> Self {
        StreamSink { stream: self.stream.set_parallelism(parallelism) }
    }

    /// Sets the sink's display name.
    pub fn name(self, name: &str) -> Self {
        StreamSink { stream: self.stream.name(name) }
    }

    /// Sets the sink's stable id.
    pub fn uid(self, uid: &str) -> Self {
        StreamSink { stream: self.stream.uid(uid) }
    }

    /// Marks this sink as one a distributed job writes to a topic, in the transaction of the
    /// task that produced the records (`docs/scale-out.md`); one-process runs ignore it. For
    /// connectors: eddy-kafka's sink sets it.
    pub fn write_to_topic(self, topic: eddy_runtime::topic::OutputTopic) -> Self {
        StreamSink { stream: self.stream.update_node(|n| n.output_topic = Some(topic)) }
    }
}

impl<T: Data> DataStream<T> {
    /// Sends every record to a [`Sink`]; `create(subtask, parallelism)` opens each subtask's.
    pub fn add_sink<S, C>(&self, name: &str, create: C) -> StreamSink
    where
        S: Sink<T> + 'static,
        C: Fn(usize, usize) -> Result<S, BoxError> + Send + Sync + 'static,
    {
        let stream = self.transform(&format!("Sink: {name}"), move |ctx, _| {
            let info = &ctx.info;
            let sink = info
                .guard(|| create(info.subtask, info.parallelism))?
                .map_err(|e| info.error(format!("cannot open sink: {e}")))?;
            Ok(Box::new(SinkOperator { sink, info: info.clone(), written: ctx.counter(names::RECORDS_WRITTEN) }))
        });
        StreamSink { stream }
    }

    /// Prints every record to standard output (prefixed with `subtask> ` when the sink runs
    /// in parallel, as Flink's `print()`).
    pub fn print(&self) -> StreamSink
    where
        T: std::fmt::Display,
    {
        self.add_sink("Print", |subtask, parallelism| Ok(PrintSink::new(subtask, parallelism)))
    }

    /// Collects every record into memory; read them with [`Collected::take`] after the job.
    /// In a checkpointed job records appear as their checkpoints complete, exactly once.
    pub fn collect(&self) -> Collected<T> {
        let collected = Collected::default();
        let (target, committer) = (collected.clone(), Arc::new(collected.clone()));
        // In-memory transactions need no stable identity across processes; numbering the
        // collect sinks of a job keeps uids unique and the same for the same pipeline.
        let count = self.environment().with_graph(|g| g.nodes.iter().filter(|n| n.name == COLLECT).count());
        let shared = committer.clone();
        let stream = self.transform::<(), _>(COLLECT, move |ctx, _| {
            // Without checkpoints there is no replay to guard against: records show up at once.
            Ok(match ctx.state() {
                Some(_) => two_phase_operator(ctx, target.sink(), shared.clone()),
                None => Box::new(SinkOperator {
                    sink: target.clone(),
                    info: ctx.info.clone(),
                    written: ctx.counter(names::RECORDS_WRITTEN),
                }),
            })
        });
        stream.mark_transactional(typed_committer(committer)).uid(&format!("collect-{count}"));
        collected
    }

    /// Writes every record as a line (its `Display` form): to the file `path` at parallelism
    /// 1, otherwise to `path/part-<subtask>` files.
    pub fn write_text(&self, path: impl Into<std::path::PathBuf>) -> StreamSink
    where
        T: std::fmt::Display,
    {
        let path = path.into();
        self.add_sink("TextFile", move |subtask, parallelism| TextFileSink::create(&path, subtask, parallelism))
    }
}

struct SinkOperator<S> {
    sink: S,
    info: OperatorInfo,
    written: Counter,
}

impl<T, S: Sink<T>> Output<T> for SinkOperator<S> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        self.written.add(batch.len() as u64);
        let (sink, info) = (&mut self.sink, &self.info);
        info.guard(|| batch.drain(..).try_for_each(|r| sink.write(r.value, r.timestamp)))?
            .map_err(|e| info.error(e.to_string()))
    }

    fn watermark(&mut self, _: Timestamp) -> Result<()> {
        Ok(())
    }

    fn idle(&mut self, _: bool) -> Result<()> {
        Ok(())
    }

    fn tick(&mut self, _: Timestamp) -> Result<()> {
        self.flush()
    }

    fn barrier(&mut self, _: Barrier) -> Result<()> {
        // Not transactional: flushing is the most a checkpoint can do (at-least-once).
        self.flush()
    }

    fn finish(&mut self) -> Result<()> {
        self.flush()
    }
}

impl<S> SinkOperator<S> {
    fn flush<T>(&mut self) -> Result<()>
    where
        S: Sink<T>,
    {
        let (sink, info) = (&mut self.sink, &self.info);
        info.guard(|| sink.flush())?.map_err(|e| info.error(e.to_string()))
    }
}

/// The node name of `collect()` sinks.
const COLLECT: &str = "Sink: Collect";
