//! The window operator: per window, one accumulator per key; fires windows in order of
//! their end as the watermark (event time) or the clock (processing time) passes them.

use eddy_core::key::KeyHasher;
use eddy_core::time::{now_ms, MIN_WATERMARK, NO_TIMESTAMP};
use eddy_core::{Error, OperatorInfo, Output, Record, Result, Timestamp};
use eddy_runtime::graph::BuildContext;
use eddy_runtime::metrics::{names, Counter};

use crate::keyed_stream::Key;
use crate::window::aggregate::AggregateFunction;
use crate::window::assigner::WindowAssigner;
use crate::window::open_windows::OpenWindows;
use crate::window::TimeWindow;
use crate::Data;

pub(crate) struct WindowOperator<T, K, F, A, G: AggregateFunction<T>, W, O> {
    key_of: F,
    assigner: A,
    aggregate: G,
    window_fn: W,
    hasher: KeyHasher,
    windows: OpenWindows<K, G::Acc>,
    watermark: Timestamp,
    out: Box<dyn Output<O>>,
    buffer: Vec<Record<O>>,
    late_dropped: Counter,
    info: OperatorInfo,
}

impl<T, K, F, A, G, W, O> WindowOperator<T, K, F, A, G, W, O>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K,
    A: WindowAssigner,
    G: AggregateFunction<T>,
    W: Fn(&K, TimeWindow, G::Out) -> O,
{
    pub(crate) fn new(
        ctx: &BuildContext,
        key_of: F,
        assigner: A,
        aggregate: G,
        window_fn: W,
        out: Box<dyn Output<O>>,
    ) -> Result<Self> {
        assigner.validate().map_err(|e| Error::InvalidJob(format!("operator '{}': {e}", ctx.info.name)))?;
        Ok(WindowOperator {
            key_of,
            assigner,
            aggregate,
            window_fn,
            hasher: KeyHasher::default(),
            windows: OpenWindows::default(),
            watermark: MIN_WATERMARK,
            out,
            buffer: Vec::new(),
            late_dropped: ctx.counter(names::LATE_RECORDS_DROPPED),
            info: ctx.info.clone(),
        })
    }

    /// Adds a batch to its windows; returns how many records were dropped as late.
    fn add_batch(&mut self, batch: &mut Vec<Record<T>>, now: Timestamp) -> Result<u64> {
        let event_time = self.assigner.is_event_time();
        let mut late = 0;
        for record in batch.drain(..) {
            let timestamp = if !event_time {
                now
            } else if record.timestamp == NO_TIMESTAMP {
                return Err(self.info.error(
                    "an event-time window received a record without a timestamp; \
                     call assign_timestamps_and_watermarks before key_by/window, \
                     or use a processing-time window",
                ));
            } else {
                record.timestamp
            };
            let key = (self.key_of)(&record.value);
            let hash = self.hasher.hash(&key)?;
            let mut windows = self.assigner.assign_windows(timestamp).peekable();
            let mut value = Some(record.value);
            let mut assigned = false;
            while let Some(window) = windows.next() {
                if event_time && window.max_timestamp() <= self.watermark {
                    continue;
                }
                let item = if windows.peek().is_some() { value.clone() } else { value.take() };
                let Some(item) = item else { break };
                let table = self.windows.table(window);
                let acc = table.get_or_insert_with(hash, &key, || self.aggregate.create_accumulator());
                self.aggregate.add(acc, item);
                assigned = true;
            }
            late += u64::from(!assigned);
        }
        Ok(late)
    }

    /// Emits and removes every window whose max timestamp is at most `time`.
    fn fire_until(&mut self, time: Timestamp) -> Result<()> {
        while let Some((window, mut table)) = self.windows.pop_due(time) {
            let (aggregate, window_fn, buffer) = (&self.aggregate, &self.window_fn, &mut self.buffer);
            self.info.guard(|| {
                for (key, acc) in table.drain() {
                    let result = window_fn(&key, window, aggregate.get_result(acc));
                    buffer.push(Record::new(result, window.max_timestamp()));
                }
            })?;
            self.out.records(&mut self.buffer)?;
        }
        Ok(())
    }
}

impl<T, K, F, A, G, W, O> Output<T> for WindowOperator<T, K, F, A, G, W, O>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K + Send,
    A: WindowAssigner,
    G: AggregateFunction<T>,
    W: Fn(&K, TimeWindow, G::Out) -> O + Send,
    O: Send,
{
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let now = if self.assigner.is_event_time() { 0 } else { now_ms() };
        let info = self.info.clone();
        let late = info.guard(|| self.add_batch(batch, now))??;
        if late > 0 {
            self.late_dropped.add(late);
        }
        Ok(())
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        if self.assigner.is_event_time() {
            self.watermark = watermark;
            self.fire_until(watermark)?;
        }
        self.out.watermark(watermark)
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.out.idle(idle)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        if !self.assigner.is_event_time() {
            self.fire_until(now)?;
        }
        self.out.tick(now)
    }

    fn finish(&mut self) -> Result<()> {
        // A bounded input has ended: every open window fires, processing-time ones included.
        self.fire_until(Timestamp::MAX)?;
        self.out.finish()
    }
}
