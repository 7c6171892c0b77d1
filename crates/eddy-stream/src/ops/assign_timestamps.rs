//! `assign_timestamps_and_watermarks`: gives records their event time and generates
//! watermarks as the [`WatermarkStrategy`] says.

use std::time::Instant;

use eddy_core::time::{MAX_WATERMARK, MIN_WATERMARK};
use eddy_core::{OperatorInfo, Output, Record, Result, Timestamp};

use crate::watermark_strategy::WatermarkStrategy;
use crate::{Data, DataStream};

impl<T: Data> DataStream<T> {
    /// Sets each record's event time to `timestamp_of(&record)` (milliseconds since the
    /// epoch) and generates watermarks with `strategy`. Watermarks from upstream are replaced
    /// (except the final one at end of input), as in Flink.
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// let env = StreamEnvironment::new();
    /// env.set_parallelism(1); // one subtask keeps the output in input order
    /// let stamped = env
    ///     .from_iter(vec![(1_000i64, "a"), (2_000, "b")])
    ///     .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |e| e.0);
    /// let out = stamped.process(|e, ctx: &mut ProcessContext<'_, i64>| ctx.collect(ctx.timestamp().unwrap())).collect();
    /// env.execute("ts").unwrap().wait().unwrap();
    /// assert_eq!(out.take(), vec![1_000, 2_000]);
    /// ```
    pub fn assign_timestamps_and_watermarks<F>(&self, strategy: WatermarkStrategy, timestamp_of: F) -> DataStream<T>
    where
        F: Fn(&T) -> Timestamp + Clone + Send + Sync + 'static,
    {
        self.transform("Timestamps/Watermarks", move |ctx, out| {
            Ok(Box::new(AssignTimestamps {
                timestamp_of: timestamp_of.clone(),
                strategy,
                out,
                max_timestamp: MIN_WATERMARK,
                emitted: MIN_WATERMARK,
                last_emit: Instant::now(),
                last_record: Instant::now(),
                idle: false,
                info: ctx.info.clone(),
            }))
        })
    }
}

struct AssignTimestamps<F, T> {
    timestamp_of: F,
    strategy: WatermarkStrategy,
    out: Box<dyn Output<T>>,
    max_timestamp: Timestamp,
    emitted: Timestamp,
    last_emit: Instant,
    last_record: Instant,
    idle: bool,
    info: OperatorInfo,
}

impl<F, T> AssignTimestamps<F, T> {
    fn current_watermark(&self) -> Timestamp {
        let bound = self.strategy.out_of_orderness.as_millis() as i64;
        self.max_timestamp.saturating_sub(bound).saturating_sub(1)
    }

    fn emit_watermark(&mut self) -> Result<()> {
        self.last_emit = Instant::now();
        let watermark = self.current_watermark();
        if watermark > self.emitted {
            self.emitted = watermark;
            self.out.watermark(watermark)?;
        }
        Ok(())
    }
}

impl<T: Send, F: Fn(&T) -> Timestamp + Send> Output<T> for AssignTimestamps<F, T> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let (timestamp_of, max) = (&self.timestamp_of, &mut self.max_timestamp);
        self.info.guard(|| {
            for record in batch.iter_mut() {
                record.timestamp = timestamp_of(&record.value);
                *max = (*max).max(record.timestamp);
            }
        })?;
        self.last_record = Instant::now();
        if self.idle {
            self.idle = false;
            self.out.idle(false)?;
        }
        self.out.records(batch)?;
        if self.last_emit.elapsed() >= self.strategy.interval {
            self.emit_watermark()?;
        }
        Ok(())
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        if watermark == MAX_WATERMARK && self.emitted < MAX_WATERMARK {
            self.emitted = MAX_WATERMARK;
            return self.out.watermark(MAX_WATERMARK);
        }
        Ok(())
    }

    fn idle(&mut self, _idle: bool) -> Result<()> {
        // This operator decides idleness from its own input.
        Ok(())
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        if self.last_emit.elapsed() >= self.strategy.interval {
            self.emit_watermark()?;
        }
        if let Some(timeout) = self.strategy.idleness {
            if !self.idle && self.last_record.elapsed() >= timeout {
                // Send the final watermark first: one sent after `idle` would mark us active.
                self.emit_watermark()?;
                self.idle = true;
                self.out.idle(true)?;
            }
        }
        self.out.tick(now)
    }

    fn finish(&mut self) -> Result<()> {
        self.watermark(MAX_WATERMARK)?;
        self.out.finish()
    }
}
