//! `JobGraph::sub_topologies` and `DistributedPlan`: for random graphs, the pieces are the
//! connected components of the uncut edges (found here by a breadth-first search of its own),
//! and every edge is inside one piece or is a cut edge with a topic; every source reads a
//! topic, and the plan says which and where.

use std::collections::VecDeque;
use std::sync::Arc;

use eddy_core::{BoxError, Error, Result};
use eddy_runtime::codec::{Codec, RecordCodec};
use eddy_runtime::distributed_plan::DistributedPlan;
use eddy_runtime::edge::PlainEdge;
use eddy_runtime::graph::{AnyOutput, BuildContext, Edge, JobGraph, Node, NodeFactory, NodeInstance, ShipStrategy};
use eddy_runtime::repartition::Repartition;
use eddy_runtime::topic::{InputTopic, Outbox, OutputTopic, TopicReader, TopicReaderFactory, TopicWriterFactory};
use proptest::prelude::*;

/// The model's own rule: these strategies are cut, every other one is kept inside.
fn is_cut(strategy: ShipStrategy) -> bool {
    matches!(strategy, ShipStrategy::KeyGroups | ShipStrategy::Rebalance | ShipStrategy::Shuffle)
}

/// A node nothing here builds: these tests only plan.
struct Unbuilt;

impl NodeFactory for Unbuilt {
    fn build(&self, _: &BuildContext, _: Vec<AnyOutput>) -> Result<NodeInstance> {
        Err(Error::InvalidJob("a planning test's node is never built".into()))
    }
}

/// A topic nothing here reads or writes: these tests only plan.
struct Untouched;

impl TopicReaderFactory for Untouched {
    fn build(&self, _: &BuildContext, _: Vec<AnyOutput>) -> Result<Box<dyn TopicReader>> {
        Err(Error::InvalidJob("a planning test's topic is never read".into()))
    }
}

impl TopicWriterFactory for Untouched {
    fn build(&self, _: &BuildContext, _: Arc<str>, _: Outbox) -> Result<AnyOutput> {
        Err(Error::InvalidJob("a planning test's topic is never written".into()))
    }
}

fn input(topic: &str) -> Option<InputTopic> {
    Some(InputTopic { topic: topic.into(), reader: Arc::new(Untouched) })
}

fn output(topic: &str) -> Option<OutputTopic> {
    Some(OutputTopic { topic: topic.into(), writer: Arc::new(Untouched) })
}

/// Numbers as 8 bytes.
struct Le;

