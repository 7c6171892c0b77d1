//! The live cells of every operator subtask's built-in metrics, and the [`Output`] wrapper
//! that fills them as batches and watermarks pass from one operator to the next.
//!
//! An operator's records in, records out and watermarks are counted at the edges between
//! operators, not inside them, so every operator has them (a user's, a window, a sink)
//! without knowing: the planner wraps the first main output of each operator (its records
//! out and output watermark) and the input of each operator (its records in and input
//! watermark) in an [`Observed`]. The wrapper costs one relaxed atomic add per batch and
//! side of the edge; nothing is counted per record.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use eddy_core::time::MIN_WATERMARK;
use eddy_core::{Barrier, Output, Record, Result, Timestamp};

use crate::counter::Counter;
use crate::record_rates::RateMeter;
use crate::task_time::TaskTime;

/// A watermark readable from other threads; [`MIN_WATERMARK`] until the first one.
#[derive(Debug)]
pub struct WatermarkCell(AtomicI64);

impl Default for WatermarkCell {
    fn default() -> Self {
        WatermarkCell(AtomicI64::new(MIN_WATERMARK))
    }
}

impl WatermarkCell {
    /// The newest watermark, `None` before the first.
    pub fn get(&self) -> Option<Timestamp> {
        Some(self.0.load(Ordering::Relaxed)).filter(|&w| w != MIN_WATERMARK)
    }

    fn set(&self, watermark: Timestamp) {
        self.0.store(watermark, Ordering::Relaxed);
    }
}

/// The built-in metrics of one operator subtask, as they are updated.
#[derive(Debug, Default)]
pub struct SubtaskCells {
    /// Records that entered the operator.
    pub records_in: Counter,
    /// Records the operator emitted on its main output (once each, however many consumers).
    pub records_out: Counter,
    /// The newest watermark the operator received.
    pub input_watermark: WatermarkCell,
    /// The newest watermark the operator emitted.
    pub output_watermark: WatermarkCell,
    /// Where the thread of the operator's chain spent its time (shared by the whole chain).
    pub time: Arc<TaskTime>,
    /// Works out its records (and a source's bytes) per second on read.
    pub rates: RateMeter,
}

/// Which cells a batch crossing an edge counts into.
#[derive(Default)]
pub struct Observers {
    /// The producer, when this is its first main output: records out, output watermark.
    pub from: Option<Arc<SubtaskCells>>,
    /// The consumer, when this edge enters it directly: records in, input watermark.
    pub into: Option<Arc<SubtaskCells>>,
}

impl Observers {
    /// Whether there is anything to count.
    pub fn any(&self) -> bool {
        self.from.is_some() || self.into.is_some()
    }
}

/// An [`Output`] that counts what passes into its [`Observers`] and hands it on.
pub struct Observed<T> {
    inner: Box<dyn Output<T>>,
    observers: Observers,
}

impl<T> Observed<T> {
    /// Counts what goes into `inner`.
    pub fn new(inner: Box<dyn Output<T>>, observers: Observers) -> Self {
        Observed { inner, observers }
    }
}

impl<T: Send> Output<T> for Observed<T> {
    #[inline]
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let n = batch.len() as u64;
        if let Some(from) = &self.observers.from {
            from.records_out.add(n);
        }
        if let Some(into) = &self.observers.into {
            into.records_in.add(n);
        }
        self.inner.records(batch)
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        if let Some(from) = &self.observers.from {
            from.output_watermark.set(watermark);
        }
        if let Some(into) = &self.observers.into {
            into.input_watermark.set(watermark);
        }
        self.inner.watermark(watermark)
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.inner.idle(idle)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.inner.tick(now)
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.inner.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        self.inner.finish()
    }
}
