//! A job graph planned for a distributed run: its sub-topologies and the repartition topics
//! between them, checked, named and described (Kafka Streams' `Topology#describe()`).
//!
//! [`JobGraph::sub_topologies`] only finds the pieces. A distributed plan also checks that
//! every piece can actually be cut apart, and refuses the job with an error that names the
//! edge and says what to do when it cannot:
//!
//! - every cut edge (`key_by`, `rebalance`, `shuffle`) must carry a
//!   [`Repartition`] mark: a stable name and a codec for its
//!   records. Its topic is `<application id>-<name>-repartition`; two edges may not share
//!   one. The key_by of a two-input operator (a join, connected streams, broadcast state)
//!   cannot be marked yet — cutting it needs both inputs in co-partitioned topics;
//! - a `Broadcast` edge is refused: Kafka Streams has no broadcast repartition, and a
//!   broadcast between processes needs a topic that every task reads whole (a
//!   `GlobalKTable`), which eddy does not build yet;
//! - a mark on an edge that is not cut (a `forward`) is refused: it would name a topic that
//!   never exists;
//! - every source must carry an [`InputTopic`](crate::topic::InputTopic) mark: a distributed
//!   job reads its input from Kafka topics, one task per partition, so a source that is not
//!   read from a topic (a collection, a file, a Kafka source of several topics or of a
//!   pattern) is refused, naming it and saying what to use (eddy-kafka's `from_kafka`).
//!
//! A sink may carry an [`OutputTopic`](crate::topic::OutputTopic) mark (eddy-kafka's
//! `sink_to_kafka` of one topic sets it): a task then writes the sink's records with its own
//! transactional producer, in the transaction that commits its input offsets. A sink without
//! one (`print`, `collect`, a callback, a file) is allowed and runs in every task, as Kafka
//! Streams runs a `foreach`: its output is not part of the task's transaction, so it is not
//! exactly-once across task moves.
//!
//! A sub-topology may read several topics (a union of repartitioned streams, of a source and
//! a repartitioned stream, or of two sources): its task for partition `p` reads partition `p`
//! of each, so they must have the same partition count (Kafka Streams' co-partitioning rule).
//! The plan cannot know partition counts; the cluster checks them at run time, where it
//! creates the repartition topics. Nothing here runs anything.
//!
//! ```text
//! application wc: 2 sub-topologies, 1 repartition topic
//! sub-topology 0
//!   Source: lines (topic lines)
//!     --> FlatMap
//!   FlatMap
//!     --> topic wc-words-repartition
//!     <-- Source: lines
//! sub-topology 1
//!   Count
//!     --> Sink: Kafka
//!     <-- topic wc-words-repartition
//!   Sink: Kafka (topic counts)
//!     <-- Count
//! repartition topics
//!   wc-words-repartition: FlatMap --HASH--> Count, from sub-topology 0 to 1
//! ```

use std::fmt::{self, Display};

use eddy_core::{Error, Result};

use crate::explain::strategy_name;
use crate::graph::{Edge, JobGraph, NodeId, ShipStrategy};
use crate::repartition::Repartition;
use crate::sub_topology::{is_cut, SubTopology};

/// The longest Kafka topic name.
const MAX_TOPIC_LENGTH: usize = 249;

/// A job graph cut into sub-topologies joined by repartition topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributedPlan {
    /// The application id that prefixes every topic.
    pub application_id: String,
    /// The sub-topologies, as [`JobGraph::sub_topologies`] numbers them.
    pub sub_topologies: Vec<SubTopology>,
    /// One topic per cut edge, in edge order.
    pub topics: Vec<RepartitionTopic>,
    /// The topics the sources read, in node order: one per source.
    pub input_topics: Vec<ExternalTopic>,
    /// The topics the marked sinks write, in node order.
    pub output_topics: Vec<ExternalTopic>,
    /// The operators' names, by node id.
    pub operators: Vec<String>,
    /// The graph's edges, by index.
    pub edges: Vec<Link>,
}

/// One edge of the graph, as a plan shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The producing operator.
    pub from: NodeId,
    /// The consuming operator.
    pub to: NodeId,
    /// The producer's side output it carries (`None`: its main output).
    pub side_output: Option<String>,
}

/// A topic a source reads or a sink writes: the job's input or output, outside its
/// repartition topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalTopic {
    /// The topic's name.
    pub topic: String,
    /// The source or sink.
    pub node: NodeId,
    /// The sub-topology it is in.
    pub sub_topology: usize,
}

/// The repartition topic of one cut edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepartitionTopic {
    /// `<application id>-<name>-repartition`.
    pub name: String,
    /// The cut edge (an index into `JobGraph::edges`).
    pub edge: usize,
    /// The operator that writes it.
    pub from: NodeId,
    /// The operator that reads it.
    pub to: NodeId,
    /// How records are spread over its partitions: `KeyGroups`, `Rebalance` or `Shuffle`.
    pub strategy: ShipStrategy,
    /// The sub-topology that writes it.
    pub writer: usize,
    /// The sub-topology that reads it.
    pub reader: usize,
    /// The type of its records.
    pub record_type: &'static str,
}

