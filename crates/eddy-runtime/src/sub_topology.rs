//! Sub-topologies: the pieces of a job graph that a distributed run cuts it into.
//!
//! Kafka Streams cuts a topology at every repartition: what lies between two repartition
//! topics is a *sub-topology*, and a task runs one sub-topology for one partition. eddy cuts
//! a [`JobGraph`] the same way, at every edge that moves records between subtasks by what
//! they are rather than where they come from:
//!
//! | strategy | cut? | why |
//! |---|---|---|
//! | `KeyGroups` (`key_by`) | yes | a key's records must meet in the task of its key group |
//! | `Rebalance`, `Shuffle` | yes | records are spread over all tasks, whichever process runs them |
//! | `Forward`, `Default` | never | subtask *i* feeds subtask *i*: the same task, no topic |
//! | `Broadcast` | never; kept inside | Kafka Streams has no broadcast repartition; a distributed plan refuses it (see [`distributed_plan`](crate::distributed_plan)) |
//!
//! So a sub-topology is a connected piece of the graph once the cut edges are removed, and
//! every cut edge becomes a repartition topic: an output of the piece it leaves and an input
//! of the piece it enters. Those are two pieces, except where uncut edges join its ends as
//! well (a stream unioned with its own repartitioned copy): then one piece writes the topic
//! and reads it back, as a Kafka Streams sub-topology can.
//!
//! ```text
//!  source ─fwd─▶ flat_map ─key_by─▶ window ─fwd─▶ sink
//!  └─ sub-topology 0 ───┘   topic   └─ sub-topology 1 ┘
//! ```
//!
//! Computing the pieces decides nothing else: which cut edges carry a codec, and what their
//! topics are called, is [`distributed_plan`](crate::distributed_plan)'s business.

use crate::graph::{JobGraph, NodeId, ShipStrategy};

/// One connected piece of a job graph between cut edges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubTopology {
    /// Its number: sub-topologies are numbered in the order of their first node.
    pub id: usize,
    /// Its nodes, in graph order.
    pub nodes: Vec<NodeId>,
    /// The edges between its nodes that are not cut (indices into `JobGraph::edges`).
    pub edges: Vec<usize>,
    /// Its nodes without inputs: the sources it reads.
    pub sources: Vec<NodeId>,
    /// Its nodes without outputs: the sinks it writes.
    pub sinks: Vec<NodeId>,
    /// The cut edges it reads (indices into `JobGraph::edges`), each a repartition topic.
    pub inputs: Vec<usize>,
    /// The cut edges it writes (indices into `JobGraph::edges`), each a repartition topic.
    pub outputs: Vec<usize>,
}

/// Whether a distributed job cuts an edge of this strategy (see the [module](self) docs).
pub fn is_cut(strategy: ShipStrategy) -> bool {
    matches!(strategy, ShipStrategy::KeyGroups | ShipStrategy::Rebalance | ShipStrategy::Shuffle)
}

impl JobGraph {
    /// The graph's sub-topologies, numbered in the order of their first node: the connected
    /// pieces left when every `KeyGroups`, `Rebalance` and `Shuffle` edge is removed (see
    /// [`sub_topology`](crate::sub_topology)). Every node is in exactly one; every edge is
    /// inside one or a cut edge.
    pub fn sub_topologies(&self) -> Vec<SubTopology> {
        let piece = self.pieces();
        let mut topologies: Vec<SubTopology> = Vec::new();
        // The number of each piece's sub-topology, by the piece's representative.
        let mut number: Vec<Option<usize>> = vec![None; self.nodes.len()];
        let mut of = Vec::with_capacity(self.nodes.len());
        for node in 0..self.nodes.len() {
            let id = match number[piece[node]] {
                Some(id) => id,
                None => {
                    let id = topologies.len();
                    topologies.push(SubTopology { id, ..SubTopology::default() });
                    number[piece[node]] = Some(id);
                    id
                }
            };
            of.push(id);
            let topology = &mut topologies[id];
            topology.nodes.push(node);
            if !self.edges.iter().any(|e| e.to == node) {
                topology.sources.push(node);
            }
            if !self.edges.iter().any(|e| e.from == node) {
                topology.sinks.push(node);
            }
        }
        for (index, edge) in self.edges.iter().enumerate() {
            if is_cut(edge.strategy) {
                topologies[of[edge.from]].outputs.push(index);
                topologies[of[edge.to]].inputs.push(index);
            } else {
                topologies[of[edge.from]].edges.push(index);
            }
        }
        topologies
    }

    /// For each node, a representative of its piece (union-find over the uncut edges).
    fn pieces(&self) -> Vec<NodeId> {
        fn root(parent: &mut [NodeId], mut node: NodeId) -> NodeId {
            while parent[node] != node {
                parent[node] = parent[parent[node]];
                node = parent[node];
            }
            node
        }
        let mut parent: Vec<NodeId> = (0..self.nodes.len()).collect();
        for edge in self.edges.iter().filter(|e| !is_cut(e.strategy)) {
            let (a, b) = (root(&mut parent, edge.from), root(&mut parent, edge.to));
            parent[a.max(b)] = a.min(b);
        }
        (0..self.nodes.len()).map(|node| root(&mut parent, node)).collect()
    }
}
