//! `into_channel`: a job's results into the application's channel, for a request handler, a
//! websocket, or another task to consume while the job runs.
//!
//! Each sink subtask owns a clone of the sender. A bounded channel whose receiver is slow
//! makes the subtask wait, which backs the job up to its sources (backpressure), so memory
//! stays bounded however far the consumer falls behind; a wait gives up when the job is
//! cancelled. Records are sent as they arrive (at-least-once across restarts: after a
//! restore the records since the checkpoint are sent again, as with every sink that is not
//! transactional). A receiver that is dropped while the job still sends fails the job:
//! stop the job (`JobHandle::stop`) before dropping the receiver.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eddy_core::{Barrier, Error, OperatorInfo, Output, Record, Result, Timestamp};
use eddy_runtime::metrics::{names, Counter};

use super::StreamSink;
use crate::{Data, DataStream};

/// How long a blocked send waits before it looks at the cancel flag again.
const POLL: Duration = Duration::from_millis(50);

/// Why a value could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undelivered {
    /// The receiver is gone.
    Closed,
    /// The job was cancelled while the send waited for room.
    Cancelled,
}

/// The sending end of a channel that [`DataStream::into_channel`] writes into:
/// `crossbeam_channel::Sender`, and with feature `tokio` `tokio::sync::mpsc::Sender`.
pub trait ChannelSender<T>: Clone + Send + Sync + 'static {
    /// Sends `value`, waiting while the channel is full, until `cancel` is set.
    fn send_waiting(&mut self, value: T, cancel: &AtomicBool) -> Result<(), Undelivered>;
}

impl<T: Send + 'static> ChannelSender<T> for crossbeam_channel::Sender<T> {
    fn send_waiting(&mut self, value: T, cancel: &AtomicBool) -> Result<(), Undelivered> {
        use crossbeam_channel::SendTimeoutError;
        let mut value = value;
        loop {
            match self.send_timeout(value, POLL) {
                Ok(()) => return Ok(()),
                Err(SendTimeoutError::Disconnected(_)) => return Err(Undelivered::Closed),
                Err(SendTimeoutError::Timeout(back)) if !cancel.load(Ordering::Relaxed) => value = back,
                Err(SendTimeoutError::Timeout(_)) => return Err(Undelivered::Cancelled),
            }
        }
    }
}

#[cfg(feature = "tokio")]
impl<T: Send + 'static> ChannelSender<T> for tokio::sync::mpsc::Sender<T> {
    fn send_waiting(&mut self, value: T, cancel: &AtomicBool) -> Result<(), Undelivered> {
        use tokio::sync::mpsc::error::TrySendError;
        match self.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(_)) => Err(Undelivered::Closed),
            // Full: wait for room on the shared runtime, looking at `cancel` as it waits.
            Err(TrySendError::Full(value)) => match eddy_runtime::io_runtime::wait(self.reserve(), cancel) {
                Some(Ok(permit)) => {
                    permit.send(value);
                    Ok(())
                }
                Some(Err(_)) => Err(Undelivered::Closed),
                None => Err(Undelivered::Cancelled),
            },
        }
    }
}

impl<T: Data> DataStream<T> {
    /// Sends every record into `sender`'s channel (`crossbeam_channel::Sender`, or with
    /// feature `tokio` `tokio::sync::mpsc::Sender`), from each sink subtask. A bounded channel
    /// whose receiver is slow backs the job up (backpressure). A dropped receiver fails the
    /// job: stop the job first.
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// let (sender, receiver) = crossbeam_channel::bounded(4);
    /// let env = StreamEnvironment::new();
    /// env.from_collection((1..=10u32).collect()).map(|x| x * x).into_channel(sender);
    /// let job = env.execute("squares").unwrap();
    /// let mut squares: Vec<u32> = receiver.iter().collect(); // ends when the job does
    /// squares.sort();
    /// assert_eq!(squares, (1..=10).map(|x| x * x).collect::<Vec<_>>());
    /// job.wait().unwrap();
    /// ```
    pub fn into_channel<S: ChannelSender<T>>(&self, sender: S) -> StreamSink {
        let stream = self.transform::<(), _>("Sink: Channel", move |ctx, _| {
            Ok(Box::new(ChannelSinkOperator {
                sender: sender.clone(),
                cancel: ctx.cancel.clone(),
                info: ctx.info.clone(),
                written: ctx.counter(names::RECORDS_WRITTEN),
            }))
        });
        StreamSink { stream }
    }
}

struct ChannelSinkOperator<S> {
    sender: S,
    cancel: Arc<AtomicBool>,
    info: OperatorInfo,
    written: Counter,
}

impl<T, S: ChannelSender<T>> Output<T> for ChannelSinkOperator<S> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let count = batch.len();
        for record in batch.drain(..) {
            match self.sender.send_waiting(record.value, &self.cancel) {
                Ok(()) => {}
                Err(Undelivered::Cancelled) => return Err(Error::Cancelled),
                Err(Undelivered::Closed) => {
                    return Err(self.info.error(
                        "the channel's receiver was dropped while the job still sends to it; \
                         stop the job (JobHandle::stop) before dropping the receiver",
                    ))
                }
            }
        }
        self.written.add(count as u64);
        Ok(())
    }

    fn watermark(&mut self, _: Timestamp) -> Result<()> {
        Ok(())
    }

    fn idle(&mut self, _: bool) -> Result<()> {
        Ok(())
    }

    fn tick(&mut self, _: Timestamp) -> Result<()> {
        Ok(())
    }

    fn barrier(&mut self, _: Barrier) -> Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
