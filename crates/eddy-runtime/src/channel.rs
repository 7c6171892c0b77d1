//! Channels between subtasks: bounded (backpressure), carrying batches, never blocking forever.
//!
//! Where an edge leaves a thread (a shuffle by key, a rebalance, a change of parallelism),
//! the producing chain ends in a [`ChannelWriter`] and every consuming subtask reads one
//! bounded crossbeam channel through its [input gate](crate::gate). Records never travel
//! alone:
//!
//! - the writer keeps one buffer per target subtask; a partitioner picks each record's
//!   target (by key group, round robin, at random, or the one target of a forward edge);
//! - a buffer is sent as one [`Message::Records`] when it holds `batch_size` records, on
//!   every tick (so a quiet stream still delivers within the buffer timeout), and before any
//!   watermark, idleness change, barrier or end, which go to *every* target after the
//!   records they follow (order is kept per sender);
//! - a full channel blocks the writer, which blocks its whole chain back to the source:
//!   that is the backpressure. A blocked send wakes every 50 ms to see whether the job was
//!   cancelled, and fails if the reader is gone, so no thread waits forever.
//!
//! ```text
//!  chain ─▶ ChannelWriter ─ partition ─▶ [buf 0] ──batch──▶ channel of subtask 0 ─▶ gate
//!                                    └─▶ [buf 1] ──batch──▶ channel of subtask 1 ─▶ gate
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{SendTimeoutError, Sender, TrySendError};
use eddy_core::{Barrier, Error, OperatorInfo, Output, Record, Result, Timestamp};

use crate::counter::Counter;
use crate::partitioner::Partitioner;
use crate::task_time;

/// What travels on a channel. Order is kept per sender, so a watermark follows the records
/// it covers.
#[derive(Debug)]
pub enum Message<T> {
    /// A batch of records.
    Records(Vec<Record<T>>),
    /// The sender's watermark advanced.
    Watermark(Timestamp),
    /// The sender became idle (`true`) or active.
    Idle(bool),
    /// A checkpoint barrier: the sender has passed in everything before it.
    Barrier(Barrier),
    /// The sender's input has ended.
    End,
}

/// A message tagged with the receiving gate's input index of its sender.
pub type Envelope<T> = (usize, Message<T>);

/// The sending end of a channel into one subtask's input gate.
pub type ChannelSender<T> = Sender<Envelope<T>>;

/// How often a blocked send looks at the cancel flag.
const SEND_POLL: Duration = Duration::from_millis(50);

/// Sends, waiting while the channel is full (backpressure) but giving up when the job is
/// cancelled or the receiver has stopped.
/// Time spent blocked counts as the subtask's backpressured time.
pub fn send<T>(sender: &ChannelSender<T>, envelope: Envelope<T>, cancel: &AtomicBool) -> Result<()> {
    let mut envelope = match sender.try_send(envelope) {
        Ok(()) => return Ok(()),
        Err(TrySendError::Full(back)) => back,
        Err(TrySendError::Disconnected(_)) => return Err(Error::Disconnected),
    };
    loop {
        match task_time::backpressured(|| sender.send_timeout(envelope, SEND_POLL)) {
            Ok(()) => return Ok(()),
            Err(SendTimeoutError::Timeout(back)) if !cancel.load(Ordering::Relaxed) => envelope = back,
            Err(SendTimeoutError::Timeout(_)) => return Err(Error::Cancelled),
            Err(SendTimeoutError::Disconnected(_)) => return Err(Error::Disconnected),
        }
    }
}

/// The tail of a chain when an edge leaves the thread: partitions records into one buffer per
/// target subtask and sends a buffer when it is full, on every tick, and before any watermark.
pub struct ChannelWriter<T, P> {
    senders: Vec<ChannelSender<T>>,
    buffers: Vec<Vec<Record<T>>>,
    input_index: usize,
    partitioner: P,
    batch_size: usize,
    cancel: Arc<AtomicBool>,
    records_out: Counter,
    /// The producing operator, named when a key function panics.
    info: OperatorInfo,
    /// Set once `End` was sent: a final barrier then has nowhere to go.
    ended: bool,
}

