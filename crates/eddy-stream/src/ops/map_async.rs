//! `map_async`: an async function per record, many in flight at once (Flink's
//! `AsyncDataStream`), for enriching events from a database or an HTTP service without a
//! thread per request.
//!
//! The subtask thread starts each record's future on a tokio runtime (the service's, see
//! `StreamEnvironment::set_async_runtime`, or eddy's shared I/O runtime) and goes on with the
//! next record, up to `capacity` records in flight; with the queue full it waits for one to
//! finish (backpressure). Results leave in input order or as they come
//! ([`ResultOrder`]), never past a watermark, so event time stays correct downstream. A
//! future that returns an error, or takes longer than `timeout` (it is then cancelled),
//! sends its input with the reason to the dead-letter output; a panic fails the job. A
//! cancelled future keeps its place among the `capacity` until the runtime has dropped it,
//! so no more than `capacity` of the function's futures are ever alive at once.
//!
//! **Checkpoints.** At a barrier the inputs of every record still in flight (started, or done
//! but not yet emitted) go into the checkpoint; after a restore they are started again before
//! any new record. Records whose results left before the barrier are covered by the state
//! downstream, those after it are replayed by the sources, so each result reaches an
//! exactly-once sink once (the function itself may run twice for a record: make it
//! idempotent, as Flink asks). Inputs must therefore be serde types, and a checkpointed job
//! needs the operator's `uid`.

use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use eddy_core::error::panic_message;
use eddy_core::{Barrier, Error, OperatorInfo, Output, Record, Result, Timestamp};
use eddy_runtime::checkpoint::{StateContext, SubtaskList};
use eddy_runtime::metrics::{names, Counter};
use eddy_state::Redistribution;
use futures_util::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use crate::dead_letter::{dead_letter_tag, DeadLetter};
use crate::ops::async_queue::{AsyncQueue, Emitted, ResultOrder};
use crate::side_output::{OutputTag, WithSide};
use crate::state_codec::{decode, encode};
use crate::{Data, DataStream};

/// The operator-state list that holds the inputs in flight at a checkpoint.
const IN_FLIGHT: &str = "in-flight";

/// How long a waiting subtask sleeps before it looks at the cancel flag again.
const POLL: Duration = Duration::from_millis(50);

/// A finished future: its slot, and its result (or the panic it ended in).
type Finished<U> = (u64, std::thread::Result<std::result::Result<U, String>>);

impl<T: Data + Serialize + DeserializeOwned> DataStream<T> {
    /// Runs the async function `f` on every record, with up to `capacity` records in flight
    /// per subtask; each result keeps its record's timestamp. An `Err` from the future, or a
    /// future still running after `timeout`, sends the record and the reason to the
    /// dead-letter output ([`DataStream::dead_letters`]). See the [module docs](self) for
    /// ordering, backpressure and checkpoints.
    ///
    /// ```
    /// use std::time::Duration;
    /// use eddy_stream::prelude::*;
    ///
    /// /// Stands in for a database lookup.
    /// async fn country_of(user: u32) -> Result<String, String> {
    ///     tokio::time::sleep(Duration::from_millis(1)).await;
    ///     if user == 3 { Err(format!("no user {user}")) } else { Ok(format!("country-{}", user % 2)) }
    /// }
    ///
    /// let env = StreamEnvironment::new();
    /// env.set_parallelism(1);
    /// let users = env.from_iter(1..=4u32);
    /// let enriched = users.map_async(100, Duration::from_secs(1), ResultOrder::Ordered, |user| async move {
    ///     country_of(user).await.map(|country| (user, country))
    /// });
    /// let missing = enriched.dead_letters::<u32>().map(|d| (d.input, d.error)).collect();
    /// let found = enriched.collect();
    /// env.execute("enrich").unwrap().wait().unwrap();
    /// assert_eq!(found.take(), vec![(1, "country-1".to_string()), (2, "country-0".into()), (4, "country-0".into())]);
    /// assert_eq!(missing.take(), vec![(3, "no user 3".to_string())]);
    /// ```
    pub fn map_async<U, E, Fut, F>(&self, capacity: usize, timeout: Duration, order: ResultOrder, f: F) -> DataStream<U>
    where
        U: Data,
        E: Display + Send + 'static,
        Fut: Future<Output = std::result::Result<U, E>> + Send + 'static,
        F: Fn(T) -> Fut + Clone + Send + Sync + 'static,
    {
        if capacity == 0 {
            self.env.report_misuse("map_async needs a capacity of at least 1 record in flight".into());
        }
        let runtime = self.env.async_runtime();
        self.transform("AsyncMap", move |ctx, out| {
            let (done, finished) = crossbeam_channel::unbounded();
            let mut operator = AsyncMapOperator {
                f: f.clone(),
                runtime: runtime.handle(),
                capacity: capacity.max(1),
                timeout,
                queue: AsyncQueue::new(order),
                cancelling: Vec::new(),
                done,
                finished,
                emitted: Vec::new(),
                out: WithSide::new(ctx, out),
                buffer: Vec::new(),
                dead_letter: dead_letter_tag(),
                dead_letters: ctx.counter(names::DEAD_LETTERS),
                state: ctx.state(),
                cancel: ctx.cancel.clone(),
                info: ctx.info.clone(),
            };
            operator.restore()?;
            Ok(Box::new(operator))
        })
        .mark_stateful()
    }
}

