//! The loop of a subtask fed by channels: merge inputs, combine watermarks, keep time moving.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use eddy_core::time::now_ms;
use eddy_core::{Error, Output, Result, ValveUpdate, WatermarkValve};

use crate::channel::{Envelope, Message};
use crate::graph::{Task, TaskRun};
use crate::metrics::Counter;

/// Reads one subtask's channel (all upstream subtasks send into it) and drives its chain.
pub struct InputGate<T> {
    receiver: Receiver<Envelope<T>>,
    valve: WatermarkValve,
    head: Box<dyn Output<T>>,
    records_in: Counter,
}

impl<T> InputGate<T> {
    /// A gate over `inputs` upstream senders pushing into `head`.
    pub fn new(receiver: Receiver<Envelope<T>>, inputs: usize, head: Box<dyn Output<T>>, records_in: Counter) -> Self {
        InputGate { receiver, valve: WatermarkValve::new(inputs), head, records_in }
    }

    fn apply(&mut self, update: ValveUpdate) -> Result<()> {
        if let Some(idle) = update.idle {
            self.head.idle(idle)?;
        }
        if let Some(watermark) = update.watermark {
            self.head.watermark(watermark)?;
        }
        Ok(())
    }

    fn handle(&mut self, input: usize, message: Message<T>) -> Result<()> {
        match message {
            Message::Records(mut batch) => {
                self.records_in.add(batch.len() as u64);
                self.head.records(&mut batch)
            }
            Message::Watermark(w) => {
                let update = self.valve.watermark(input, w);
                self.apply(update)
            }
            Message::Idle(idle) => {
                let update = self.valve.idle(input, idle);
                self.apply(update)
            }
            Message::End => {
                let update = self.valve.end(input);
                self.apply(update)
            }
        }
    }
}

impl<T: Send> Task for InputGate<T> {
    fn run(mut self: Box<Self>, run: &TaskRun) -> Result<()> {
        let mut last_tick = Instant::now();
        while !self.valve.all_ended() {
            if run.cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            match self.receiver.recv_timeout(run.tick_interval) {
                Ok((input, message)) => self.handle(input, message)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(Error::Disconnected),
            }
            if last_tick.elapsed() >= run.tick_interval {
                self.head.tick(now_ms())?;
                last_tick = Instant::now();
            }
        }
        self.head.finish()
    }
}
