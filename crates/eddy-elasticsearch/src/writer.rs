//! The operator of one sink subtask: turns records into actions, fills a batch, sends it to
//! the shared I/O runtime when full or due, keeps at most `max_in_flight` requests open, and
//! hands dead letters on. At a checkpoint barrier and at the end of input it sends what it
//! holds and waits until every request is answered, so a completed checkpoint means every
//! record before it is in the index (at-least-once); a request that fails for good fails the
//! checkpoint, and the job's restart strategy replays from the last complete one.

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use eddy_core::{Barrier, OperatorInfo, Output, Record, Result, Timestamp};
use eddy_runtime::graph::BuildContext;
use eddy_runtime::metrics::{names, Counter};
use tokio::task::JoinHandle;

use crate::batch::BulkBatch;
use crate::client::Written;
use crate::failed::ACTION_ERROR;
use eddy_runtime::io_runtime;

use crate::{ElasticsearchSink, Error, FailedDocument};

/// Counter of refused actions sent to the dead-letter output: the runtime's one dead-letter
/// counter.
pub use eddy_runtime::metrics::names::DEAD_LETTERS;
/// Counter of bulk requests sent (not counting retries).
pub const BULK_REQUESTS: &str = "bulk_requests";
/// Counter of retried bulk requests (whole, or the refused part).
pub const BULK_RETRIES: &str = "bulk_retries";
/// Counter of `create` actions whose document existed (replays).
pub const DUPLICATES: &str = "duplicates";

/// One sink subtask.
pub(crate) struct BulkWriter<T> {
    sink: ElasticsearchSink<T>,
    batch: BulkBatch,
    in_flight: VecDeque<JoinHandle<Result<Written, Error>>>,
    last_send: Instant,
    /// Dead letters go here (the stream the sink returns).
    out: Box<dyn Output<FailedDocument>>,
    dead: Vec<Record<FailedDocument>>,
    info: OperatorInfo,
    cancel: Arc<AtomicBool>,
    /// Seeds each request's backoff jitter, so subtasks do not retry in step.
    rng: fastrand::Rng,
    counters: Counters,
}

struct Counters {
    written: Counter,
    dead_letters: Counter,
    requests: Counter,
    retries: Counter,
    duplicates: Counter,
}

impl<T> BulkWriter<T> {
    pub(crate) fn new(sink: ElasticsearchSink<T>, ctx: &BuildContext, out: Box<dyn Output<FailedDocument>>) -> Self {
        BulkWriter {
            sink,
            batch: BulkBatch::default(),
            in_flight: VecDeque::new(),
            last_send: Instant::now(),
            out,
            dead: Vec::new(),
            info: ctx.info.clone(),
            cancel: ctx.cancel.clone(),
            rng: fastrand::Rng::new(),
            counters: Counters {
                written: ctx.counter(names::RECORDS_WRITTEN),
                dead_letters: ctx.counter(DEAD_LETTERS),
                requests: ctx.counter(BULK_REQUESTS),
                retries: ctx.counter(BULK_RETRIES),
                duplicates: ctx.counter(DUPLICATES),
            },
        }
    }

    /// Whether the batch has reached a size limit.
    fn full(&self) -> bool {
        self.batch.len() >= self.sink.limits.max_actions || self.batch.bytes() >= self.sink.limits.max_bytes
    }

    /// Sends the batch, first waiting for a free in-flight slot (this wait is backpressure).
    fn send(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        while self.in_flight.len() >= self.sink.max_in_flight {
            self.wait_oldest()?;
        }
        let batch = std::mem::take(&mut self.batch);
        let request = self.sink.client.clone().write(batch, self.sink.retry, self.rng.u64(..));
        self.in_flight.push_back(io_runtime::spawn(request));
        self.counters.requests.add(1);
        self.last_send = Instant::now();
        Ok(())
    }

    /// Blocks until the oldest request is answered and takes in its result.
    fn wait_oldest(&mut self) -> Result<()> {
        let Some(mut request) = self.in_flight.pop_front() else { return Ok(()) };
        let Some(joined) = io_runtime::wait(&mut request, &self.cancel) else {
            request.abort();
            return Err(eddy_core::Error::Cancelled);
        };
        let written = joined
            .map_err(|e| self.info.error(format!("a bulk request task failed: {e}")))?
            .map_err(|e| self.info.error(e.to_string()))?;
        self.counters.retries.add(written.retries);
        self.counters.duplicates.add(written.duplicates);
        self.counters.dead_letters.add(written.failed.len() as u64);
        self.dead.extend(written.failed.into_iter().map(|(failed, timestamp)| Record::new(failed, timestamp)));
        Ok(())
    }

    /// Takes in the results of requests already answered, without blocking.
    fn take_answered(&mut self) -> Result<()> {
        while self.in_flight.front().is_some_and(JoinHandle::is_finished) {
            self.wait_oldest()?;
        }
        Ok(())
    }

    /// Sends everything and waits for every answer.
    fn drain(&mut self) -> Result<()> {
        self.send()?;
        while !self.in_flight.is_empty() {
            self.wait_oldest()?;
        }
        self.emit_dead()
    }

    fn emit_dead(&mut self) -> Result<()> {
        if self.dead.is_empty() {
            return Ok(());
        }
        self.out.records(&mut self.dead)
    }
}

impl<T: Send> Output<T> for BulkWriter<T> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        self.counters.written.add(batch.len() as u64);
        for record in batch.drain(..) {
            let action = &self.sink.action;
            match self.info.guard(|| action(&record.value))? {
                Ok(action) => {
                    self.batch.push(action, record.timestamp);
                    if self.full() {
                        self.send()?;
                    }
                }
                Err(error) => {
                    self.counters.dead_letters.add(1);
                    let failed = FailedDocument {
                        action: None,
                        index: String::new(),
                        id: None,
                        document: None,
                        status: None,
                        error_type: ACTION_ERROR.into(),
                        reason: error.to_string(),
                    };
                    self.dead.push(Record::new(failed, record.timestamp));
                }
            }
        }
        self.take_answered()?;
        self.emit_dead()
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.emit_dead()?;
        self.out.watermark(watermark)
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.out.idle(idle)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.take_answered()?;
        if self.sink.limits.interval.is_some_and(|interval| self.last_send.elapsed() >= interval) {
            self.send()?;
        }
        self.emit_dead()?;
        self.out.tick(now)
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.drain()?;
        self.out.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        self.drain()?;
        self.out.finish()
    }
}

impl<T> Drop for BulkWriter<T> {
    /// A failed or cancelled attempt stops its requests' retries; the restarted one resends.
    fn drop(&mut self) {
        for request in &self.in_flight {
            request.abort();
        }
    }
}
