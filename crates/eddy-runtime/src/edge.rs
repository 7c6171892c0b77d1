//! Typed edges: the channel, writer and gate for one record type and partitioning.

use std::marker::PhantomData;

use crossbeam_channel::{bounded, Receiver};
use eddy_core::{Error, Output, Result};
use serde::Serialize;

use crate::build_context::BuildContext;
use crate::channel::{BroadcastWriter, ChannelSender, ChannelWriter, Envelope, WriterSetup};
use crate::gate::InputGate;
use crate::graph::{erase, unerase, AnyEnd, AnyOutput, EdgeFactory, ShipStrategy};
use crate::metrics::names;
use crate::observed::{Observed, Observers};
use crate::partition_task::{merge, topic_input, topic_writer, CutTopic, TopicInput};
use crate::partitioner::{Forward, KeyGroups, Partitioner, Rebalance, Shuffle};
use crate::side_channel::{SideChannel, TypedSideChannel};
use crate::task::Task;

/// An edge that routes without looking at keys: forward, rebalance, shuffle or broadcast.
pub struct PlainEdge<T>(PhantomData<fn(T)>);

impl<T> Default for PlainEdge<T> {
    fn default() -> Self {
        PlainEdge(PhantomData)
    }
}

/// An edge that routes by the key that `F` extracts (`key_by`).
pub struct KeyedEdge<T, F> {
    key_of: F,
    _records: PhantomData<fn(T)>,
}

impl<T, F> KeyedEdge<T, F> {
    /// An edge partitioned by `key_of`.
    pub fn new(key_of: F) -> Self {
        KeyedEdge { key_of, _records: PhantomData }
    }
}

fn typed_senders<T: 'static>(senders: &[&AnyEnd]) -> Result<Vec<ChannelSender<T>>> {
    senders
        .iter()
        .map(|s| s.downcast_ref::<ChannelSender<T>>().cloned())
        .collect::<Option<_>>()
        .ok_or_else(|| Error::InvalidJob("internal: channel of another record type".into()))
}

fn writer<T: Send + 'static, P: Partitioner<T>>(
    ctx: &BuildContext,
    senders: &[&AnyEnd],
    input_index: usize,
    partitioner: P,
) -> Result<AnyOutput> {
    let writer = ChannelWriter::new(typed_senders::<T>(senders)?, partitioner, setup(ctx, input_index));
    Ok(erase::<T>(Box::new(writer)))
}

fn setup(ctx: &BuildContext, input_index: usize) -> WriterSetup {
    WriterSetup {
        input_index,
        batch_size: ctx.config.batch_size,
        cancel: ctx.cancel.clone(),
        records_out: ctx.counter(names::RECORDS_OUT),
        info: ctx.info.clone(),
    }
}

fn channel<T: Send + 'static>(capacity: usize) -> (AnyEnd, AnyEnd) {
    let (sender, receiver) = bounded::<Envelope<T>>(capacity);
    (Box::new(sender), Box::new(receiver))
}

fn side_channel<T: Send + 'static>(consumer: AnyOutput) -> Result<Box<dyn SideChannel>> {
    Ok(Box::new(TypedSideChannel::new(unerase::<T>(consumer)?)))
}

fn observe<T: Send + 'static>(output: AnyOutput, observers: Observers) -> Result<AnyOutput> {
    Ok(erase::<T>(Box::new(Observed::new(unerase::<T>(output)?, observers))))
}

fn gate<T: Send + 'static>(
    ctx: &BuildContext,
    receiver: AnyEnd,
    inputs: usize,
    head: AnyOutput,
) -> Result<Box<dyn Task>> {
    let receiver = receiver
        .downcast::<Receiver<Envelope<T>>>()
        .map_err(|_| Error::InvalidJob("internal: channel of another record type".into()))?;
    let head: Box<dyn Output<T>> = unerase(head)?;
    let gate = InputGate::new(*receiver, inputs, head, ctx.counter(names::RECORDS_IN));
    Ok(Box::new(gate.with_checkpointing(ctx.task_checkpointing())))
}

