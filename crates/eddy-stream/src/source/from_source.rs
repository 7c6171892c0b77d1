//! `from_source`: a stream from a [`SplitSource`] that generates its watermarks per split
//! (Flink's `env.fromSource(source, watermarkStrategy, name)`).

use std::any::TypeId;

use eddy_core::{SourceWatermarks, SplitSource, SplitWatermarkGenerator, Timestamp};

use crate::node::SourceNode;
use crate::watermark_strategy::{NoWatermarks, WatermarkGenerator, WatermarkStrategy};
use crate::{Data, DataStream, StreamEnvironment};

impl StreamEnvironment {
    /// A stream from a [`SplitSource`] (a Kafka topic, a Kinesis stream): each subtask runs
    /// one reader, and records carry the event time the reader gives them. `strategy` runs
    /// *inside* the source, one generator per split (partition, shard): the subtask's
    /// watermark is the minimum over its active splits, and with
    /// [`WatermarkStrategy::with_idleness`] a split without records stops holding it back.
    /// With [`WatermarkStrategy::with_watermark_alignment`] a subtask whose watermark runs too
    /// far ahead of its group stops reading, and a reader that implements
    /// [`SourceReader::pause_or_resume_splits`](eddy_core::SourceReader::pause_or_resume_splits)
    /// is told which splits to pause. Use [`WatermarkStrategy::no_watermarks`] to leave event
    /// time to a later `assign_timestamps_and_watermarks` (align there, then).
    ///
    /// Records the reader cannot deserialise, and those it collects with a marker (`i64::MIN`,
    /// `i64::MAX`) for a timestamp, come out of
    /// [`DataStream::dead_letters::<RawRecord>()`](DataStream::dead_letters); its per-split
    /// metrics are counters of the source operator (`<split>.records_in`, `.bytes_in`,
    /// `.lag_records`, `.lag_ms`). In a checkpointed job the source needs a `uid`.
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// use eddy_core::{ReaderContext, SourceOutput, SourceReader, SplitSource};
    ///
    /// /// Two splits of numbers; event time is the number itself.
    /// struct Numbers;
    /// struct NumbersReader { next: [i64; 2] }
    /// impl SplitSource<i64> for Numbers {
    ///     type Reader = NumbersReader;
    ///     fn open(&self, _: &ReaderContext) -> Result<NumbersReader, BoxError> {
    ///         Ok(NumbersReader { next: [0, 1] })
    ///     }
    /// }
    /// impl SourceReader<i64> for NumbersReader {
    ///     fn poll(&mut self, out: &mut SourceOutput<i64>, _max: usize) -> Result<SourcePoll, BoxError> {
    ///         let splits = [out.add_split("even"), out.add_split("odd")];
    ///         for (split, next) in splits.into_iter().zip(&mut self.next) {
    ///             while *next < 10 {
    ///                 out.collect_in(split, *next, *next);
    ///                 *next += 2;
    ///             }
    ///             out.finish_split(split);
    ///         }
    ///         Ok(SourcePoll::Done)
    ///     }
    ///     fn snapshot_splits(&mut self, _: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
    ///         Ok(None)
    ///     }
    /// }
    ///
    /// let env = StreamEnvironment::new();
    /// let numbers = env
    ///     .from_source(Numbers, WatermarkStrategy::monotonous(), "numbers")
    ///     .set_parallelism(1)
    ///     .process(|n: i64, ctx: &mut ProcessContext<'_, (i64, i64)>| ctx.collect((n, ctx.timestamp().unwrap())))
    ///     .collect();
    /// env.execute("numbers").unwrap().wait().unwrap();
    /// let mut got = numbers.take();
    /// got.sort();
    /// assert_eq!(got, (0..10).map(|n| (n, n)).collect::<Vec<_>>());
    /// ```
    pub fn from_source<T, S, G>(&self, source: S, strategy: WatermarkStrategy<G>, name: &str) -> DataStream<T>
    where
        T: Data,
        S: SplitSource<T>,
        G: WatermarkGenerator<T>,
    {
        self.add_source_node(name, false, SourceNode::new(source, strategy.per_split()))
    }
}

impl<G> WatermarkStrategy<G> {
    /// The strategy as a source runs it inside: one generator per split (partition, shard),
    /// the subtask's watermark the minimum over its splits; `None` for
    /// [`WatermarkStrategy::no_watermarks`]. [`StreamEnvironment::from_source`] runs it; a
    /// connector's reader of a distributed task (`eddy_runtime::topic`) runs the same.
    pub fn per_split<T>(&self) -> Option<SourceWatermarks<T>>
    where
        G: WatermarkGenerator<T>,
    {
        (TypeId::of::<G>() != TypeId::of::<NoWatermarks>()).then(|| {
            let generator = self.generator.clone();
            let watermarks = SourceWatermarks::new(
                move || Box::new(PerSplit(generator.clone())) as Box<dyn SplitWatermarkGenerator<T>>,
                self.interval,
                self.idleness,
            );
            match &self.alignment {
                Some(alignment) => watermarks.with_alignment(alignment.clone()),
                None => watermarks,
            }
        })
    }
}

/// A DataStream [`WatermarkGenerator`] as one split's generator.
struct PerSplit<G>(G);

impl<T, G: WatermarkGenerator<T>> SplitWatermarkGenerator<T> for PerSplit<G> {
    #[inline]
    fn on_event(&mut self, value: &T, timestamp: Timestamp) -> Option<Timestamp> {
        self.0.on_event(value, timestamp)
    }

    fn on_periodic_emit(&mut self) -> Option<Timestamp> {
        self.0.on_periodic_emit()
    }
}
