//! Typed node factories: where the API's closures become per-subtask operator instances.

use std::marker::PhantomData;

use eddy_core::{
    BoxError, Output, PlainReader, ReaderContext, Result, Source, SourceOutput, SourceWatermarks, SplitAssignment,
    SplitSource,
};
use eddy_runtime::fan_out::combine;
use eddy_runtime::graph::{erase, AnyOutput, BuildContext, NodeFactory, NodeInstance};
use eddy_runtime::metrics::names;
use eddy_runtime::source_dead_letters::WithDeadLetters;
use eddy_runtime::source_task::{SourceTask, SplitCounters, SPLITS};

use crate::dead_letter::DEAD_LETTER_TAG;

/// A one-input operator: `build` wraps the downstream output into the operator's input.
pub(crate) struct OperatorNode<In, Out, B> {
    build: B,
    _types: PhantomData<fn(In) -> Out>,
}

impl<In, Out, B> OperatorNode<In, Out, B> {
    pub(crate) fn new(build: B) -> Self {
        OperatorNode { build, _types: PhantomData }
    }
}

impl<In, Out, B> NodeFactory for OperatorNode<In, Out, B>
where
    In: 'static,
    Out: Clone + Send + 'static,
    B: Fn(&BuildContext, Box<dyn Output<Out>>) -> Result<Box<dyn Output<In>>> + Send + Sync,
{
    fn build(&self, ctx: &BuildContext, outputs: Vec<AnyOutput>) -> Result<NodeInstance> {
        let output = combine::<Out>(outputs)?;
        Ok(NodeInstance::Operator(erase::<In>((self.build)(ctx, output)?)))
    }
}

/// Opens a source from the splits a checkpoint recorded (this subtask's share of them).
pub(crate) type Restore<S> = Box<dyn Fn(Vec<Vec<u8>>) -> Result<S, BoxError> + Send + Sync>;

/// A [`SplitSource`] made of the closures `add_source` and `add_replayable_source` take:
/// `create(subtask, parallelism)` makes each subtask's source; `restore`, for a replayable
/// source, reopens one at the position a checkpoint recorded.
pub(crate) struct FnSource<S, C> {
    create: C,
    restore: Option<Restore<S>>,
}

impl<S, C> FnSource<S, C> {
    pub(crate) fn new(create: C, restore: Option<Restore<S>>) -> Self {
        FnSource { create, restore }
    }
}

impl<T, S, C> SplitSource<T> for FnSource<S, C>
where
    S: Source<T> + 'static,
    C: Fn(usize, usize) -> Result<S, BoxError> + Send + Sync + 'static,
{
    type Reader = PlainReader<S>;

    fn open(&self, context: &ReaderContext) -> Result<PlainReader<S>, BoxError> {
        let source = match (&self.restore, &context.restored) {
            (Some(restore), Some(splits)) => restore(splits.clone())?,
            _ => (self.create)(context.subtask, context.parallelism)?,
        };
        Ok(PlainReader(source))
    }
}

/// A source node: opens each subtask's reader of `source` (at its recorded splits when the
/// job restores state for it) and runs it; with `watermarks`, the reader's splits generate
/// the watermarks.
pub(crate) struct SourceNode<T, F> {
    source: F,
    watermarks: Option<SourceWatermarks<T>>,
    _types: PhantomData<fn() -> T>,
}

impl<T, F> SourceNode<T, F> {
    pub(crate) fn new(source: F, watermarks: Option<SourceWatermarks<T>>) -> Self {
        SourceNode { source, watermarks, _types: PhantomData }
    }
}

impl<T, F: SplitSource<T>> SourceNode<T, F> {
    /// A fresh reader, or one at its recorded splits when the job restores state for it.
    fn open(&self, ctx: &BuildContext) -> Result<F::Reader> {
        let info = &ctx.info;
        let restored = match ctx.state().filter(|s| s.has_restored_state()) {
            Some(state) => Some(match self.source.split_assignment() {
                SplitAssignment::RoundRobin => state.restored_list(SPLITS)?,
                SplitAssignment::Owned => state.restored_list_all(SPLITS)?,
            }),
            None => None,
        };
        let context =
            ReaderContext::new(info.subtask, info.parallelism).with_max_line_length(ctx.config.max_line_length);
        let context = match restored {
            Some(splits) => context.restoring(splits),
            None => context,
        };
        info.guard(|| self.source.open(&context))?.map_err(|e| info.error(format!("cannot open source: {e}")))
    }
}

impl<T, F> NodeFactory for SourceNode<T, F>
where
    T: Clone + Send + 'static,
    F: SplitSource<T>,
{
    fn build(&self, ctx: &BuildContext, outputs: Vec<AnyOutput>) -> Result<NodeInstance> {
        let info = &ctx.info;
        let reader = self.open(ctx)?;
        let control = ctx.source_control();
        let dead_letters = ctx.take_side_outputs().into_iter().filter(|(tag, _)| tag == DEAD_LETTER_TAG);
        let output = WithDeadLetters::new(combine::<T>(outputs)?, dead_letters.map(|(_, c)| c).collect());
        // The source aligns on its own watermarks when its strategy says so, else on those of
        // an assigner in its chain that joined a group.
        if let Some(alignment) = self.watermarks.as_ref().and_then(|w| w.alignment.as_ref()) {
            ctx.join_alignment(alignment)?;
        }
        let alignment = ctx.take_alignment();
        let task = SourceTask::new(
            reader,
            output,
            SourceOutput::new(self.watermarks.clone()),
            info.clone(),
            ctx.config.batch_size,
            ctx.counter(names::RECORDS_IN),
        )
        .with_metrics(SplitCounters::new(ctx.metrics.clone(), info))
        .with_alignment(alignment, ctx.metrics)
        .with_control(control)?;
        Ok(NodeInstance::Source(Box::new(task)))
    }
}

/// Implements the four control methods of [`Output`] by passing them to `self.out`.
macro_rules! forward_control {
    () => {
        fn watermark(&mut self, watermark: eddy_core::Timestamp) -> eddy_core::Result<()> {
            self.out.watermark(watermark)
        }
        fn idle(&mut self, idle: bool) -> eddy_core::Result<()> {
            self.out.idle(idle)
        }
        fn tick(&mut self, now: eddy_core::Timestamp) -> eddy_core::Result<()> {
            self.out.tick(now)
        }
        fn barrier(&mut self, barrier: eddy_core::Barrier) -> eddy_core::Result<()> {
            self.out.barrier(barrier)
        }
        fn finish(&mut self) -> eddy_core::Result<()> {
            self.out.finish()
        }
    };
}
pub(crate) use forward_control;