impl<T: Clone + Send + 'static> EdgeFactory for PlainEdge<T> {
    fn channel(&self, capacity: usize) -> (AnyEnd, AnyEnd) {
        channel::<T>(capacity)
    }

    fn writer(
        &self,
        ctx: &BuildContext,
        senders: &[&AnyEnd],
        input_index: usize,
        strategy: ShipStrategy,
    ) -> Result<AnyOutput> {
        let subtask = ctx.info.subtask;
        match strategy {
            ShipStrategy::Rebalance => writer::<T, _>(ctx, senders, input_index, Rebalance::starting_at(subtask)),
            ShipStrategy::Shuffle => writer::<T, _>(ctx, senders, input_index, Shuffle::seeded(subtask as u64)),
            ShipStrategy::Broadcast => {
                let writer = BroadcastWriter::new(typed_senders::<T>(senders)?, setup(ctx, input_index));
                Ok(erase::<T>(Box::new(writer)))
            }
            _ => writer::<T, _>(ctx, senders, input_index, Forward),
        }
    }

    fn side_channel(&self, consumer: AnyOutput) -> Result<Box<dyn SideChannel>> {
        side_channel::<T>(consumer)
    }

    fn observe(&self, output: AnyOutput, observers: Observers) -> Result<AnyOutput> {
        observe::<T>(output, observers)
    }

    fn gate(&self, ctx: &BuildContext, receiver: AnyEnd, inputs: usize, head: AnyOutput) -> Result<Box<dyn Task>> {
        gate::<T>(ctx, receiver, inputs, head)
    }

    fn topic_writer(&self, ctx: &BuildContext, topic: &CutTopic, strategy: ShipStrategy) -> Result<AnyOutput> {
        let subtask = ctx.info.subtask;
        match strategy {
            ShipStrategy::Rebalance => topic_writer::<T, _>(ctx.info.clone(), topic, Rebalance::starting_at(subtask)),
            ShipStrategy::Shuffle => topic_writer::<T, _>(ctx.info.clone(), topic, Shuffle::seeded(subtask as u64)),
            other => Err(Error::InvalidJob(format!(
                "internal: a {other:?} edge does not write repartition topic '{}'",
                topic.topic
            ))),
        }
    }

    fn topic_input(&self, ctx: &BuildContext, topic: &CutTopic, consumer: AnyOutput) -> Result<Box<dyn TopicInput>> {
        topic_input::<T>(ctx.info.clone(), topic, consumer)
    }

    fn merge(&self, head: AnyOutput, inputs: usize) -> Result<Vec<AnyOutput>> {
        merge::<T>(head, inputs)
    }
}

impl<T, K, F> EdgeFactory for KeyedEdge<T, F>
where
    T: Send + 'static,
    K: Serialize,
    F: Fn(&T) -> K + Clone + Send + Sync + 'static,
{
    fn channel(&self, capacity: usize) -> (AnyEnd, AnyEnd) {
        channel::<T>(capacity)
    }

    fn writer(
        &self,
        ctx: &BuildContext,
        senders: &[&AnyEnd],
        input_index: usize,
        _: ShipStrategy,
    ) -> Result<AnyOutput> {
        let partitioner = KeyGroups::new(self.key_of.clone(), ctx.config.max_parallelism);
        writer::<T, _>(ctx, senders, input_index, partitioner)
    }

    fn side_channel(&self, consumer: AnyOutput) -> Result<Box<dyn SideChannel>> {
        side_channel::<T>(consumer)
    }

    fn observe(&self, output: AnyOutput, observers: Observers) -> Result<AnyOutput> {
        observe::<T>(output, observers)
    }

    fn gate(&self, ctx: &BuildContext, receiver: AnyEnd, inputs: usize, head: AnyOutput) -> Result<Box<dyn Task>> {
        gate::<T>(ctx, receiver, inputs, head)
    }

    fn topic_writer(&self, ctx: &BuildContext, topic: &CutTopic, _: ShipStrategy) -> Result<AnyOutput> {
        let partitioner = KeyGroups::new(self.key_of.clone(), ctx.config.max_parallelism);
        topic_writer::<T, _>(ctx.info.clone(), topic, partitioner)
    }

    fn topic_input(&self, ctx: &BuildContext, topic: &CutTopic, consumer: AnyOutput) -> Result<Box<dyn TopicInput>> {
        topic_input::<T>(ctx.info.clone(), topic, consumer)
    }

    fn merge(&self, head: AnyOutput, inputs: usize) -> Result<Vec<AnyOutput>> {
        merge::<T>(head, inputs)
    }
}
