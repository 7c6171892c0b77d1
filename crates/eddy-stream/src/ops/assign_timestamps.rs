//! `assign_timestamps_and_watermarks`: gives records their event time and generates
//! watermarks as the [`WatermarkStrategy`] says.

use std::time::Instant;

use eddy_core::time::{reserved, MAX_WATERMARK, MIN_WATERMARK, NO_TIMESTAMP};
use eddy_core::{AlignmentMember, Barrier, OperatorInfo, Output, Record, Result, Timestamp};
use eddy_runtime::metrics::{names, Counter};

use crate::dead_letter::{dead_letter_tag, DeadLetter};
use crate::side_output::{OutputTag, WithSide};
use crate::watermark_strategy::{WatermarkGenerator, WatermarkStrategy};
use crate::{Data, DataStream};

impl<T: Data> DataStream<T> {
    /// Sets each record's event time to `timestamp_of(&record)` (milliseconds since the
    /// epoch) and generates watermarks with `strategy`. Unless given its own parallelism, it
    /// runs at its input's, chained to it, so each input partition keeps its order. Watermarks from upstream are replaced
    /// (except the final one at end of input), as in Flink.
    ///
    /// A timestamp of `i64::MIN` or `i64::MAX` is not an event time (they mark "no
    /// timestamp" and the end of input, see [`eddy_core::time`]): such a record goes to this
    /// operator's dead-letter output ([`DataStream::dead_letters`]) with the reason, and is
    /// counted in its `dead_letters` metric. (Flink would take it and fail later, in the
    /// window assigner.)
    ///
    /// With [`WatermarkStrategy::with_watermark_alignment`], the source this operator runs
    /// chained to pauses while the watermarks generated here run too far ahead of the group
    /// (Flink aligns only on a source's own strategy; here the assigner stands for the source
    /// it is chained to, so a text file whose lines carry their time aligns too). `execute`
    /// refuses the job if the assigner is not chained to a source.
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
    pub fn assign_timestamps_and_watermarks<G, F>(
        &self,
        strategy: WatermarkStrategy<G>,
        timestamp_of: F,
    ) -> DataStream<T>
    where
        G: WatermarkGenerator<T>,
        F: Fn(&T) -> Timestamp + Clone + Send + Sync + 'static,
    {
        let assigner = self.transform("Timestamps/Watermarks", move |ctx, out| {
            let alignment = strategy.alignment.as_ref().map(|a| ctx.join_alignment(a)).transpose()?;
            Ok(Box::new(AssignTimestamps {
                timestamp_of: timestamp_of.clone(),
                strategy: strategy.clone(),
                out: WithSide::new(ctx, out),
                dead_letter: dead_letter_tag(),
                dead_letters: ctx.counter(names::DEAD_LETTERS),
                punctuations: Vec::new(),
                emitted: MIN_WATERMARK,
                last_emit: Instant::now(),
                last_record: Instant::now(),
                idle: false,
                alignment,
                info: ctx.info.clone(),
            }))
        });
        // Watermarks describe the order of one input partition: run where that partition is
        // (chained to the input), not behind a rebalance that would mix partitions.
        assigner.follow_input()
    }
}

struct AssignTimestamps<F, G, T> {
    timestamp_of: F,
    strategy: WatermarkStrategy<G>,
    out: WithSide<T>,
    /// Where records whose timestamp is a reserved marker go.
    dead_letter: OutputTag<DeadLetter<T>>,
    dead_letters: Counter,
    /// Punctuated watermarks found in the current batch: (records before it, watermark).
    punctuations: Vec<(usize, Timestamp)>,
    emitted: Timestamp,
    last_emit: Instant,
    last_record: Instant,
    idle: bool,
    /// Where the watermarks are published when the strategy aligns them.
    alignment: Option<AlignmentMember>,
    info: OperatorInfo,
}

impl<F, G: WatermarkGenerator<T>, T: Data> AssignTimestamps<F, G, T> {
    /// Sends `watermark` if it advances event time (watermarks never go back).
    fn emit(&mut self, watermark: Timestamp) -> Result<()> {
        if watermark > self.emitted {
            self.emitted = watermark;
            if let Some(member) = &self.alignment {
                member.report(watermark);
            }
            self.out.watermark(watermark)?;
        }
        Ok(())
    }

