//! The input gate: the loop of a subtask fed by channels.
//!
//! Every upstream subtask of an operator sends into one bounded channel per downstream
//! subtask (see [`channel`](crate::channel)); each message is tagged with the sender's input
//! index. The gate reads that channel on the subtask's own thread and drives the head of its
//! chain, the first operator, with it:
//!
//! - records go to the head batch by batch, as they came;
//! - watermarks and idleness go through a [`WatermarkValve`]: the subtask's watermark is the
//!   minimum over its inputs that are not idle, and moves only forward;
//! - barriers are aligned across inputs ([`Alignment`]): once a checkpoint's barrier has
//!   come on every input, the chain snapshots and the gate acks the checkpoint to the job
//!   master;
//! - when nothing arrives for a tick interval, processing time still moves (`tick`), so
//!   processing-time windows and timers fire and buffered output goes out;
//! - when every input has ended, the chain finishes, and in a checkpointed job hands its
//!   final state over with a last barrier.
//!
//! ```text
//!  upstream 0 ─┐
//!  upstream 1 ─┼─▶ channel ─▶ InputGate ─▶ head.records / watermark / barrier / tick ─▶ …chain
//!  upstream 2 ─┘              (valve, alignment)
//! ```

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use eddy_core::time::now_ms;
use eddy_core::{Barrier, Error, Output, Result, ValveUpdate, WatermarkValve};

use crate::channel::{Envelope, Message};
use crate::checkpoint::alignment::Alignment;
use crate::checkpoint::{CheckpointingMode, TaskCheckpointing};
use crate::counter::Counter;
use crate::task::{Task, TaskRun};
use crate::task_time;

/// Reads one subtask's channel (all upstream subtasks send into it) and drives its chain.
pub struct InputGate<T> {
    receiver: Receiver<Envelope<T>>,
    valve: WatermarkValve,
    ended: Vec<bool>,
    head: Box<dyn Output<T>>,
    records_in: Counter,
    checkpointing: Option<TaskCheckpointing>,
    alignment: Alignment<Message<T>>,
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
            alignment: Alignment::new(false),
            released: VecDeque::new(),
        }
    }

    /// Takes part in checkpoints: aligns barriers and acks them.
    pub fn with_checkpointing(mut self, checkpointing: Option<TaskCheckpointing>) -> Self {
        let exactly_once = checkpointing.as_ref().is_some_and(|c| c.mode == CheckpointingMode::ExactlyOnce);
        self.alignment = Alignment::new(exactly_once);
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

    fn handle(&mut self, input: usize, message: Message<T>) -> Result<()> {
        let Some(message) = self.alignment.admit(input, message) else { return Ok(()) };
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
            Message::Barrier(barrier) => {
                self.alignment.barrier(input, barrier, self.ended.len(), &mut self.released);
                self.complete_alignment_if_done()
            }
            Message::End => {
                self.ended[input] = true;
                let update = self.valve.end(input);
                self.apply(update)?;
                self.complete_alignment_if_done()
            }
        }
    }

    /// Once the barrier being aligned has come on every input: snapshot, pass it on, ack.
    fn complete_alignment_if_done(&mut self) -> Result<()> {
        let began = self.alignment.began();
        let Some(barrier) = self.alignment.complete(&self.ended, &mut self.released) else { return Ok(()) };
        let aligned = began.map_or(Duration::ZERO, |began| began.elapsed());
        self.head.barrier(barrier)?;
        if let Some(checkpointing) = &self.checkpointing {
            checkpointing.ack(barrier, aligned);
        }
        Ok(())
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
