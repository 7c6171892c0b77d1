//! Building a partition task's nodes: each one subtask, consumers first, so that every
//! producer can be handed its consumers — an operator of its own task, a merge of several
//! inputs, or the writer of a cut edge's topic.

use std::cell::RefCell;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use eddy_core::{Error, OperatorInfo, Result};
use eddy_state::QueryRegistry;

use crate::build_context::BuildContext;
use crate::chain_alignment::ChainAlignment;
use crate::checkpoint::task::CheckpointHooks;
use crate::graph::{AnyOutput, JobGraph, NodeId, NodeInstance};
use crate::metrics::MetricRegistry;
use crate::partition_task::inputs::{CutInput, Reader};
use crate::partition_task::topic_writer::CutTopic;
use crate::partition_task::TaskSpec;
use crate::topic::Outbox;

/// What building the nodes of one task needs.
pub(super) struct Wiring<'s> {
    pub(super) spec: &'s TaskSpec<'s>,
    pub(super) hooks: &'s CheckpointHooks,
    pub(super) cancel: Arc<AtomicBool>,
    pub(super) queries: QueryRegistry,
    pub(super) alignment: ChainAlignment,
    pub(super) metrics: &'s MetricRegistry,
    pub(super) outbox: &'s Outbox,
    /// What the operators see as their attempt number.
    pub(super) attempt: usize,
}

/// The built task's entry points.
#[derive(Default)]
pub(super) struct Built {
    pub(super) readers: Vec<Reader>,
    pub(super) inputs: Vec<CutInput>,
}

/// Each node's inputs still to hand to their producers, by the input's index.
type Heads = Vec<Vec<Option<AnyOutput>>>;