    /// Sends a change of idleness, and publishes it where the strategy aligns.
    fn set_idle(&mut self, idle: bool) -> Result<()> {
        self.idle = idle;
        if let Some(member) = &self.alignment {
            member.set_idle(idle);
        }
        self.out.idle(idle)
    }

    fn emit_periodic(&mut self) -> Result<()> {
        self.last_emit = Instant::now();
        match self.strategy.generator.on_periodic_emit() {
            Some(watermark) => self.emit(watermark),
            None => Ok(()),
        }
    }

    /// Sends the batch on, each punctuated watermark right after the record that carried it.
    fn send_punctuated(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let mut sent = 0;
        for (end, watermark) in std::mem::take(&mut self.punctuations) {
            let rest = batch.split_off(end - sent);
            self.out.records(batch)?;
            *batch = rest;
            sent = end;
            self.emit(watermark)?;
        }
        self.out.records(batch)
    }

    /// Moves the records whose timestamp is a reserved marker out of `batch` to the
    /// dead-letter output, keeping each punctuated watermark after the record that carried it.
    #[cold]
    fn reject_reserved(&mut self, batch: &mut Vec<Record<T>>) {
        let mut kept = Vec::with_capacity(batch.len());
        let mut punctuations = self.punctuations.iter_mut().peekable();
        for (i, record) in batch.drain(..).enumerate() {
            while let Some(punctuation) = punctuations.next_if(|p| p.0 <= i) {
                punctuation.0 = kept.len();
            }
            match reserved(record.timestamp) {
                Some(reason) => {
                    let letter = DeadLetter { input: record.value, error: reason.to_string() };
                    self.out.side.emit(&self.dead_letter, letter, NO_TIMESTAMP);
                    self.dead_letters.add(1);
                    tracing::debug!(reason, "record sent to the dead-letter output");
                }
                None => kept.push(record),
            }
        }
        punctuations.for_each(|punctuation| punctuation.0 = kept.len());
        *batch = kept;
    }
}

impl<T, F, G> Output<T> for AssignTimestamps<F, G, T>
where
    T: Data,
    F: Fn(&T) -> Timestamp + Send,
    G: WatermarkGenerator<T>,
{
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let (timestamp_of, generator, punctuations) =
            (&self.timestamp_of, &mut self.strategy.generator, &mut self.punctuations);
        let mut rejected = false;
        self.info.guard(|| {
            for (i, record) in batch.iter_mut().enumerate() {
                record.timestamp = timestamp_of(&record.value);
                if reserved(record.timestamp).is_some() {
                    rejected = true;
                    continue;
                }
                if let Some(watermark) = generator.on_event(&record.value, record.timestamp) {
                    punctuations.push((i + 1, watermark));
                }
            }
        })?;
        if rejected {
            self.reject_reserved(batch);
        }
        self.last_record = Instant::now();
        if self.idle {
            self.set_idle(false)?;
        }
        if self.punctuations.is_empty() {
            self.out.records(batch)?;
        } else {
            self.send_punctuated(batch)?;
        }
        if self.last_emit.elapsed() >= self.strategy.interval {
            self.emit_periodic()?;
        }
        Ok(())
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        if watermark == MAX_WATERMARK && self.emitted < MAX_WATERMARK {
            self.emitted = MAX_WATERMARK;
            if let Some(member) = &self.alignment {
                member.finish();
            }
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
            self.emit_periodic()?;
        }
        if let Some(timeout) = self.strategy.idleness {
            if self.alignment.as_ref().is_some_and(AlignmentMember::is_paused) {
                // The source waits for alignment: no records is not idleness (the clock stops).
                self.last_record = Instant::now();
            }
            if !self.idle && self.last_record.elapsed() >= timeout {
                // Send the final watermark first: one sent after `idle` would mark us active.
                self.emit_periodic()?;
                self.set_idle(true)?;
            }
        }
        self.out.tick(now)
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.out.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        self.watermark(MAX_WATERMARK)?;
        self.out.finish()
    }
}
