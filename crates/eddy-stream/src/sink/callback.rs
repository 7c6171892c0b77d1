//! `for_each`: a callback per record, for results the application handles in place
//! (update a cache, bump a gauge, notify a client list).

use eddy_core::{BoxError, Timestamp};

use super::{Sink, StreamSink};
use crate::{Data, DataStream};

impl<T: Data> DataStream<T> {
    /// Calls `f` with every record, on the sink subtask's thread (each subtask calls its own
    /// clone of `f`, so share state through an `Arc`). A panic in `f` fails the job like any
    /// user function's. At-least-once across restarts, as every sink that is not transactional.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use eddy_stream::prelude::*;
    /// let total = Arc::new(AtomicU64::new(0));
    /// let sum = total.clone();
    /// let env = StreamEnvironment::new();
    /// env.from_collection((1..=100u64).collect()).for_each(move |x| {
    ///     sum.fetch_add(x, Ordering::Relaxed);
    /// });
    /// env.execute("sum").unwrap().wait().unwrap();
    /// assert_eq!(total.load(Ordering::Relaxed), 5050);
    /// ```
    pub fn for_each<F>(&self, f: F) -> StreamSink
    where
        F: FnMut(T) + Clone + Send + Sync + 'static,
    {
        self.add_sink("ForEach", move |_, _| Ok(Callback(f.clone())))
    }
}

/// One subtask's callback.
struct Callback<F>(F);

impl<T, F: FnMut(T) + Send> Sink<T> for Callback<F> {
    fn write(&mut self, value: T, _: Timestamp) -> Result<(), BoxError> {
        (self.0)(value);
        Ok(())
    }
}