impl Wiring<'_> {
    fn context(&self, node: NodeId) -> BuildContext<'_> {
        let spec = self.spec;
        BuildContext {
            info: OperatorInfo {
                name: spec.graph.nodes[node].name.clone(),
                subtask: spec.partition,
                parallelism: spec.partitions,
            },
            config: spec.config,
            metrics: self.metrics,
            cancel: &self.cancel,
            side_outputs: RefCell::new(Vec::new()),
            uid: spec.graph.nodes[node].uid.clone(),
            attempt: self.attempt,
            checkpoint: Some(self.hooks),
            queries: &self.queries,
            alignment: &self.alignment,
        }
    }

    /// Builds the sub-topology's nodes, consumers first.
    pub(super) fn build(&self) -> Result<Built> {
        let (graph, plan) = (self.spec.graph, self.spec.plan);
        let topology = &plan.sub_topologies[self.spec.sub_topology];
        check_nodes(graph, &topology.nodes)?;
        let mut heads: Heads = (0..graph.nodes.len()).map(|_| Vec::new()).collect();
        let mut built = Built::default();
        for &node in topology.nodes.iter().rev() {
            let ctx = self.context(node);
            let mut outputs = Vec::new();
            for (e, edge) in graph.edges.iter().enumerate().filter(|(_, e)| e.from == node) {
                let consumer = match plan.topic_of(e) {
                    Some(_) => edge.factory.topic_writer(&ctx, &self.cut_topic(e)?, edge.strategy)?,
                    None => self.take_head(&mut heads, e)?,
                };
                match &edge.tag {
                    None => outputs.push(consumer),
                    Some(tag) => {
                        ctx.side_outputs.borrow_mut().push((tag.clone(), edge.factory.side_channel(consumer)?))
                    }
                }
            }
            let n = &graph.nodes[node];
            let Some((_, first)) = inputs_of(graph, node).next() else {
                // A source: the task reads its topic (check_nodes made sure it has one).
                let topic = n.input_topic.as_ref().expect("checked");
                let reader = topic.reader.build(&ctx, outputs)?;
                built.readers.push(Reader { topic: topic.topic.clone(), reader, ended: false });
                continue;
            };
            let head = match &n.output_topic {
                Some(topic) => topic.writer.build(&ctx, topic.topic.as_str().into(), self.outbox.clone())?,
                None => match n.factory.build(&ctx, outputs)? {
                    NodeInstance::Operator(head) => head,
                    NodeInstance::Source(_) => {
                        return Err(Error::InvalidJob(format!(
                            "internal: '{}' has inputs but was built as a source",
                            n.name
                        )))
                    }
                },
            };
            let count = inputs_of(graph, node).count();
            heads[node] = match count {
                1 => vec![Some(head)],
                _ => first.factory.merge(head, count)?.into_iter().map(Some).collect(),
            };
            for &e in topology.inputs.iter().filter(|&&e| graph.edges[e].to == node) {
                let cut = self.cut_topic(e)?;
                let input = graph.edges[e].factory.topic_input(&ctx, &cut, self.take_head(&mut heads, e)?)?;
                built.inputs.push(CutInput::new(cut.topic.to_string(), input, self.spec.partitions));
            }
        }
        Ok(built)
    }

    /// The input of edge `edge`'s consumer that the edge feeds, built already (consumers
    /// come first).
    fn take_head(&self, heads: &mut Heads, edge: usize) -> Result<AnyOutput> {
        let graph = self.spec.graph;
        let to = graph.edges[edge].to;
        let index = inputs_of(graph, to).position(|(e, _)| e == edge).expect("an edge into its consumer");
        heads[to].get_mut(index).and_then(Option::take).ok_or_else(|| {
            Error::InvalidJob(format!("internal: input {index} of '{}' is not built", graph.nodes[to].name))
        })
    }

    /// The repartition topic of cut edge `edge`.
    fn cut_topic(&self, edge: usize) -> Result<CutTopic> {
        let (graph, plan) = (self.spec.graph, self.spec.plan);
        let topic =
            plan.topic_of(edge).ok_or_else(|| Error::InvalidJob(format!("internal: edge {edge} is not cut")))?;
        let repartition = graph.edges[edge].repartition.clone().ok_or_else(|| {
            Error::InvalidJob(format!(
                "repartition topic '{}' belongs to an edge without a mark: is the plan of this graph?",
                topic.name
            ))
        })?;
        Ok(CutTopic {
            topic: topic.name.as_str().into(),
            repartition,
            partitions: self.spec.partitions,
            outbox: self.outbox.clone(),
        })
    }
}

/// The edges into `node`, in graph order: its inputs, by index.
fn inputs_of(graph: &JobGraph, node: NodeId) -> impl Iterator<Item = (usize, &crate::graph::Edge)> {
    graph.edges.iter().enumerate().filter(move |(_, e)| e.to == node)
}

/// Refuses what a task cannot run: a source without an input topic (a distributed job reads
/// topics), a stateful operator without a uid (its state could not be restored).
fn check_nodes(graph: &JobGraph, nodes: &[NodeId]) -> Result<()> {
    for &node in nodes {
        let n = &graph.nodes[node];
        let is_source = !graph.edges.iter().any(|e| e.to == node);
        if is_source && n.input_topic.is_none() {
            return Err(Error::InvalidJob(format!(
                "source '{}' does not read a topic: a distributed job's tasks read their input from Kafka \
                 topics, one partition per task; use a Kafka source (or mark the source with \
                 read_from_topic), or run this job in one process",
                n.name
            )));
        }
        // A marked source or sink is replaced by its topic's reader or writer: its own state
        // (a source's splits, a sink's transactions) is the topic's offsets and transaction.
        let replaced = n.input_topic.is_some() || n.output_topic.is_some();
        if n.stateful && !replaced && n.uid.is_none() {
            return Err(Error::InvalidJob(format!(
                "operator '{}' keeps state but has no uid; a distributed task checkpoints its state and \
                 matches it to operators by uid, so give it a stable one with .uid(\"...\")",
                n.name
            )));
        }
    }
    Ok(())
}
