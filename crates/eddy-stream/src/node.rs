//! Typed node factories: where the API's closures become per-subtask operator instances.

use std::marker::PhantomData;

use eddy_core::{Output, Result, Source};
use eddy_runtime::fan_out::combine;
use eddy_runtime::graph::{erase, AnyOutput, BuildContext, NodeFactory, NodeInstance};
use eddy_runtime::metrics::names;
use eddy_runtime::source_task::SourceTask;

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

/// A source node: `create(subtask, parallelism)` makes each subtask's source.
pub(crate) struct SourceNode<T, C> {
    create: C,
    _types: PhantomData<fn() -> T>,
}

impl<T, C> SourceNode<T, C> {
    pub(crate) fn new(create: C) -> Self {
        SourceNode { create, _types: PhantomData }
    }
}

impl<T, S, C> NodeFactory for SourceNode<T, C>
where
    T: Clone + Send + 'static,
    S: Source<T> + 'static,
    C: Fn(usize, usize) -> Result<S, eddy_core::BoxError> + Send + Sync,
{
    fn build(&self, ctx: &BuildContext, outputs: Vec<AnyOutput>) -> Result<NodeInstance> {
        let info = &ctx.info;
        let source = info
            .guard(|| (self.create)(info.subtask, info.parallelism))?
            .map_err(|e| info.error(format!("cannot open source: {e}")))?;
        let task = SourceTask::new(
            source,
            combine::<T>(outputs)?,
            info.clone(),
            ctx.config.batch_size,
            ctx.counter(names::RECORDS_IN),
        );
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
        fn finish(&mut self) -> eddy_core::Result<()> {
            self.out.finish()
        }
    };
}
pub(crate) use forward_control;