/// Where a channel writer sends and how it batches.
pub struct WriterSetup {
    /// Input index the receiving gates know this sender by.
    pub input_index: usize,
    /// Records per batch.
    pub batch_size: usize,
    /// The job's cancel flag.
    pub cancel: Arc<AtomicBool>,
    /// Counts records sent.
    pub records_out: Counter,
    /// The producing operator.
    pub info: OperatorInfo,
}

impl<T: Send, P: Partitioner<T>> ChannelWriter<T, P> {
    /// A writer to `senders` (one per target subtask) routing with `partitioner`.
    pub fn new(senders: Vec<ChannelSender<T>>, partitioner: P, setup: WriterSetup) -> Self {
        let WriterSetup { input_index, batch_size, cancel, records_out, info } = setup;
        let buffers = senders.iter().map(|_| Vec::with_capacity(batch_size)).collect();
        ChannelWriter {
            senders,
            buffers,
            input_index,
            partitioner,
            batch_size,
            cancel,
            records_out,
            info,
            ended: false,
        }
    }

    fn flush(&mut self, target: usize) -> Result<()> {
        let batch = std::mem::replace(&mut self.buffers[target], Vec::with_capacity(self.batch_size));
        self.records_out.add(batch.len() as u64);
        send(&self.senders[target], (self.input_index, Message::Records(batch)), &self.cancel)
    }

    fn flush_all(&mut self) -> Result<()> {
        for target in 0..self.buffers.len() {
            if !self.buffers[target].is_empty() {
                self.flush(target)?;
            }
        }
        Ok(())
    }

    fn broadcast(&mut self, message: impl Fn() -> Message<T>) -> Result<()> {
        self.flush_all()?;
        for sender in &self.senders {
            send(sender, (self.input_index, message()), &self.cancel)?;
        }
        Ok(())
    }
}

impl<T: Send, P: Partitioner<T>> Output<T> for ChannelWriter<T, P> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let targets = self.senders.len();
        // The partitioner may run a user's key function: a panic names the producing operator.
        let info = self.info.clone();
        info.guard(|| {
            for record in batch.drain(..) {
                let target = self.partitioner.target(&record.value, targets)?;
                self.buffers[target].push(record);
                if self.buffers[target].len() >= self.batch_size {
                    self.flush(target)?;
                }
            }
            Ok(())
        })?
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.broadcast(|| Message::Watermark(watermark))
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.broadcast(|| Message::Idle(idle))
    }

    fn tick(&mut self, _now: Timestamp) -> Result<()> {
        self.flush_all()
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        self.broadcast(|| Message::Barrier(barrier))
    }

    fn finish(&mut self) -> Result<()> {
        self.ended = true;
        self.broadcast(|| Message::End)
    }
}

/// The tail of a chain on a broadcast edge: every record goes to every target subtask.
pub struct BroadcastWriter<T> {
    inner: ChannelWriter<T, crate::partitioner::Forward>,
}

impl<T: Clone + Send> BroadcastWriter<T> {
    /// A broadcast writer to `senders` (one per target subtask).
    pub fn new(senders: Vec<ChannelSender<T>>, setup: WriterSetup) -> Self {
        BroadcastWriter { inner: ChannelWriter::new(senders, crate::partitioner::Forward, setup) }
    }
}

impl<T: Clone + Send> Output<T> for BroadcastWriter<T> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let inner = &mut self.inner;
        for record in batch.drain(..) {
            for target in 0..inner.buffers.len() {
                inner.buffers[target].push(record.clone());
                if inner.buffers[target].len() >= inner.batch_size {
                    inner.flush(target)?;
                }
            }
        }
        Ok(())
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
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
