//! The planner: decides how a job graph runs — each operator's parallelism, how each edge
//! ships records, and which operators share a thread.
//!
//! The API builds a [`JobGraph`] of operators and edges without deciding anything; the
//! planner resolves it against the [`JobConfig`]:
//!
//! 1. **Parallelism.** An operator's own setting, else the job's (capped at
//!    `max_parallelism`); a non-parallel source runs once; an operator the API inserted on
//!    another's behalf (a window's pre-aggregation) follows its input.
//! 2. **Ship strategies.** A default edge is *forward* between equal parallelisms, else a
//!    *rebalance*; an explicit forward edge between different parallelisms is an error that
//!    says what to change.
//! 3. **Chains.** An edge is chained — a direct call, no channel, no thread hop — when it is
//!    forward between equal parallelisms and its consumer has no other input, or a key_by
//!    edge with both sides at parallelism 1 (there is only one place a key can go). A chain
//!    runs on one thread per subtask; every other edge is a channel.
//!
//! ```text
//!  source ─fwd─▶ map ─fwd─▶ pre-aggregate ─key_by─▶ window ─fwd─▶ sink     (parallelism 2)
//!  └──────────── one chain, 2 threads ───────────┘  └─ one chain, 2 threads ─┘
//! ```

use eddy_core::{Error, Result};

use crate::config::JobConfig;
use crate::graph::{JobGraph, Node, ShipStrategy};

/// The decisions the planner made for a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Parallelism of each node.
    pub parallelism: Vec<usize>,
    /// Resolved strategy of each edge (never `Default`).
    pub strategies: Vec<ShipStrategy>,
    /// Whether each edge is fused into its producer's thread.
    pub chained: Vec<bool>,
}

impl Plan {
    /// Whether node `node` starts a thread (a source, or fed by channels).
    pub fn is_head(&self, graph: &JobGraph, node: usize) -> bool {
        !graph.edges.iter().zip(&self.chained).any(|(e, &chained)| chained && e.to == node)
    }

    /// The first node of the chain each node runs in.
    pub(crate) fn chain_heads(&self, graph: &JobGraph) -> Vec<usize> {
        let mut heads: Vec<usize> = (0..graph.nodes.len()).collect();
        for node in 0..graph.nodes.len() {
            let chained_input = graph.edges.iter().zip(&self.chained).find(|(e, &chained)| chained && e.to == node);
            if let Some((edge, _)) = chained_input {
                heads[node] = heads[edge.from];
            }
        }
        heads
    }
}

/// Checks the graph against the settings and decides parallelism, strategies and chains.
pub fn plan(graph: &JobGraph, config: &JobConfig) -> Result<Plan> {
    if config.parallelism == 0 || config.max_parallelism == 0 {
        return Err(Error::InvalidJob("parallelism and max_parallelism must be at least 1".into()));
    }
    // As Flink: a default parallelism above the key groups is a mistake to name, not to
    // lower silently (the job would run narrower than asked).
    if config.parallelism > config.max_parallelism {
        return Err(Error::InvalidJob(format!(
            "parallelism {} is above max_parallelism {} (the number of key groups); \
             lower set_parallelism or raise set_max_parallelism",
            config.parallelism, config.max_parallelism
        )));
    }
    let mut parallelism: Vec<usize> = Vec::with_capacity(graph.nodes.len());
    for (id, node) in graph.nodes.iter().enumerate() {
        let input = graph.edges.iter().find(|e| e.to == id).map(|e| parallelism[e.from]);
        let default = match input {
            Some(p) if node.follows_input => p,
            _ if node.non_parallel => 1,
            _ => config.parallelism,
        };
        let p = resolve_parallelism(node, default, config)?;
        parallelism.push(p);
    }
    let in_degree = |node: usize| graph.edges.iter().filter(|e| e.to == node).count();
    let mut strategies = Vec::with_capacity(graph.edges.len());
    let mut chained = Vec::with_capacity(graph.edges.len());
    for edge in &graph.edges {
        let (from, to) = (parallelism[edge.from], parallelism[edge.to]);
        let strategy = match edge.strategy {
            ShipStrategy::Default if from == to => ShipStrategy::Forward,
            ShipStrategy::Default => ShipStrategy::Rebalance,
            ShipStrategy::Forward if from != to => {
                return Err(Error::InvalidJob(format!(
                    "forward edge from '{}' (parallelism {from}) to '{}' (parallelism {to}) needs equal \
                     parallelism; use rebalance() or set the same parallelism",
                    graph.nodes[edge.from].name, graph.nodes[edge.to].name
                )))
            }
            s => s,
        };
        let fusable = strategy == ShipStrategy::Forward || (strategy == ShipStrategy::KeyGroups && from == 1);
        chained.push(fusable && from == to && in_degree(edge.to) == 1);
        strategies.push(strategy);
    }
    Ok(Plan { parallelism, strategies, chained })
}

/// The node's parallelism (explicit, else `default`), checked against its limits.
fn resolve_parallelism(node: &Node, default: usize, config: &JobConfig) -> Result<usize> {
    let p = node.parallelism.unwrap_or(default);
    if p == 0 {
        return Err(Error::InvalidJob(format!("operator '{}' has parallelism 0; use at least 1", node.name)));
    }
    if node.non_parallel && p != 1 {
        return Err(Error::InvalidJob(format!(
            "source '{}' cannot run in parallel (parallelism {p} requested); \
             remove set_parallelism or use a parallel source",
            node.name
        )));
    }
    if p > config.max_parallelism {
        return Err(Error::InvalidJob(format!(
            "operator '{}' has parallelism {p} above max_parallelism {}; \
             lower it or raise set_max_parallelism",
            node.name, config.max_parallelism
        )));
    }
    Ok(p)
}
