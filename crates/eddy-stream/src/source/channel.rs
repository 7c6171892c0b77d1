//! `from_channel` and `from_stream`: records an application hands to a running job from its
//! own threads or async tasks.
//!
//! The source is one subtask that drains the receiver in batches. The channel is the
//! boundary between the application and the job: when the job is busy the source stops
//! draining, the channel fills, and a bounded channel makes its senders wait (a tokio
//! sender's `send().await` pends, a crossbeam sender's `send` blocks). So a full job pushes
//! back on the producer and memory stays bounded by the channel's capacity plus the job's own
//! channels. The source ends when every sender is gone (or the stream ends) and the channel
//! is empty; `JobHandle::stop` ends it earlier.
//!
//! A channel cannot rewind, so a checkpointed job refuses these sources (as it refuses other
//! sources that cannot replay): restoring state but not the records read after the
//! checkpoint would break exactly-once. Use them in jobs without checkpoints, or put a log
//! (Kafka) between the application and a checkpointed job.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eddy_core::{BoxError, PlainReader, ReaderContext, Source, SourcePoll, SplitSource};

use crate::node::SourceNode;
use crate::{Data, DataStream, StreamEnvironment};

/// How long a poll waits for the first value before it reports that nothing came: short, so
/// the subtask keeps time moving and notices a stop, as [`Source::poll_next`] asks.
const WAIT: Duration = Duration::from_millis(50);

/// Whether more values may come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// The channel is open (values may have been received, or not yet).
    Open,
    /// Every sender is gone (or the stream ended) and nothing is left to receive.
    Closed,
}

/// The receiving end of a channel that [`StreamEnvironment::from_channel`] reads:
/// `crossbeam_channel::Receiver`, and with feature `tokio` `tokio::sync::mpsc::Receiver`.
pub trait Receive<T>: Send + 'static {
    /// Moves up to `max` values into the empty `out`, waiting at most `wait` for the first.
    fn receive(&mut self, out: &mut Vec<T>, max: usize, wait: Duration) -> Received;
}

impl<T: Send + 'static> Receive<T> for crossbeam_channel::Receiver<T> {
    fn receive(&mut self, out: &mut Vec<T>, max: usize, wait: Duration) -> Received {
        use crossbeam_channel::{RecvTimeoutError, TryRecvError};
        match self.recv_timeout(wait) {
            Ok(value) => out.push(value),
            Err(RecvTimeoutError::Timeout) => return Received::Open,
            Err(RecvTimeoutError::Disconnected) => return Received::Closed,
        }
        while out.len() < max {
            match self.try_recv() {
                Ok(value) => out.push(value),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Received::Closed,
            }
        }
        Received::Open
    }
}

/// The receiver a channel source reads, shared by the attempts of a job: a reader takes it
/// and gives it back when it is dropped, so a restarted job reads on from the same channel.
type Slot<R> = Arc<Mutex<Option<R>>>;

/// A source over one receiver, read by a single subtask.
pub struct ChannelSource<R> {
    slot: Slot<R>,
}

impl<T: Send + 'static, R: Receive<T>> SplitSource<T> for ChannelSource<R> {
    type Reader = PlainReader<ChannelReader<R>>;

    fn open(&self, _: &ReaderContext) -> Result<Self::Reader, BoxError> {
        let receiver = self.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        let receiver = receiver.ok_or("the channel's receiver is already being read by another subtask")?;
        Ok(PlainReader(ChannelReader { receiver: Some(receiver), slot: self.slot.clone(), closed: false }))
    }
}

/// The reader of a [`ChannelSource`].
pub struct ChannelReader<R> {
    /// Always `Some` until dropped.
    receiver: Option<R>,
    slot: Slot<R>,
    closed: bool,
}

impl<T: Send + 'static, R: Receive<T>> Source<T> for ChannelReader<R> {
    fn poll_next(&mut self, out: &mut Vec<T>, max: usize) -> Result<SourcePoll, BoxError> {
        if self.closed {
            return Ok(SourcePoll::Done);
        }
        let Some(receiver) = self.receiver.as_mut() else { return Ok(SourcePoll::Done) };
        self.closed = receiver.receive(out, max, WAIT) == Received::Closed;
        Ok(match (out.is_empty(), self.closed) {
            (true, true) => SourcePoll::Done,
            (true, false) => SourcePoll::Pending,
            (false, _) => SourcePoll::Ready,
        })
    }
}

impl<R> Drop for ChannelReader<R> {
    fn drop(&mut self) {
        *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = self.receiver.take();
    }
}

impl StreamEnvironment {
    /// A stream of the values sent into a channel by the application (a request handler, a
    /// consumer loop): `receiver` is a `crossbeam_channel::Receiver` or, with feature
    /// `tokio`, a `tokio::sync::mpsc::Receiver`. One subtask reads it; the stream ends when
    /// every sender is dropped and the channel is empty. A bounded channel makes senders wait
    /// while the job is busy (backpressure). Values have no event time: give them one with
    /// `assign_timestamps_and_watermarks`. A checkpointed job refuses this source (a channel
    /// cannot rewind).
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// let (sender, receiver) = crossbeam_channel::bounded(16);
    /// let env = StreamEnvironment::new();
    /// let doubled = env.from_channel(receiver).map(|x: u32| x * 2).collect();
    /// let job = env.execute("doubles").unwrap();
    /// for x in 0..100 {
    ///     sender.send(x).unwrap(); // waits while the job is busy
    /// }
    /// drop(sender); // the end of the input
    /// job.wait().unwrap();
    /// assert_eq!(doubled.take().len(), 100);
    /// ```
    pub fn from_channel<T, R>(&self, receiver: R) -> DataStream<T>
    where
        T: Data,
        R: Receive<T>,
    {
        self.receive_from("Channel", receiver)
    }

    /// A single-subtask source named `name` over `receiver`.
    pub(crate) fn receive_from<T: Data, R: Receive<T>>(&self, name: &str, receiver: R) -> DataStream<T> {
        let source = ChannelSource { slot: Arc::new(Mutex::new(Some(receiver))) };
        self.add_source_node(name, true, SourceNode::new(source, None))
    }
}
