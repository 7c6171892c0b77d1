//! Typed node factories: where the API's closures become per-subtask operator instances.

use std::marker::PhantomData;

use eddy_core::{BoxError, Output, Result, Source};
use eddy_runtime::fan_out::combine;
use eddy_runtime::graph::{erase, AnyOutput, BuildContext, NodeFactory, NodeInstance};
use eddy_runtime::metrics::names;
use eddy_runtime::source_task::{SourceControl, SourceTask, SPLITS};

use crate::source::rejects::{Rejects, WithRejects};

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

/// Gives a text source the queue its dead letters go through and the job's line limit.
pub(crate) type Attach<S> = fn(&mut S, Rejects, usize);

/// A source node: `create(subtask, parallelism)` makes each subtask's source; `restore`, for
/// a replayable source, reopens one at the position a checkpoint recorded; `attach`, for a
/// source that rejects input, wires its dead letters to the node's dead-letter output.
pub(crate) struct SourceNode<T, S, C> {
    create: C,
    restore: Option<Restore<S>>,
    attach: Option<Attach<S>>,
    _types: PhantomData<fn() -> T>,
}

impl<T, S, C> SourceNode<T, S, C> {
    pub(crate) fn new(create: C, restore: Option<Restore<S>>) -> Self {
        SourceNode { create, restore, attach: None, _types: PhantomData }
    }

    /// A source that sends the input it rejects to its dead-letter output.
    pub(crate) fn rejecting(self, attach: Attach<S>) -> Self {
        SourceNode { attach: Some(attach), ..self }
    }
}

impl<T, S, C> SourceNode<T, S, C>
where
    S: Source<T> + 'static,
    C: Fn(usize, usize) -> Result<S, BoxError> + Send + Sync,
{
    /// A fresh source, or one at its recorded position when the job restores state for it.
    fn open(&self, ctx: &BuildContext) -> Result<S> {
        let info = &ctx.info;
        let state = ctx.state().filter(|s| s.has_restored_state());
        let opened = match (&self.restore, state) {
            (Some(restore), Some(state)) => {
                let splits = state.restored_list(SPLITS)?;
                info.guard(|| restore(splits))?
            }
            _ => info.guard(|| (self.create)(info.subtask, info.parallelism))?,
        };
        opened.map_err(|e| info.error(format!("cannot open source: {e}")))
    }
}

impl<T, S, C> NodeFactory for SourceNode<T, S, C>
where
    T: Clone + Send + 'static,
    S: Source<T> + 'static,
    C: Fn(usize, usize) -> Result<S, BoxError> + Send + Sync,
{
    fn build(&self, ctx: &BuildContext, outputs: Vec<AnyOutput>) -> Result<NodeInstance> {
        let info = &ctx.info;
        let mut source = self.open(ctx)?;
        let mut output = combine::<T>(outputs)?;
        if let Some(attach) = self.attach {
            let rejects = Rejects::queue();
            attach(&mut source, rejects.clone(), ctx.config.max_line_length);
            output = Box::new(WithRejects::new(ctx, output, rejects));
        }
        let control = match (ctx.source_commands(), ctx.task_checkpointing()) {
            (Some(commands), Some(task)) => Some(SourceControl { commands, task, state: ctx.state() }),
            _ => None,
        };
        let task = SourceTask::new(source, output, info.clone(), ctx.config.batch_size, ctx.counter(names::RECORDS_IN))
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