impl DistributedPlan {
    /// `graph` cut for the application `application_id`, or an error naming the first edge
    /// that cannot be cut, or the first source not read from a topic, and what to change.
    pub fn of(graph: &JobGraph, application_id: &str) -> Result<Self> {
        check_name("application id", application_id)?;
        let sub_topologies = graph.sub_topologies();
        let mut of = vec![0; graph.nodes.len()];
        for topology in &sub_topologies {
            for &node in &topology.nodes {
                of[node] = topology.id;
            }
        }
        let mut topics: Vec<RepartitionTopic> = Vec::new();
        for (index, edge) in graph.edges.iter().enumerate() {
            let Some(mark) = check_edge(graph, edge)? else { continue };
            let name = mark.topic(application_id);
            check_name(&format!("the repartition name of {}", describe(graph, edge)), &mark.name)?;
            if name.len() > MAX_TOPIC_LENGTH {
                return Err(Error::InvalidJob(format!(
                    "repartition topic '{name}' of {} is longer than Kafka's {MAX_TOPIC_LENGTH} characters; \
                     use a shorter name or application id",
                    describe(graph, edge)
                )));
            }
            if let Some(other) = topics.iter().find(|t| t.name == name) {
                return Err(Error::InvalidJob(format!(
                    "{} and {} are both marked '{}': each cut edge needs a repartition name of its own",
                    describe(graph, &graph.edges[other.edge]),
                    describe(graph, edge),
                    mark.name
                )));
            }
            topics.push(RepartitionTopic {
                name,
                edge: index,
                from: edge.from,
                to: edge.to,
                strategy: edge.strategy,
                writer: of[edge.from],
                reader: of[edge.to],
                record_type: mark.codec.record_type(),
            });
        }
        let (mut input_topics, mut output_topics) = (Vec::new(), Vec::new());
        for (id, node) in graph.nodes.iter().enumerate() {
            let external = |topic: &str| ExternalTopic { topic: topic.to_string(), node: id, sub_topology: of[id] };
            match &node.input_topic {
                Some(mark) => {
                    check_name(&format!("the input topic of '{}'", node.name), &mark.topic)?;
                    input_topics.push(external(&mark.topic));
                }
                None if !graph.edges.iter().any(|e| e.to == id) => return Err(unmarked_source(&node.name)),
                None => {}
            }
            if let Some(mark) = &node.output_topic {
                check_name(&format!("the output topic of '{}'", node.name), &mark.topic)?;
                output_topics.push(external(&mark.topic));
            }
        }
        let operators = graph.nodes.iter().map(|n| n.name.clone()).collect();
        let edges = graph.edges.iter().map(|e| Link { from: e.from, to: e.to, side_output: e.tag.clone() }).collect();
        Ok(DistributedPlan {
            application_id: application_id.to_string(),
            sub_topologies,
            topics,
            input_topics,
            output_topics,
            operators,
            edges,
        })
    }

    /// The topic of cut edge `edge`, if it is one.
    pub fn topic_of(&self, edge: usize) -> Option<&RepartitionTopic> {
        self.topics.iter().find(|t| t.edge == edge)
    }
}

/// The edge's repartition mark if it is cut; an error if it cannot run distributed.
fn check_edge<'g>(graph: &JobGraph, edge: &'g Edge) -> Result<Option<&'g Repartition>> {
    let what = describe(graph, edge);
    if edge.strategy == ShipStrategy::Broadcast {
        return Err(Error::InvalidJob(format!(
            "{what} cannot be cut: Kafka Streams has no broadcast repartition, and a broadcast between \
             processes needs a topic every task reads whole (a GlobalKTable), which eddy does not build yet; \
             run this job in one process"
        )));
    }
    match (&edge.repartition, is_cut(edge.strategy)) {
        (Some(mark), true) => Ok(Some(mark)),
        (None, false) => Ok(None),
        (Some(mark), false) => Err(Error::InvalidJob(format!(
            "{what} is marked for repartition '{}' but never leaves its task (subtask i feeds subtask i); \
             mark a key_by or a rebalance instead, or remove the forward()",
            mark.name
        ))),
        (None, true)
            if edge.strategy == ShipStrategy::KeyGroups
                && graph.edges.iter().filter(|e| e.to == edge.to).count() > 1 =>
        {
            Err(Error::InvalidJob(format!(
                "{what} is the key_by of an operator with two inputs (a join, connected streams or broadcast \
                 state), which cannot be cut yet: both inputs would need co-partitioned repartition topics; \
                 run this job in one process"
            )))
        }
        (None, true) if edge.strategy == ShipStrategy::KeyGroups => Err(Error::InvalidJob(format!(
            "{what} is not marked for distributed runs: call .repartitioned(Repartitioned::named(\"<name>\")) \
             on the key_by (records that are Serialize + DeserializeOwned), or \
             .repartitioned(Repartitioned::with_codec(\"<name>\", codec)), to name its repartition topic"
        ))),
        (None, _) => Err(Error::InvalidJob(format!(
            "{what} is not marked for distributed runs: call .repartition(Repartitioned::named(\"<name>\")) \
             (or Repartitioned::with_codec) in place of .rebalance() / .shuffle(), to name its repartition topic"
        ))),
    }
}

