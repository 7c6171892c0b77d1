//! A job's plan as people read it: which operators run chained on one thread, at what
//! parallelism, and how records cross between chains (Flink's `explain` / execution plan).
//! As text, Graphviz DOT and Mermaid.
//!
//! ```
//! # use eddy_runtime::explain::Explained;
//! # fn show(plan: &Explained) {
//! println!("{plan}"); // text; plan.to_dot() and plan.to_mermaid() for pictures
//! # }
//! ```

use std::fmt::{self, Display, Write};

use serde::Serialize;

use crate::config::JobConfig;
use crate::graph::{JobGraph, ShipStrategy};
use crate::planner::{self, Plan};

/// A planned job, ready to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explained {
    /// Every operator, in job-graph order (sources first).
    pub operators: Vec<PlannedOperator>,
    /// Every edge between two operators.
    pub edges: Vec<PlannedEdge>,
}

/// One operator of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedOperator {
    /// Its position in the job graph.
    pub id: usize,
    /// Its name.
    pub name: String,
    /// Its uid, if it has one.
    pub uid: Option<String>,
    /// How many subtasks run it.
    pub parallelism: usize,
    /// The first operator of its chain.
    pub chain: usize,
}

/// One edge of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedEdge {
    /// The producing operator.
    pub from: usize,
    /// The consuming operator.
    pub to: usize,
    /// How records cross, in Flink's words: `FORWARD`, `HASH` (by key), `REBALANCE`,
    /// `SHUFFLE`, `BROADCAST`.
    pub ship_strategy: &'static str,
    /// Whether the consumer is called directly on the producer's thread.
    pub chained: bool,
    /// The producer's side output this edge carries (`None`: its main output).
    pub side_output: Option<String>,
}

/// Flink's name of a resolved ship strategy.
pub fn strategy_name(strategy: ShipStrategy) -> &'static str {
    match strategy {
        ShipStrategy::Default | ShipStrategy::Forward => "FORWARD",
        ShipStrategy::KeyGroups => "HASH",
        ShipStrategy::Rebalance => "REBALANCE",
        ShipStrategy::Shuffle => "SHUFFLE",
        ShipStrategy::Broadcast => "BROADCAST",
    }
}

impl Explained {
    /// `graph` as `execute` would run it under `config`: planned, nothing built or started.
    /// Fails as `execute` would on a graph the planner refuses.
    pub fn of(graph: &JobGraph, config: &JobConfig) -> eddy_core::Result<Self> {
        Ok(Self::new(graph, &planner::plan(graph, config)?))
    }

    /// `graph` as `plan` runs it.
    pub(crate) fn new(graph: &JobGraph, plan: &Plan) -> Self {
        let mut operators: Vec<PlannedOperator> = Vec::with_capacity(graph.nodes.len());
        for (id, node) in graph.nodes.iter().enumerate() {
            let chained_from = graph.edges.iter().zip(&plan.chained).find(|(e, &c)| c && e.to == id);
            let chain = chained_from.map_or(id, |(e, _)| operators[e.from].chain);
            let (name, uid, parallelism) = (node.name.clone(), node.uid.clone(), plan.parallelism[id]);
            operators.push(PlannedOperator { id, name, uid, parallelism, chain });
        }
        let edges = graph
            .edges
            .iter()
            .enumerate()
            .map(|(e, edge)| PlannedEdge {
                from: edge.from,
                to: edge.to,
                ship_strategy: strategy_name(plan.strategies[e]),
                chained: plan.chained[e],
                side_output: edge.tag.clone(),
            })
            .collect();
        Explained { operators, edges }
    }

    /// The chains, each its operators' ids, in order.
    pub fn chains(&self) -> Vec<Vec<usize>> {
        let mut chains: Vec<Vec<usize>> = Vec::new();
        for op in &self.operators {
            match chains.iter_mut().find(|c| c[0] == op.chain) {
                Some(chain) => chain.push(op.id),
                None => chains.push(vec![op.id]),
            }
        }
        chains
    }

    fn edge_label(edge: &PlannedEdge) -> String {
        match &edge.side_output {
            Some(tag) => format!("{} (side output '{tag}')", edge.ship_strategy),
            None => edge.ship_strategy.to_string(),
        }
    }

    /// Graphviz DOT: one cluster per chain, edges labelled with their ship strategy.
    pub fn to_dot(&self) -> String {
        let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = String::from("digraph job {\n  rankdir=LR;\n  node [shape=box];\n");
        for chain in self.chains() {
            let _ = writeln!(out, "  subgraph cluster_{} {{\n    label=\"chain {}\";", chain[0], chain[0]);
            for &id in &chain {
                let op = &self.operators[id];
                let _ = writeln!(out, "    n{id} [label=\"{}\\nparallelism {}\"];", quote(&op.name), op.parallelism);
            }
            out.push_str("  }\n");
        }
        for edge in &self.edges {
            let style = if edge.chained { ", style=bold" } else { ", style=dashed" };
            let label = quote(&Self::edge_label(edge));
            let _ = writeln!(out, "  n{} -> n{} [label=\"{label}\"{style}];", edge.from, edge.to);
        }
        out.push_str("}\n");
        out
    }

    /// Mermaid flowchart: one subgraph per chain, edges labelled with their ship strategy
    /// (`==>` chained, `-.->` across threads).
    pub fn to_mermaid(&self) -> String {
        let quote = |s: &str| s.replace('"', "#quot;");
        let mut out = String::from("flowchart LR\n");
        for chain in self.chains() {
            let _ = writeln!(out, "  subgraph chain{}[\"chain {}\"]", chain[0], chain[0]);
            for &id in &chain {
                let op = &self.operators[id];
                let _ = writeln!(out, "    n{id}[\"{}<br/>parallelism {}\"]", quote(&op.name), op.parallelism);
            }
            out.push_str("  end\n");
        }
        for edge in &self.edges {
            let arrow = if edge.chained { "==>" } else { "-.->" };
            let label = quote(&Self::edge_label(edge));
            let _ = writeln!(out, "  n{} {arrow}|\"{label}\"| n{}", edge.from, edge.to);
        }
        out
    }
}

/// The plan as text: each chain with its operators, then how records cross between chains.
impl Display for Explained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chain in self.chains() {
            let names: Vec<&str> = chain.iter().map(|&id| self.operators[id].name.as_str()).collect();
            let parallelism = self.operators[chain[0]].parallelism;
            writeln!(f, "chain {} (parallelism {parallelism}): {}", chain[0], names.join(" -> "))?;
        }
        for edge in self.edges.iter().filter(|e| !e.chained) {
            let (from, to) = (&self.operators[edge.from].name, &self.operators[edge.to].name);
            writeln!(f, "{from} --{}--> {to}", Self::edge_label(edge))?;
        }
        Ok(())
    }
}
