//! A source's main output together with the consumers of its dead-letter side output: the
//! records a reader rejected go there, and every time signal reaches both.

use eddy_core::{Barrier, DeadLetter, Output, RawRecord, Record, Result, Timestamp};

use crate::side_channel::{SideChannel, TypedSideChannel};

/// The main output of a source subtask plus its dead-letter consumers (often none).
pub struct WithDeadLetters<T> {
    main: Box<dyn Output<T>>,
    channels: Vec<Box<dyn SideChannel>>,
}

impl<T> WithDeadLetters<T> {
    /// `main` with the dead-letter `channels` (each carrying `DeadLetter<RawRecord>`).
    pub fn new(main: Box<dyn Output<T>>, channels: Vec<Box<dyn SideChannel>>) -> Self {
        WithDeadLetters { main, channels }
    }

    /// The main output.
    pub fn main(&mut self) -> &mut dyn Output<T> {
        &mut *self.main
    }

    /// Sends `letters` to every dead-letter consumer (dropped when there is none: nobody
    /// reads them, as with any side output).
    pub fn dead_letters(&mut self, letters: Vec<DeadLetter<RawRecord>>) -> Result<()> {
        let mut consumers: Vec<_> = self
            .channels
            .iter_mut()
            .filter_map(|c| c.as_any().downcast_mut::<TypedSideChannel<DeadLetter<RawRecord>>>())
            .collect();
        let Some(last) = consumers.pop() else { return Ok(()) };
        let record = |letter: DeadLetter<RawRecord>| {
            let timestamp = letter.input.timestamp;
            Record::new(letter, timestamp)
        };
        for channel in consumers {
            channel.buffer.extend(letters.iter().cloned().map(record));
            channel.flush()?;
        }
        last.buffer.extend(letters.into_iter().map(record));
        last.flush()?;
        Ok(())
    }
}

impl<T: Send> Output<T> for WithDeadLetters<T> {
    #[inline]
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        self.main.records(batch)
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.channels.iter_mut().try_for_each(|c| c.watermark(watermark))?;
        self.main.watermark(watermark)
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.channels.iter_mut().try_for_each(|c| c.idle(idle))?;
        self.main.idle(idle)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.channels.iter_mut().try_for_each(|c| c.tick(now))?;
        self.main.tick(now)
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.channels.iter_mut().try_for_each(|c| c.barrier(barrier))?;
        self.main.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        self.channels.iter_mut().try_for_each(|c| c.finish())?;
        self.main.finish()
    }
}
