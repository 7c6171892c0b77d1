//! The loop of a subtask fed by channels: merge inputs, combine watermarks, align barriers,
//! keep time moving.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use eddy_core::time::now_ms;
use eddy_core::{Barrier, Error, Output, Result, ValveUpdate, WatermarkValve};

use crate::channel::{Envelope, Message};
use crate::checkpoint::config::CheckpointingMode;
use crate::checkpoint::task::TaskCheckpointing;
use crate::graph::{Task, TaskRun};
use crate::metrics::Counter;
use crate::task_time;

/// A checkpoint whose barrier has arrived on some inputs but not yet on all.
struct Alignment {
    barrier: Barrier,
    arrived: Vec<bool>,
}

/// Reads one subtask's channel (all upstream subtasks send into it) and drives its chain.
pub struct InputGate<T> {
    receiver: Receiver<Envelope<T>>,
    valve: WatermarkValve,
    ended: Vec<bool>,
    head: Box<dyn Output<T>>,
    records_in: Counter,
    checkpointing: Option<TaskCheckpointing>,
    alignment: Option<Alignment>,
    /// Messages from inputs whose barrier arrived first (exactly-once), replayed once aligned.
    held: VecDeque<Envelope<T>>,
    /// Messages to handle before reading the channel again (released after an alignment).
    released: VecDeque<Envelope<T>>,
}

impl<T> InputGate<T> {
    /// A gate over `inputs` upstream senders pushing into `head`.
    pub fn new(receiver: Receiver<Envelope<T>>, inputs: usize, head: Box<dyn Output<T>>, records_in: Counter) -> Self {
        InputGate {
            receiver,
            valve: WatermarkValve::new(inputs),
            ended: vec![false; inputs],
            head,
            records_in,
            checkpointing: None,
            alignment: None,
            held: VecDeque::new(),
            released: VecDeque::new(),
        }
    }

    /// Takes part in checkpoints: aligns barriers and acks them.
    pub fn with_checkpointing(mut self, checkpointing: Option<TaskCheckpointing>) -> Self {
        self.checkpointing = checkpointing;
        self
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

    fn aligning_exactly_once(&self) -> bool {
        self.checkpointing.as_ref().is_some_and(|c| c.mode == CheckpointingMode::ExactlyOnce)
    }

    fn handle(&mut self, input: usize, message: Message<T>) -> Result<()> {
        let blocked = self.alignment.as_ref().is_some_and(|a| a.arrived[input]);
        if blocked && self.aligning_exactly_once() {
            self.held.push_back((input, message));
            return Ok(());
        }
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
            Message::Barrier(barrier) => self.barrier(input, barrier),
            Message::End => {
                self.ended[input] = true;
                let update = self.valve.end(input);
                self.apply(update)?;
                self.complete_alignment_if_done()
            }
        }
    }

    /// A barrier arrived on `input`. A newer checkpoint's barrier abandons an older alignment
    /// (that checkpoint was given up); an older one is stale and ignored.
    fn barrier(&mut self, input: usize, barrier: Barrier) -> Result<()> {
        match &self.alignment {
            Some(current) if barrier.checkpoint < current.barrier.checkpoint => return Ok(()),
            Some(current) if barrier.checkpoint > current.barrier.checkpoint => self.release(),
            _ => {}
        }
        let inputs = self.ended.len();
        let alignment = self.alignment.get_or_insert_with(|| Alignment { barrier, arrived: vec![false; inputs] });
        alignment.arrived[input] = true;
        self.complete_alignment_if_done()
    }

    fn complete_alignment_if_done(&mut self) -> Result<()> {
        let Some(alignment) = &self.alignment else { return Ok(()) };
        let done = alignment.arrived.iter().zip(&self.ended).all(|(&arrived, &ended)| arrived || ended);
        if !done {
            return Ok(());
        }
        let barrier = alignment.barrier;
        self.release();
        self.head.barrier(barrier)?;
        if let Some(checkpointing) = &self.checkpointing {
            checkpointing.ack(barrier);
        }
        Ok(())
    }

    /// Ends the alignment; what was held back is handled next, in arrival order.
    fn release(&mut self) {
        self.alignment = None;
        let held = std::mem::take(&mut self.held);
        for envelope in held.into_iter().rev() {
            self.released.push_front(envelope);
        }
    }

    fn next(&mut self, run: &TaskRun) -> Result<Option<Envelope<T>>> {
        if let Some(envelope) = self.released.pop_front() {
            return Ok(Some(envelope));
        }
        match self.receiver.try_recv() {
            Ok(envelope) => return Ok(Some(envelope)),
            Err(TryRecvError::Disconnected) => return Err(Error::Disconnected),
            Err(TryRecvError::Empty) => {}
        }
        // Waiting for input is the subtask's idle time.
        match task_time::idle(|| self.receiver.recv_timeout(run.tick_interval)) {
            Ok(envelope) => Ok(Some(envelope)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Error::Disconnected),
        }
    }
}

impl<T: Send> Task for InputGate<T> {
    fn run(mut self: Box<Self>, run: &TaskRun) -> Result<()> {
        let mut last_tick = Instant::now();
        while !self.valve.all_ended() || !self.released.is_empty() {
            if run.cancel.load(Ordering::Relaxed) {
                return Err(Error::Cancelled);
            }
            if let Some((input, message)) = self.next(run)? {
                self.handle(input, message)?;
            }
            if last_tick.elapsed() >= run.tick_interval {
                self.head.tick(now_ms())?;
                last_tick = Instant::now();
            }
        }
        self.head.finish()?;
        // A checkpointed job collects every operator's final state (a sink's last transaction).
        if let Some(checkpointing) = &self.checkpointing {
            self.head.barrier(Barrier::FINAL)?;
            checkpointing.finished();
        }
        Ok(())
    }
}
