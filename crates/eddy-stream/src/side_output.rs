//! Side outputs: an operator's extra, typed output streams, named by an [`OutputTag`]
//! (Flink's `OutputTag` and `getSideOutput`). Late window data and dead letters use them.

use std::marker::PhantomData;

use eddy_core::{Barrier, Output, Record, Result, Timestamp};
use eddy_runtime::graph::BuildContext;
use eddy_runtime::side_channel::{SideChannel, TypedSideChannel};

use crate::{Data, DataStream};

/// Names a side output whose records are `T`.
///
/// ```
/// use eddy_stream::prelude::*;
/// let env = StreamEnvironment::new();
/// env.set_parallelism(1);
/// let odd = OutputTag::<i32>::new("odd");
/// let tag = odd.clone();
/// let even = env.from_iter(1..=5).process(move |x: i32, ctx: &mut ProcessContext<'_, i32>| {
///     if x % 2 == 0 { ctx.collect(x) } else { ctx.output(&tag, x) }
/// });
/// let odds = even.side_output(&odd).collect();
/// let evens = even.collect();
/// env.execute("split").unwrap().wait().unwrap();
/// assert_eq!((evens.take(), odds.take()), (vec![2, 4], vec![1, 3, 5]));
/// ```
pub struct OutputTag<T> {
    id: String,
    _records: PhantomData<fn() -> T>,
}

impl<T> Clone for OutputTag<T> {
    fn clone(&self) -> Self {
        OutputTag { id: self.id.clone(), _records: PhantomData }
    }
}

impl<T> std::fmt::Debug for OutputTag<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OutputTag({})", self.id)
    }
}

impl<T> OutputTag<T> {
    /// A tag named `id`; an operator's side outputs need distinct names.
    pub fn new(id: impl Into<String>) -> Self {
        OutputTag { id: id.into(), _records: PhantomData }
    }

    /// The tag's name.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl<T: Data> DataStream<T> {
    /// The records this operator emitted to the side output `tag`.
    pub fn side_output<U: Data>(&self, tag: &OutputTag<U>) -> DataStream<U> {
        DataStream::tagged(self.env.clone(), self.node, tag.id.clone())
    }
}

/// The side outputs of one operator subtask. Operators buffer side records while they
/// process a batch, `flush` after it, and pass every time signal on.
pub(crate) struct SideOutputs {
    channels: Vec<(String, Box<dyn SideChannel>)>,
}

impl SideOutputs {
    /// Every side output of this subtask that has consumers (records sent to any other tag
    /// are dropped: nobody reads them).
    pub(crate) fn take(ctx: &BuildContext) -> Self {
        SideOutputs { channels: ctx.take_side_outputs() }
    }

    /// Buffers `value` for every consumer of the side output `tag`.
    pub(crate) fn emit<T: Clone + Send + 'static>(&mut self, tag: &OutputTag<T>, value: T, timestamp: Timestamp) {
        let mut consumers = self
            .channels
            .iter_mut()
            .filter(|(id, _)| *id == tag.id)
            .filter_map(|(_, channel)| channel.as_any().downcast_mut::<TypedSideChannel<T>>())
            .peekable();
        while let Some(channel) = consumers.next() {
            if consumers.peek().is_none() {
                channel.buffer.push(Record::new(value, timestamp));
                return;
            }
            channel.buffer.push(Record::new(value.clone(), timestamp));
        }
    }

    /// Sends buffered side records on.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.channels.iter_mut().try_for_each(|(_, c)| c.flush())
    }

    /// Passes a watermark to every side output.
    pub(crate) fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.channels.iter_mut().try_for_each(|(_, c)| c.watermark(watermark))
    }

    /// Passes an idle status to every side output.
    pub(crate) fn idle(&mut self, idle: bool) -> Result<()> {
        self.channels.iter_mut().try_for_each(|(_, c)| c.idle(idle))
    }

    /// Passes processing time to every side output.
    pub(crate) fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.channels.iter_mut().try_for_each(|(_, c)| c.tick(now))
    }

    /// Passes a barrier to every side output.
    pub(crate) fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.channels.iter_mut().try_for_each(|(_, c)| c.barrier(barrier))
    }

    /// Ends every side output.
    pub(crate) fn finish(&mut self) -> Result<()> {
        self.channels.iter_mut().try_for_each(|(_, c)| c.finish())
    }
}

/// An operator's main output together with its side outputs: side records buffered during a
/// batch go out with it, and every time signal reaches both.
pub(crate) struct WithSide<O> {
    pub(crate) main: Box<dyn Output<O>>,
    pub(crate) side: SideOutputs,
}

impl<O> WithSide<O> {
    /// `main`, plus every side output of this subtask that has consumers.
    pub(crate) fn new(ctx: &BuildContext, main: Box<dyn Output<O>>) -> Self {
        WithSide { main, side: SideOutputs::take(ctx) }
    }
}

impl<O: Send> Output<O> for WithSide<O> {
    fn records(&mut self, batch: &mut Vec<Record<O>>) -> Result<()> {
        self.side.flush()?;
        self.main.records(batch)
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.side.watermark(watermark)?;
        self.main.watermark(watermark)
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.side.idle(idle)?;
        self.main.idle(idle)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.side.tick(now)?;
        self.main.tick(now)
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.side.barrier(barrier)?;
        self.main.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        self.side.finish()?;
        self.main.finish()
    }
}