/// The refusal of a source that is not read from a topic.
fn unmarked_source(name: &str) -> Error {
    Error::InvalidJob(format!(
        "'{name}' is not read from a topic: a distributed job reads its input from Kafka topics, one task \
         per partition; add the source with eddy-kafka's env.from_kafka(source, strategy, name) (KafkaSourceExt), \
         with a KafkaSource of one topic (a source of several topics or of a pattern cannot be cut per \
         partition), or run this job in one process"
    ))
}

/// An edge as errors name it: `the key_by from 'a' to 'b'`, `the rebalance edge from …`.
fn describe(graph: &JobGraph, edge: &Edge) -> String {
    let (from, to) = (&graph.nodes[edge.from].name, &graph.nodes[edge.to].name);
    let side = edge.tag.as_ref().map(|t| format!(" (side output '{t}')")).unwrap_or_default();
    let kind = match edge.strategy {
        ShipStrategy::KeyGroups => "key_by".to_string(),
        s => format!("{} edge", strategy_name(s).to_lowercase()),
    };
    format!("the {kind} from '{from}'{side} to '{to}'")
}

/// Refuses a name that cannot be part of a Kafka topic name.
fn check_name(what: &str, name: &str) -> Result<()> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || !name.chars().all(legal) {
        return Err(Error::InvalidJob(format!(
            "{what} '{name}' cannot be part of a Kafka topic name: use letters, digits, '.', '_' and '-' \
             (at least one)"
        )));
    }
    Ok(())
}

/// `n thing` or `n things`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The plan as Kafka Streams' `Topology#describe()` lays it out: each sub-topology's
/// operators with what they feed (`-->`) and what feeds them (`<--`), inside the
/// sub-topology or through a topic, then the repartition topics.
impl Display for DistributedPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let topologies = count(self.sub_topologies.len(), "sub-topology", "sub-topologies");
        let topics = count(self.topics.len(), "repartition topic", "repartition topics");
        writeln!(f, "application {}: {topologies}, {topics}", self.application_id)?;
        for topology in &self.sub_topologies {
            writeln!(f, "sub-topology {}", topology.id)?;
            for &node in &topology.nodes {
                let marked = self.input_topics.iter().chain(&self.output_topics).find(|t| t.node == node);
                match marked {
                    Some(mark) => writeln!(f, "  {} (topic {})", self.operators[node], mark.topic)?,
                    None => writeln!(f, "  {}", self.operators[node])?,
                }
                self.links(f, topology, node)?;
            }
        }
        if !self.topics.is_empty() {
            writeln!(f, "repartition topics")?;
        }
        for topic in &self.topics {
            let (from, to) = (&self.operators[topic.from], &self.operators[topic.to]);
            let strategy = strategy_name(topic.strategy);
            let (writer, reader) = (topic.writer, topic.reader);
            writeln!(f, "  {}: {from} --{strategy}--> {to}, from sub-topology {writer} to {reader}", topic.name)?;
        }
        Ok(())
    }
}

impl DistributedPlan {
    /// The `-->` and `<--` lines of `node`: its edges inside `topology`, and its topics.
    fn links(&self, f: &mut fmt::Formatter<'_>, topology: &SubTopology, node: NodeId) -> fmt::Result {
        let side = |link: &Link| link.side_output.as_ref().map(|t| format!(" (side output '{t}')")).unwrap_or_default();
        for &edge in topology.edges.iter().chain(&topology.outputs) {
            let link = &self.edges[edge];
            match self.topic_of(edge) {
                _ if link.from != node => {}
                Some(topic) => writeln!(f, "    --> topic {}{}", topic.name, side(link))?,
                None => writeln!(f, "    --> {}{}", self.operators[link.to], side(link))?,
            }
        }
        for &edge in topology.edges.iter().chain(&topology.inputs) {
            let link = &self.edges[edge];
            match self.topic_of(edge) {
                _ if link.to != node => {}
                Some(topic) => writeln!(f, "    <-- topic {}", topic.name)?,
                None => writeln!(f, "    <-- {}{}", self.operators[link.from], side(link))?,
            }
        }
        Ok(())
    }
}
