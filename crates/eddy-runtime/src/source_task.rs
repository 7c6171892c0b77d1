//! The loop of a source subtask: poll the source, push batches down the chain, keep time moving.

use std::sync::atomic::Ordering;
use std::time::Instant;

use eddy_core::time::{now_ms, MAX_WATERMARK, NO_TIMESTAMP};
use eddy_core::{Error, OperatorInfo, Output, Record, Result, Source, SourcePoll};

use crate::graph::{Task, TaskRun};
use crate::metrics::Counter;

/// Runs a [`Source`] and pushes what it produces into its chain.
pub struct SourceTask<T, S> {
    source: S,
    output: Box<dyn Output<T>>,
    info: OperatorInfo,
    batch_size: usize,
    records_in: Counter,
}

impl<T, S> SourceTask<T, S> {
    /// A source subtask named by `info`, polling up to `batch_size` values at a time.
    pub fn new(
        source: S,
        output: Box<dyn Output<T>>,
        info: OperatorInfo,
        batch_size: usize,
        records_in: Counter,
    ) -> Self {
        SourceTask { source, output, info, batch_size, records_in }
    }
}

impl<T: Send, S: Source<T>> Task for SourceTask<T, S> {
    fn run(mut self: Box<Self>, run: &TaskRun) -> Result<()> {
        let mut values = Vec::with_capacity(self.batch_size);
        let mut batch = Vec::with_capacity(self.batch_size);
        let mut last_tick = Instant::now();
        loop {
            if run.cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            let info = &self.info;
            let source = &mut self.source;
            let max = self.batch_size;
            let poll = info.guard(|| source.poll_next(&mut values, max))?.map_err(|e| info.error(e.to_string()))?;
            if !values.is_empty() {
                self.records_in.add(values.len() as u64);
                batch.extend(values.drain(..).map(|v| Record::new(v, NO_TIMESTAMP)));
                self.output.records(&mut batch)?;
            }
            if poll == SourcePoll::Done {
                break;
            }
            if poll == SourcePoll::Pending || last_tick.elapsed() >= run.tick_interval {
                self.output.tick(now_ms())?;
                last_tick = Instant::now();
            }
        }
        self.output.watermark(MAX_WATERMARK)?;
        self.output.finish()
    }
}
