//! A partition task's inputs: the readers of its source nodes' input topics, and the inputs
//! of the cut edges it reads, with what their producing tasks said.
//!
//! An input that ends finishes the operators it feeds and then passes them the final barrier,
//! as a chain's loop does in one process once its input has ended: what a transactional sink
//! still holds is pre-committed with it and goes into the task's next snapshot.

use eddy_core::{Barrier, Result, Timestamp, WatermarkValve};

use crate::partition_task::task_state::ProducerProgress;
use crate::partition_task::topic_input::TopicInput;
use crate::topic::TopicReader;

/// A source node's reader of one input topic.
pub(super) struct Reader {
    pub(super) topic: String,
    pub(super) reader: Box<dyn TopicReader>,
    pub(super) ended: bool,
}

impl Reader {
    /// The topic's partition has ended: the source's consumers finish (once).
    pub(super) fn end(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.ended, true) {
            return Ok(());
        }
        self.reader.finish()?;
        self.reader.barrier(Barrier::FINAL)
    }
}

/// A cut edge this task reads: its topic, its typed input and the producing tasks' progress.
pub(super) struct CutInput {
    pub(super) topic: String,
    pub(super) input: Box<dyn TopicInput>,
    /// One input per producing task: the cut input's watermark is their minimum.
    producers: WatermarkValve,
    /// What the producing tasks said, for snapshots.
    pub(super) progress: ProducerProgress,
    pub(super) ended: bool,
}

impl CutInput {
    /// The input of `topic`, written by `partitions` producing tasks that have said nothing yet.
    pub(super) fn new(topic: String, input: Box<dyn TopicInput>, partitions: usize) -> Self {
        let progress = ProducerProgress {
            topic: topic.clone(),
            watermarks: vec![Timestamp::MIN; partitions],
            ended: vec![false; partitions],
        };
        CutInput { topic, input, producers: WatermarkValve::new(partitions), progress, ended: false }
    }

    /// Producing task `producer`'s watermark.
    pub(super) fn watermark(&mut self, producer: usize, watermark: Timestamp) -> Result<()> {
        let newest = &mut self.progress.watermarks[producer];
        *newest = (*newest).max(watermark);
        let update = self.producers.watermark(producer, watermark);
        match update.watermark {
            Some(watermark) if !self.ended => self.input.watermark(watermark),
            _ => Ok(()),
        }
    }

    /// Producing task `producer`'s end; the input's once all have ended.
    pub(super) fn end(&mut self, producer: usize) -> Result<()> {
        self.progress.ended[producer] = true;
        let update = self.producers.end(producer);
        if self.ended {
            return Ok(());
        }
        if let Some(watermark) = update.watermark {
            self.input.watermark(watermark)?;
        }
        if self.producers.all_ended() {
            self.ended = true;
            self.input.finish()?;
            self.input.barrier(Barrier::FINAL)?;
        }
        Ok(())
    }

    /// Takes up what the producing tasks had said at a checkpoint.
    pub(super) fn restore(&mut self, progress: &ProducerProgress) -> Result<()> {
        let producers = progress.watermarks.iter().zip(&progress.ended).enumerate();
        for (producer, (&watermark, &ended)) in producers.take(self.progress.ended.len()) {
            self.watermark(producer, watermark)?;
            if ended {
                self.end(producer)?;
            }
        }
        Ok(())
    }
}