impl Codec<u64> for Le {
    fn encode(&self, value: &u64, out: &mut Vec<u8>) -> std::result::Result<(), BoxError> {
        out.extend_from_slice(&value.to_le_bytes());
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> std::result::Result<u64, BoxError> {
        Ok(u64::from_le_bytes(bytes.try_into()?))
    }
}

fn node(name: &str) -> Node {
    Node::new(name, Arc::new(Unbuilt))
}

fn edge(from: usize, to: usize, strategy: ShipStrategy, mark: Option<&str>) -> Edge {
    Edge {
        from,
        to,
        strategy,
        factory: Arc::new(PlainEdge::<u64>::default()),
        tag: None,
        repartition: mark.map(|name| Repartition::new(name, RecordCodec::new(Arc::new(Le)))),
    }
}

/// A graph of `nodes` nodes named `n0`, `n1`, … and `edges` (from < to), each cut edge
/// marked `e<index>` and each source reading topic `in<node>` when `marked`.
fn graph(nodes: usize, edges: &[(usize, usize, ShipStrategy)], marked: bool) -> JobGraph {
    let mut graph = JobGraph::default();
    for n in 0..nodes {
        let source = !edges.iter().any(|e| e.1 == n);
        graph.add_node(Node {
            input_topic: if marked && source { input(&format!("in{n}")) } else { None },
            ..node(&format!("n{n}"))
        });
    }
    for (i, &(from, to, strategy)) in edges.iter().enumerate() {
        let mark = (marked && is_cut(strategy)).then(|| format!("e{i}"));
        graph.add_edge(edge(from, to, strategy, mark.as_deref()));
    }
    graph
}

/// The model: each node's component over the uncut edges, numbered by first node, by BFS.
fn components(nodes: usize, edges: &[(usize, usize, ShipStrategy)]) -> Vec<usize> {
    let mut component = vec![usize::MAX; nodes];
    let mut next = 0;
    for start in 0..nodes {
        if component[start] != usize::MAX {
            continue;
        }
        let mut queue = VecDeque::from([start]);
        component[start] = next;
        while let Some(n) = queue.pop_front() {
            for &(a, b, _) in edges.iter().filter(|e| !is_cut(e.2)) {
                for (x, y) in [(a, b), (b, a)] {
                    if x == n && component[y] == usize::MAX {
                        component[y] = next;
                        queue.push_back(y);
                    }
                }
            }
        }
        next += 1;
    }
    component
}

fn strategies() -> impl Strategy<Value = ShipStrategy> {
    prop_oneof![
        Just(ShipStrategy::Default),
        Just(ShipStrategy::Forward),
        Just(ShipStrategy::KeyGroups),
        Just(ShipStrategy::Rebalance),
        Just(ShipStrategy::Shuffle),
        Just(ShipStrategy::Broadcast),
    ]
}

/// A random DAG: up to 10 nodes, edges from a lower to a higher id (as the API builds them).
fn graphs() -> impl Strategy<Value = (usize, Vec<(usize, usize, ShipStrategy)>)> {
    (1usize..10).prop_flat_map(|nodes| {
        let edge = (0..nodes, 1..nodes.max(2), strategies()).prop_map(move |(from, step, strategy)| {
            // `to` is above `from`; one node has no edges.
            (from, (from + step).min(nodes - 1), strategy)
        });
        let edges = proptest::collection::vec(edge, 0..16);
        (Just(nodes), edges.prop_map(|e| e.into_iter().filter(|(from, to, _)| from < to).collect()))
    })
}

proptest! {
    #[test]
    fn sub_topologies_are_the_components_of_the_uncut_edges((nodes, edges) in graphs()) {
        let g = graph(nodes, &edges, false);
        let topologies = g.sub_topologies();
        let model = components(nodes, &edges);

        // They partition the nodes, exactly as the model's components do, numbered alike.
        let mut of = vec![None; nodes];
        for (id, t) in topologies.iter().enumerate() {
            prop_assert_eq!(t.id, id);
            prop_assert!(!t.nodes.is_empty());
            for &n in &t.nodes {
                prop_assert!(of[n].is_none(), "node {} in two sub-topologies", n);
                of[n] = Some(id);
            }
        }
        let of: Vec<usize> = of.into_iter().map(|o| o.expect("every node in one")).collect();
        prop_assert_eq!(&of, &model);

        // Every edge is exactly once either inside one sub-topology or a cut edge, and the
        // cut edges are what leaves one and enters one.
        let mut seen = vec![0; edges.len()];
        for t in &topologies {
            for &e in &t.edges {
                seen[e] += 1;
                let (from, to, strategy) = edges[e];
                prop_assert!(!is_cut(strategy));
                prop_assert_eq!((of[from], of[to]), (t.id, t.id), "an uncut edge crosses");
            }
            for &e in &t.outputs {
                prop_assert!(is_cut(edges[e].2));
                prop_assert_eq!(of[edges[e].0], t.id);
            }
            for &e in &t.inputs {
                prop_assert!(is_cut(edges[e].2));
                prop_assert_eq!(of[edges[e].1], t.id);
            }
        }
        for (e, &(from, to, strategy)) in edges.iter().enumerate() {
            if is_cut(strategy) {
                let writers = topologies.iter().filter(|t| t.outputs.contains(&e)).count();
                let readers = topologies.iter().filter(|t| t.inputs.contains(&e)).count();
                prop_assert_eq!((writers, readers), (1, 1), "cut edge {} written or read twice", e);
                prop_assert!(topologies[of[from]].outputs.contains(&e));
                prop_assert!(topologies[of[to]].inputs.contains(&e));
                seen[e] += 1;
            }
        }
        prop_assert!(seen.iter().all(|&s| s == 1), "edges seen {:?}", seen);

        // Sources and sinks: the nodes without inputs, without outputs.
        for t in &topologies {
            for &n in &t.nodes {
                prop_assert_eq!(t.sources.contains(&n), !edges.iter().any(|e| e.1 == n));
                prop_assert_eq!(t.sinks.contains(&n), !edges.iter().any(|e| e.0 == n));
            }
        }
    }

    #[test]
    fn a_marked_graph_without_broadcast_plans_one_topic_per_cut_edge((nodes, edges) in graphs()) {
        let edges: Vec<_> = edges.into_iter().filter(|e| e.2 != ShipStrategy::Broadcast).collect();
        let g = graph(nodes, &edges, true);
        let plan = DistributedPlan::of(&g, "app").unwrap();
        let model = components(nodes, &edges);
        let cut: Vec<usize> = (0..edges.len()).filter(|&e| is_cut(edges[e].2)).collect();
        prop_assert_eq!(plan.topics.iter().map(|t| t.edge).collect::<Vec<_>>(), cut);
        for topic in &plan.topics {
            let (from, to, strategy) = edges[topic.edge];
            prop_assert_eq!(&topic.name, &format!("app-e{}-repartition", topic.edge));
            prop_assert_eq!((topic.from, topic.to, topic.strategy), (from, to, strategy));
            prop_assert_eq!((topic.writer, topic.reader), (model[from], model[to]));
            prop_assert_eq!(topic.record_type, "u64");
        }
        let sources: Vec<(String, usize, usize)> =
            (0..nodes).filter(|&n| !edges.iter().any(|e| e.1 == n)).map(|n| (format!("in{n}"), n, model[n])).collect();
        let read: Vec<(String, usize, usize)> =
            plan.input_topics.iter().map(|t| (t.topic.clone(), t.node, t.sub_topology)).collect();
        prop_assert_eq!(read, sources);
        prop_assert!(plan.output_topics.is_empty());
    }
}

/// source → flat_map → (key_by) → window → sink, as the word count builds it: the source
/// reads topic `lines`, the sink writes topic `counts`.
fn word_count() -> JobGraph {
    let mut g = JobGraph::default();
    for name in ["Source: lines", "FlatMap", "Window", "Sink: counts"] {
        g.add_node(node(name));
    }
    g.nodes[0].input_topic = input("lines");
    g.nodes[3].output_topic = output("counts");
    g.add_edge(edge(0, 1, ShipStrategy::Default, None));
    g.add_edge(edge(1, 2, ShipStrategy::KeyGroups, Some("words")));
    g.add_edge(edge(2, 3, ShipStrategy::Default, None));
    g
}

#[test]
fn the_word_count_is_two_sub_topologies_joined_by_one_topic() {
    let plan = DistributedPlan::of(&word_count(), "wc").unwrap();
    let expected = "\
application wc: 2 sub-topologies, 1 repartition topic
sub-topology 0
  Source: lines (topic lines)
    --> FlatMap
  FlatMap
    --> topic wc-words-repartition
    <-- Source: lines
sub-topology 1
  Window
    --> Sink: counts
    <-- topic wc-words-repartition
  Sink: counts (topic counts)
    <-- Window
repartition topics
  wc-words-repartition: FlatMap --HASH--> Window, from sub-topology 0 to 1
";
    assert_eq!(plan.to_string(), expected);
    let [zero, one] = &plan.sub_topologies[..] else { panic!("{plan}") };
    assert_eq!((zero.nodes.clone(), zero.sources.clone(), zero.outputs.clone()), (vec![0, 1], vec![0], vec![1]));
    assert_eq!((one.nodes.clone(), one.sinks.clone(), one.inputs.clone()), (vec![2, 3], vec![3], vec![1]));
    let at = |t: &eddy_runtime::distributed_plan::ExternalTopic| (t.topic.clone(), t.node, t.sub_topology);
    assert_eq!(plan.input_topics.iter().map(at).collect::<Vec<_>>(), vec![("lines".to_string(), 0, 0)]);
    assert_eq!(plan.output_topics.iter().map(at).collect::<Vec<_>>(), vec![("counts".to_string(), 3, 1)]);
}

#[test]
fn a_source_not_read_from_a_topic_is_refused_and_an_unmarked_sink_runs_in_its_task() {
    let mut g = word_count();
    g.nodes[3].output_topic = None;
    let plan = DistributedPlan::of(&g, "wc").unwrap();
    assert!(plan.output_topics.is_empty());
    assert!(plan.to_string().contains("\n  Sink: counts\n    <-- Window\n"), "{plan}");

    g.nodes[0].input_topic = None;
    let message = refusal(&g, "wc");
    assert!(message.starts_with("'Source: lines' is not read from a topic"), "{message}");
    assert!(message.contains("from_kafka"), "{message}");

    let mut g = word_count();
    g.nodes[3].output_topic = output("counts?");
    let message = refusal(&g, "wc");
    assert!(message.starts_with("the output topic of 'Sink: counts' 'counts?' cannot be part of a Kafka topic name"));
}

#[test]
fn a_stream_unioned_with_its_own_repartitioned_copy_reads_the_topic_it_writes() {
    // source → map ─rebalance→ copy → union ← map: the union joins both ends of the cut.
    let mut g = JobGraph::default();
    for name in ["Source", "Map", "Copy", "Union"] {
        g.add_node(node(name));
    }
    g.nodes[0].input_topic = input("in");
    g.add_edge(edge(0, 1, ShipStrategy::Forward, None));
    g.add_edge(edge(1, 2, ShipStrategy::Rebalance, Some("copy")));
    g.add_edge(edge(2, 3, ShipStrategy::Forward, None));
    g.add_edge(edge(1, 3, ShipStrategy::Forward, None));
    let plan = DistributedPlan::of(&g, "u").unwrap();
    assert_eq!(plan.sub_topologies.len(), 1, "{plan}");
    let topology = &plan.sub_topologies[0];
    assert_eq!((topology.inputs.clone(), topology.outputs.clone()), (vec![1], vec![1]));
    assert_eq!((plan.topics[0].writer, plan.topics[0].reader), (0, 0));
}

fn refusal(g: &JobGraph, application_id: &str) -> String {
    match DistributedPlan::of(g, application_id) {
        Err(Error::InvalidJob(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_plan_refuses_what_it_cannot_cut_and_names_the_edge() {
    let mut g = word_count();
    g.edges[1].repartition = None;
    let message = refusal(&g, "wc");
    assert!(message.starts_with("the key_by from 'FlatMap' to 'Window' is not marked"), "{message}");
    assert!(message.contains(".repartitioned(Repartitioned::named("), "{message}");

    let mut g = word_count();
    g.edges[1].strategy = ShipStrategy::Rebalance;
    g.edges[1].repartition = None;
    let message = refusal(&g, "wc");
    assert!(message.starts_with("the rebalance edge from 'FlatMap' to 'Window' is not marked"), "{message}");
    assert!(message.contains(".repartition(Repartitioned::named("), "{message}");

    let mut g = word_count();
    g.edges[1].strategy = ShipStrategy::Broadcast;
    let message = refusal(&g, "wc");
    assert!(message.starts_with("the broadcast edge from 'FlatMap' to 'Window' cannot be cut"), "{message}");
    assert!(message.contains("no broadcast repartition"), "{message}");

    let mut g = word_count();
    g.edges[0].repartition = g.edges[1].repartition.clone();
    let message = refusal(&g, "wc");
    assert!(message.starts_with("the forward edge from 'Source: lines' to 'FlatMap' is marked for repartition 'words'"));

    let mut g = word_count();
    g.edges[2] = edge(2, 3, ShipStrategy::KeyGroups, Some("words"));
    let message = refusal(&g, "wc");
    assert!(
        message
            .contains("'FlatMap' to 'Window' and the key_by from 'Window' to 'Sink: counts' are both marked 'words'"),
        "{message}"
    );

    let message = refusal(&word_count(), "my app");
    assert!(message.starts_with("application id 'my app' cannot be part of a Kafka topic name"), "{message}");
    let mut g = word_count();
    g.edges[1].repartition = Some(Repartition::new("wörds", RecordCodec::new(Arc::new(Le))));
    let message = refusal(&g, "wc");
    assert!(message.starts_with("the repartition name of the key_by from 'FlatMap' to 'Window' 'wörds'"), "{message}");
    let message = refusal(&word_count(), &"a".repeat(240));
    assert!(message.contains("longer than Kafka's 249 characters"), "{message}");
}

#[test]
fn the_key_by_of_a_two_input_operator_is_refused_as_not_cut_yet() {
    let mut g = JobGraph::default();
    for name in ["Source: a", "Source: b", "Join"] {
        g.add_node(Node { input_topic: input("t"), ..node(name) });
    }
    g.add_edge(edge(0, 2, ShipStrategy::KeyGroups, None));
    g.add_edge(edge(1, 2, ShipStrategy::KeyGroups, None));
    let message = refusal(&g, "j");
    assert!(message.starts_with("the key_by from 'Source: a' to 'Join' is the key_by of an operator with two inputs"));
    assert!(message.contains("co-partitioned"), "{message}");
}
