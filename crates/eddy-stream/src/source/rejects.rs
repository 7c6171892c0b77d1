//! The dead letters of a source: input it read but could not turn into a record.
//!
//! A [`Source`](eddy_core::Source) hands the runtime values only, so a source that rejects
//! input (the text sources: lines too long or not UTF-8) puts its dead letters in a
//! [`Rejects`] queue shared with [`WithRejects`], the first output of its chain. That sends
//! them to the source's dead-letter output (`lines.dead_letters::<String>()`) before anything
//! else leaves the subtask, the next batch, time signal or checkpoint barrier: a checkpoint
//! never records a position past a line whose dead letter has not gone out.

use std::sync::{Arc, Mutex};

use eddy_core::time::NO_TIMESTAMP;
use eddy_core::{Barrier, Output, Record, Result, Timestamp};
use eddy_runtime::graph::BuildContext;
use eddy_runtime::metrics::Counter;

use crate::dead_letter::{dead_letter_tag, DeadLetter};
use crate::ops::try_map::DEAD_LETTERS;
use crate::side_output::{OutputTag, WithSide};

/// Dead letters a source subtask has produced and not yet sent. The default drops them: a
/// text source used on its own (through `add_source`) has nowhere to send them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rejects(Option<Arc<Mutex<Vec<DeadLetter<String>>>>>);

impl Rejects {
    /// A queue that keeps dead letters until [`Rejects::take`].
    pub(crate) fn queue() -> Self {
        Rejects(Some(Arc::default()))
    }

    /// Queues a dead letter (or drops it, for the default).
    pub(crate) fn push(&self, letter: DeadLetter<String>) {
        if let Some(queue) = &self.0 {
            queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(letter);
        }
    }

    /// Takes every queued dead letter.
    pub(crate) fn take(&self) -> Vec<DeadLetter<String>> {
        match &self.0 {
            Some(queue) => std::mem::take(&mut *queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())),
            None => Vec::new(),
        }
    }
}

/// The first output of a rejecting source's chain: sends the queued dead letters, then
/// passes every call on.
pub(crate) struct WithRejects<T> {
    out: WithSide<T>,
    rejects: Rejects,
    tag: OutputTag<DeadLetter<String>>,
    dead_letters: Counter,
}

impl<T> WithRejects<T> {
    /// Wraps `out`, the source's chain, for the source that fills `rejects`.
    pub(crate) fn new(ctx: &BuildContext, out: Box<dyn Output<T>>, rejects: Rejects) -> Self {
        WithRejects {
            out: WithSide::new(ctx, out),
            rejects,
            tag: dead_letter_tag(),
            dead_letters: ctx.counter(DEAD_LETTERS),
        }
    }

    /// Sends the queued dead letters to the dead-letter output.
    fn send_rejects(&mut self) -> Result<()> {
        let letters = self.rejects.take();
        if letters.is_empty() {
            return Ok(());
        }
        self.dead_letters.add(letters.len() as u64);
        for letter in letters {
            self.out.side.emit(&self.tag, letter, NO_TIMESTAMP);
        }
        self.out.side.flush()
    }
}

impl<T: Send> Output<T> for WithRejects<T> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        self.send_rejects()?;
        self.out.records(batch)
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.send_rejects()?;
        self.out.watermark(watermark)
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.send_rejects()?;
        self.out.idle(idle)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.send_rejects()?;
        self.out.tick(now)
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.send_rejects()?;
        self.out.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        self.send_rejects()?;
        self.out.finish()
    }
}
