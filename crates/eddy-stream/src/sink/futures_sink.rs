//! With feature `tokio`: `into_sink` into any `futures::Sink`, and `collect_stream`, a job's
//! results as a `futures::Stream`.
//!
//! A `futures::Sink` is one object, so `into_sink` runs as a single subtask. It feeds the
//! sink on eddy's shared I/O runtime (in its context, so a sink over a tokio socket works)
//! and flushes it on every tick, checkpoint barrier and at the end of input; a sink that is
//! not ready makes the subtask wait (backpressure), until the job is cancelled. After a
//! restart the same sink is used again.

use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use eddy_core::{Barrier, Error, OperatorInfo, Output, Record, Result, Timestamp};
use eddy_runtime::io_runtime;
use eddy_runtime::metrics::{names, Counter};
use futures_util::{Sink, SinkExt, Stream};

use super::StreamSink;
use crate::{Data, DataStream};

/// How many results `collect_stream` buffers for a consumer that is behind.
const COLLECT_STREAM_CAPACITY: usize = 1024;

/// The sink, shared by the attempts of a job: the operator takes it and gives it back.
type Slot<S> = Arc<Mutex<Option<Pin<Box<S>>>>>;

impl<T: Data> DataStream<T> {
    /// Feeds every record into `sink` (a `futures::Sink`: a websocket's sending half, a
    /// `tokio_util` framed writer, a channel's `Sink` adapter), from one subtask, flushing
    /// it regularly and at the end. An error from the sink fails the job.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use eddy_stream::prelude::*;
    /// let received = Arc::new(Mutex::new(Vec::new()));
    /// let target = received.clone();
    /// // A sink that stores each item (in a service: a websocket's sending half, say).
    /// let sink = futures_util::sink::unfold((), move |(), x: u32| {
    ///     target.lock().unwrap().push(x);
    ///     async { Ok::<_, std::io::Error>(()) }
    /// });
    /// let env = StreamEnvironment::new();
    /// env.set_parallelism(1);
    /// env.from_iter(1..=3u32).into_sink(sink);
    /// env.execute("into a sink").unwrap().wait().unwrap();
    /// assert_eq!(*received.lock().unwrap(), vec![1, 2, 3]);
    /// ```
    pub fn into_sink<S>(&self, sink: S) -> StreamSink
    where
        S: Sink<T> + Send + 'static,
        S::Error: std::fmt::Display,
    {
        let slot: Slot<S> = Arc::new(Mutex::new(Some(Box::pin(sink))));
        let stream = self.transform::<(), _>("Sink: FuturesSink", move |ctx, _| {
            let sink = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            let sink = sink.ok_or_else(|| ctx.info.error("the sink is already used by another subtask"))?;
            Ok(Box::new(FuturesSinkOperator {
                sink: Some(sink),
                slot: slot.clone(),
                cancel: ctx.cancel.clone(),
                info: ctx.info.clone(),
                written: ctx.counter(names::RECORDS_WRITTEN),
            }))
        });
        StreamSink { stream: stream.set_parallelism(1) }
    }

    /// The records as a `futures::Stream`, to consume from async code while the job runs
    /// (stream results to a client, forward them to another service). The stream ends when
    /// the job has ended; await [`JobHandle::join`](eddy_runtime::JobHandle::join) for how.
    /// Up to 1024 results wait for a slow consumer, then the job backs up (backpressure).
    /// Dropping the stream while the job still sends fails the job.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use eddy_stream::prelude::*;
    /// # tokio_test_block_on(async {
    /// let env = StreamEnvironment::new();
    /// let results = env.from_collection((1..=5u32).collect()).map(|x| x * 10).collect_stream();
    /// let job = env.execute("tens").unwrap();
    /// let mut tens: Vec<u32> = results.collect().await;
    /// tens.sort();
    /// assert_eq!(tens, vec![10, 20, 30, 40, 50]);
    /// job.await.unwrap();
    /// # });
    /// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output { eddy_runtime::io_runtime::runtime().block_on(f) }
    /// ```
    pub fn collect_stream(&self) -> CollectStream<T> {
        let (sender, receiver) = tokio::sync::mpsc::channel(COLLECT_STREAM_CAPACITY);
        self.into_channel(sender).name("Sink: CollectStream");
        CollectStream { receiver }
    }
}

/// The results of a job as a `futures::Stream` ([`DataStream::collect_stream`]).
pub struct CollectStream<T> {
    receiver: tokio::sync::mpsc::Receiver<T>,
}

impl<T> Stream for CollectStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.receiver.poll_recv(cx)
    }
}

struct FuturesSinkOperator<S> {
    /// Always `Some` until dropped.
    sink: Option<Pin<Box<S>>>,
    slot: Slot<S>,
    cancel: Arc<AtomicBool>,
    info: OperatorInfo,
    written: Counter,
}

impl<S> FuturesSinkOperator<S> {
    /// Runs `f` against the sink on the shared runtime until it is done or the job is cancelled.
    fn run<R, E: std::fmt::Display>(
        &mut self,
        what: &str,
        f: impl AsyncFnOnce(&mut Pin<Box<S>>) -> std::result::Result<R, E>,
    ) -> Result<R> {
        let Some(sink) = self.sink.as_mut() else { return Err(self.info.error("the sink is gone")) };
        match io_runtime::wait(f(sink), &self.cancel) {
            Some(Ok(done)) => Ok(done),
            Some(Err(e)) => Err(self.info.error(format!("the sink failed to {what}: {e}"))),
            None => Err(Error::Cancelled),
        }
    }

    fn flush<T>(&mut self) -> Result<()>
    where
        S: Sink<T>,
        S::Error: std::fmt::Display,
    {
        self.run("flush", async |sink| sink.flush().await)
    }
}

impl<T, S> Output<T> for FuturesSinkOperator<S>
where
    T: Send,
    S: Sink<T> + Send,
    S::Error: std::fmt::Display,
{
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let count = batch.len();
        self.run("take a record", async |sink| {
            for record in batch.drain(..) {
                sink.feed(record.value).await?;
            }
            Ok::<_, S::Error>(())
        })?;
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
        self.flush()
    }

    fn barrier(&mut self, _: Barrier) -> Result<()> {
        self.flush()
    }

    fn finish(&mut self) -> Result<()> {
        self.flush()
    }
}

impl<S> Drop for FuturesSinkOperator<S> {
    fn drop(&mut self) {
        *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = self.sink.take();
    }
}
