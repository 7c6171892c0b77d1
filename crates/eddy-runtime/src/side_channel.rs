//! Side channels: the consumers of an operator's side output, typed by the edge that carries
//! it, so the operator can buffer records for them and pass every time signal on.

use std::any::Any;

use eddy_core::{Barrier, Output, Record, Result, Timestamp};

/// A side output's consumer with its record type erased; time signals need no type.
pub trait SideChannel: Send {
    /// For downcasting to [`TypedSideChannel`] of the record type.
    fn as_any(&mut self) -> &mut dyn Any;
    /// Sends the buffered records on.
    fn flush(&mut self) -> Result<()>;
    /// Flushes, then passes the watermark on.
    fn watermark(&mut self, watermark: Timestamp) -> Result<()>;
    /// Flushes, then passes the idle status on.
    fn idle(&mut self, idle: bool) -> Result<()>;
    /// Flushes, then passes processing time on.
    fn tick(&mut self, now: Timestamp) -> Result<()>;
    /// Flushes, then passes the barrier on.
    fn barrier(&mut self, barrier: Barrier) -> Result<()>;
    /// Flushes, then ends the side output.
    fn finish(&mut self) -> Result<()>;
}

/// A buffer of side records and the consumer they go to.
pub struct TypedSideChannel<T> {
    /// Records waiting for the next flush.
    pub buffer: Vec<Record<T>>,
    out: Box<dyn Output<T>>,
}

impl<T> TypedSideChannel<T> {
    /// A side channel into `out`.
    pub fn new(out: Box<dyn Output<T>>) -> Self {
        TypedSideChannel { buffer: Vec::new(), out }
    }
}

impl<T: Send + 'static> SideChannel for TypedSideChannel<T> {
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn flush(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.out.records(&mut self.buffer)
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.flush()?;
        self.out.watermark(watermark)
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.flush()?;
        self.out.idle(idle)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.flush()?;
        self.out.tick(now)
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.flush()?;
        self.out.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        self.flush()?;
        self.out.finish()
    }
}
