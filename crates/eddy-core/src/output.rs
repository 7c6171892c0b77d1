//! The push interface between operators: batches of records plus time signals.

use crate::barrier::Barrier;
use crate::record::Record;
use crate::time::Timestamp;
use crate::Result;

/// Where an operator sends what it produces. Every operator is itself an `Output` of its
/// input type, so a chain of operators is a chain of `Output`s calling each other directly.
///
/// Calls come in stream order: records, then a watermark that promises no earlier records
/// follow (late ones excepted), and finally `finish` once the input has ended.
pub trait Output<T>: Send {
    /// Takes the records out of `batch` (leaving it empty so the caller can reuse it).
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()>;
    /// Event time has advanced to `watermark`.
    fn watermark(&mut self, watermark: Timestamp) -> Result<()>;
    /// The input became idle (`true`: it holds back no watermark) or active again.
    fn idle(&mut self, idle: bool) -> Result<()>;
    /// Processing time has advanced to `now`: fire processing-time work, flush buffers.
    fn tick(&mut self, now: Timestamp) -> Result<()>;
    /// A checkpoint barrier: every record before it has been passed in. Snapshot what the
    /// checkpoint needs, then pass the barrier on (after any records it must precede).
    fn barrier(&mut self, barrier: Barrier) -> Result<()>;
    /// The input has ended: flush everything; only a final [`Barrier`] may follow.
    fn finish(&mut self) -> Result<()>;
}

impl<T, O: Output<T> + ?Sized> Output<T> for Box<O> {
    #[inline]
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        (**self).records(batch)
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        (**self).watermark(watermark)
    }
    fn idle(&mut self, idle: bool) -> Result<()> {
        (**self).idle(idle)
    }
    fn tick(&mut self, now: Timestamp) -> Result<()> {
        (**self).tick(now)
    }
    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        (**self).barrier(barrier)
    }
    fn finish(&mut self) -> Result<()> {
        (**self).finish()
    }
}