struct AsyncMapOperator<T, U, F> {
    f: F,
    runtime: Handle,
    capacity: usize,
    timeout: Duration,
    queue: AsyncQueue<T, U, AbortHandle>,
    /// Futures timed out and aborted that the runtime has not dropped yet: they still hold
    /// whatever the user's function holds (a connection, a permit), so they count against
    /// `capacity` until they are gone.
    cancelling: Vec<AbortHandle>,
    /// Where finished futures report (a clone goes with each).
    done: Sender<Finished<U>>,
    finished: Receiver<Finished<U>>,
    /// Scratch for what leaves the queue.
    emitted: Vec<Emitted<T, U>>,
    out: WithSide<U>,
    buffer: Vec<Record<U>>,
    dead_letter: OutputTag<DeadLetter<T>>,
    dead_letters: Counter,
    state: Option<StateContext>,
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    info: OperatorInfo,
}

impl<T, U, E, Fut, F> AsyncMapOperator<T, U, F>
where
    T: Data + Serialize + DeserializeOwned,
    U: Data,
    E: Display + Send + 'static,
    Fut: Future<Output = std::result::Result<U, E>> + Send + 'static,
    F: Fn(T) -> Fut,
{
    /// Starts the inputs a restored checkpoint had in flight, before any new record.
    fn restore(&mut self) -> Result<()> {
        let Some(state) = self.state.as_ref().filter(|s| s.has_restored_state()) else { return Ok(()) };
        for item in state.restored_list(IN_FLIGHT)? {
            let (input, timestamp): (T, Timestamp) = decode(&item)?;
            self.start(input, timestamp)?;
        }
        Ok(())
    }

    /// Starts `input`'s future on the runtime.
    fn start(&mut self, input: T, timestamp: Timestamp) -> Result<()> {
        let (f, value) = (&self.f, input.clone());
        let future = self.info.guard(|| f(value))?;
        let (seq, done) = (self.queue.next_seq(), self.done.clone());
        let task = self.runtime.spawn(async move {
            let outcome = AssertUnwindSafe(future).catch_unwind().await;
            let _ = done.send((seq, outcome.map(|result| result.map_err(|e| e.to_string()))));
        });
        self.queue.push_record(input, timestamp, Instant::now() + self.timeout, task.abort_handle());
        Ok(())
    }

    /// Waits for the queue to have room for one more record.
    fn make_room(&mut self) -> Result<()> {
        loop {
            self.cancelling.retain(|task| !task.is_finished());
            if self.queue.records() + self.cancelling.len() < self.capacity {
                return Ok(());
            }
            self.wait()?;
        }
    }

    /// Waits until a future finishes or the oldest one times out (or the job is cancelled),
    /// then emits what may leave.
    fn wait(&mut self) -> Result<()> {
        let now = Instant::now();
        let until = self.queue.next_deadline().map_or(now + POLL, |deadline| deadline.min(now + POLL));
        match self.finished.recv_deadline(until) {
            Ok(finished) => self.finish_one(finished)?,
            Err(RecvTimeoutError::Timeout) if self.cancel.load(std::sync::atomic::Ordering::Relaxed) => {
                return Err(Error::Cancelled)
            }
            Err(_) => {}
        }
        self.collect()
    }

    fn finish_one(&mut self, (seq, outcome): Finished<U>) -> Result<()> {
        match outcome {
            Ok(result) => {
                self.queue.complete(seq, result);
                Ok(())
            }
            Err(panic) => Err(self.info.error(format!("the async function panicked: {}", panic_message(&panic)))),
        }
    }

    /// Takes every finished future, times out the overdue ones, and emits what may leave.
    fn collect(&mut self) -> Result<()> {
        while let Ok(finished) = self.finished.try_recv() {
            self.finish_one(finished)?;
        }
        let reason = format!("timed out after {:?}", self.timeout);
        for task in self.queue.expire(Instant::now(), &reason) {
            task.abort();
            self.cancelling.push(task);
        }
        let emitted = &mut self.emitted;
        self.queue.pop_ready(|e| emitted.push(e));
        let mut rejected = 0;
        for emitted in self.emitted.drain(..) {
            match emitted {
                Emitted::Result { outcome: Ok(value), timestamp, .. } => {
                    self.buffer.push(Record::new(value, timestamp))
                }
                Emitted::Result { input, timestamp, outcome: Err(error) } => {
                    rejected += 1;
                    self.out.side.emit(&self.dead_letter, DeadLetter { input, error }, timestamp);
                }
                Emitted::Watermark(watermark) => {
                    self.out.records(&mut self.buffer)?;
                    self.out.watermark(watermark)?;
                }
            }
        }
        if rejected > 0 {
            self.dead_letters.add(rejected);
            tracing::debug!(records = rejected, "records sent to the dead-letter output");
        }
        self.out.records(&mut self.buffer)
    }

    /// Puts the inputs of every record in flight into the checkpoint being taken.
    fn snapshot(&self) -> Result<()> {
        let Some(state) = &self.state else { return Ok(()) };
        let items = self.queue.inputs().map(|entry| encode(&self.info, &entry)).collect::<Result<Vec<_>>>()?;
        let list = SubtaskList { name: IN_FLIGHT.into(), redistribution: Redistribution::Split, items };
        state.snapshot(Vec::new(), vec![list]);
        Ok(())
    }
}

impl<T, U, E, Fut, F> Output<T> for AsyncMapOperator<T, U, F>
where
    T: Data + Serialize + DeserializeOwned,
    U: Data,
    E: Display + Send + 'static,
    Fut: Future<Output = std::result::Result<U, E>> + Send + 'static,
    F: Fn(T) -> Fut + Send,
{
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        for record in batch.drain(..) {
            self.make_room()?;
            self.start(record.value, record.timestamp)?;
        }
        self.collect()
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.queue.push_watermark(watermark);
        self.collect()
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.out.idle(idle)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.collect()?;
        self.out.tick(now)
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.collect()?;
        self.snapshot()?;
        self.out.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        while !self.queue.is_empty() {
            self.wait()?;
        }
        self.out.finish()
    }
}

impl<T, U, F> Drop for AsyncMapOperator<T, U, F> {
    fn drop(&mut self) {
        // A failed or cancelled job leaves nothing running on the runtime.
        for task in self.queue.take_tasks() {
            task.abort();
        }
    }
}
