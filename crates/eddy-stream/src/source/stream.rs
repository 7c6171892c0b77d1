//! With feature `tokio`: tokio's bounded channel as a [`Receive`], and `from_stream` over any
//! `futures::Stream`.
//!
//! The source's subtask is a plain thread. It waits for a tokio channel or a stream on eddy's
//! shared I/O runtime ([`eddy_runtime::io_runtime`]), in that runtime's context, so a stream
//! that needs tokio's timers or I/O works; a stream created on the application's runtime
//! keeps being driven by it.

use std::pin::Pin;
use std::time::Duration;

use eddy_runtime::io_runtime;
use futures_util::{FutureExt, Stream, StreamExt};
use tokio::sync::mpsc::error::TryRecvError;

use super::channel::{Receive, Received};
use crate::{Data, DataStream, StreamEnvironment};

impl<T: Send + 'static> Receive<T> for tokio::sync::mpsc::Receiver<T> {
    fn receive(&mut self, out: &mut Vec<T>, max: usize, wait: Duration) -> Received {
        // What is already there needs no runtime.
        while out.len() < max {
            match self.try_recv() {
                Ok(value) => out.push(value),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Received::Closed,
            }
        }
        if !out.is_empty() {
            return Received::Open;
        }
        match io_runtime::wait_at_most(self.recv(), wait) {
            Some(Some(value)) => out.push(value),
            Some(None) => return Received::Closed,
            None => return Received::Open,
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

/// A `futures::Stream` read as a channel.
pub struct StreamReceiver<S>(Pin<Box<S>>);

impl<S: Stream + Send + 'static> Receive<S::Item> for StreamReceiver<S> {
    fn receive(&mut self, out: &mut Vec<S::Item>, max: usize, wait: Duration) -> Received {
        let stream = &mut self.0;
        let received = io_runtime::wait_at_most(
            async {
                let Some(first) = stream.next().await else { return Received::Closed };
                out.push(first);
                // Then whatever is ready without waiting.
                while out.len() < max {
                    match stream.next().now_or_never() {
                        Some(Some(value)) => out.push(value),
                        Some(None) => return Received::Closed,
                        None => break,
                    }
                }
                Received::Open
            },
            wait,
        );
        received.unwrap_or(Received::Open)
    }
}

impl StreamEnvironment {
    /// A stream of the items of a `futures::Stream` (a tokio channel wrapped as a stream, a
    /// websocket's messages, a paginated API): one subtask polls it, on eddy's shared runtime,
    /// and the job's stream ends when it does. As with [`StreamEnvironment::from_channel`],
    /// a busy job stops polling (backpressure), items have no event time yet, and a
    /// checkpointed job refuses the source.
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// use futures_util::StreamExt;
    /// let env = StreamEnvironment::new();
    /// env.set_parallelism(1);
    /// let squares = futures_util::stream::iter(1..=4u64).map(|x| x * x);
    /// let out = env.from_stream(squares).collect();
    /// env.execute("squares").unwrap().wait().unwrap();
    /// assert_eq!(out.take(), vec![1, 4, 9, 16]);
    /// ```
    pub fn from_stream<S>(&self, stream: S) -> DataStream<S::Item>
    where
        S: Stream + Send + 'static,
        S::Item: Data,
    {
        self.receive_from("Stream", StreamReceiver(Box::pin(stream)))
    }
}
