//! `process`: a user function with access to the record's timestamp, the current
//! watermark, and an output that can emit any number of records.

use eddy_core::time::{MAX_TIMESTAMP, MIN_TIMESTAMP, MIN_WATERMARK, NO_TIMESTAMP};
use eddy_core::{Barrier, BoxError, OperatorInfo, Output, Record, Result, Timestamp};

use crate::runtime_context::{Opened, RuntimeContext};
use crate::side_output::{OutputTag, SideOutputs, WithSide};
use crate::{Data, DataStream};
use eddy_runtime::metrics::{names, Counter};

/// What a process function sees besides the record: time, and where to emit.
pub struct ProcessContext<'a, O> {
    timestamp: Timestamp,
    watermark: Timestamp,
    out: &'a mut Vec<Record<O>>,
    side: &'a mut SideOutputs,
    rejected: &'a mut u64,
}

impl<O> ProcessContext<'_, O> {
    /// The event time of the current record, if it has one.
    pub fn timestamp(&self) -> Option<Timestamp> {
        (self.timestamp != NO_TIMESTAMP).then_some(self.timestamp)
    }

    /// The operator's current event-time watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.watermark
    }

    /// Emits `value` with the current record's timestamp.
    pub fn collect(&mut self, value: O) {
        self.out.push(Record::new(value, self.timestamp));
    }

    /// Emits `value` with the given event time, clamped to the event-time range
    /// (`MIN_TIMESTAMP..=MAX_TIMESTAMP`: `i64::MIN` and `i64::MAX` are markers, see
    /// [`eddy_core::time`]).
    pub fn collect_with_timestamp(&mut self, value: O, timestamp: Timestamp) {
        self.out.push(Record::new(value, timestamp.clamp(MIN_TIMESTAMP, MAX_TIMESTAMP)));
    }

    /// Emits `value` to the side output `tag`, with the current record's timestamp.
    pub fn output<X: Clone + Send + 'static>(&mut self, tag: &OutputTag<X>, value: X) {
        self.side.emit(tag, value, self.timestamp);
    }

    /// Sends a rejected record to the dead-letter output and counts it.
    pub(crate) fn reject<X: Clone + Send + 'static>(&mut self, tag: &OutputTag<X>, letter: X) {
        *self.rejected += 1;
        self.side.emit(tag, letter, self.timestamp);
    }
}

/// A function called for every record with a [`ProcessContext`]. Closures
/// `FnMut(T, &mut ProcessContext<O>)` implement it.
pub trait ProcessFunction<T, O>: Clone + Send + Sync + 'static {
    /// Handles one record.
    fn process_element(&mut self, value: T, ctx: &mut ProcessContext<'_, O>);

    /// Sets up this subtask's copy of the function before its first record (see
    /// [`RuntimeContext`]); an error fails the attempt.
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        let _ = ctx;
        Ok(())
    }

    /// Releases what `open` set up, after the last record (see [`RuntimeContext`]).
    fn close(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<T, O, F> ProcessFunction<T, O> for F
where
    F: FnMut(T, &mut ProcessContext<'_, O>) + Clone + Send + Sync + 'static,
{
    fn process_element(&mut self, value: T, ctx: &mut ProcessContext<'_, O>) {
        self(value, ctx)
    }
}

impl<T: Data> DataStream<T> {
    /// Runs `function` on every record with its timestamp and the current watermark.
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// let env = StreamEnvironment::new();
    /// env.set_parallelism(1); // one subtask keeps the output in input order
    /// let out = env
    ///     .from_iter(vec![3, 4])
    ///     .process(|x: i32, ctx: &mut ProcessContext<'_, i32>| {
    ///         for _ in 0..x { ctx.collect(x) }
    ///     })
    ///     .collect();
    /// env.execute("repeat").unwrap().wait().unwrap();
    /// assert_eq!(out.take(), vec![3, 3, 3, 4, 4, 4, 4]);
    /// ```
    pub fn process<O: Data, P: ProcessFunction<T, O>>(&self, function: P) -> DataStream<O> {
        self.transform("Process", move |ctx, out| {
            Ok(Box::new(ProcessOperator {
                function: Opened::open(ctx, function.clone(), P::open, P::close)?,
                out: WithSide::new(ctx, out),
                buffer: Vec::new(),
                watermark: MIN_WATERMARK,
                dead_letters: ctx.counter(names::DEAD_LETTERS),
                info: ctx.info.clone(),
            }))
        })
    }
}

struct ProcessOperator<P, O> {
    function: Opened<P>,
    out: WithSide<O>,
    buffer: Vec<Record<O>>,
    watermark: Timestamp,
    dead_letters: Counter,
    info: OperatorInfo,
}

impl<T, O: Send, P: ProcessFunction<T, O>> Output<T> for ProcessOperator<P, O> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let (function, buffer, side, watermark) =
            (&mut *self.function, &mut self.buffer, &mut self.out.side, self.watermark);
        let mut rejected = 0;
        self.info.guard(|| {
            for record in batch.drain(..) {
                let mut ctx = ProcessContext {
                    timestamp: record.timestamp,
                    watermark,
                    out: &mut *buffer,
                    side: &mut *side,
                    rejected: &mut rejected,
                };
                function.process_element(record.value, &mut ctx);
            }
        })?;
        if rejected > 0 {
            self.dead_letters.add(rejected);
            tracing::debug!(records = rejected, "records sent to the dead-letter output");
        }
        self.out.records(&mut self.buffer)
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.watermark = watermark;
        self.out.watermark(watermark)
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.out.idle(idle)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.out.tick(now)
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.out.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        self.function.close()?;
        self.out.finish()
    }
}
