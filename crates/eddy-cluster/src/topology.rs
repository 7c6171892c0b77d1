//! A job's sub-topologies and the topics between them: [`Topology`], resolved once from the
//! job's [branches](crate::WindowedJob::branches) and the configuration.
//!
//! ```text
//!  input topic ──► source tasks ──┬──► <app>-<branch 0>-repartition ──► window tasks ──► its output topic
//!                 (sub-topology 0) └──► <app>-<branch 1>-repartition ──► window tasks ──► its output topic
//! ```
//!
//! Every topic here has as many partitions as the input topic, so task `p` of every
//! sub-topology holds the same key groups.

use crate::config::ClusterConfig;
use crate::error::{ClusterError, Result};
use crate::job::WindowedJob;

/// Which sub-topology a task belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Sub-topology 0: input partition → repartition topics.
    Source,
    /// Branch `n`'s window sub-topology: repartition partition → windows → output topic.
    Window(usize),
}

/// One branch's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchTopics {
    /// The branch's name (its transactional ids and checkpoints are named after it).
    pub name: String,
    /// `<application id>-<name>-repartition`.
    pub repartition: String,
    /// Where its rows go.
    pub output: String,
}

/// The topics of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The topic the source tasks read.
    pub input: String,
    /// The branches, in the job's order.
    pub branches: Vec<BranchTopics>,
}

impl Topology {
    /// The topics of `job` under `config`; refuses branch names that cannot name topics or
    /// that collide, and an output topic that is the input.
    pub fn of<J: WindowedJob>(job: &J, config: &ClusterConfig) -> Result<Self> {
        let bad = |message: String| Err(ClusterError::Config(message));
        let branches = job.branches();
        if branches.is_empty() {
            return bad("the job has no branches: give it at least one".into());
        }
        let mut resolved: Vec<BranchTopics> = Vec::with_capacity(branches.len());
        for branch in branches {
            let name = branch.name;
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                return bad(format!(
                    "branch name {name:?}: use only letters, digits, `.`, `_` and `-` (it names topics)"
                ));
            }
            if name == "source" || resolved.iter().any(|b| b.name == name) {
                return bad(format!("branch name {name:?} is taken: name every branch differently, and none `source`"));
            }
            let output = branch.output_topic.unwrap_or_else(|| config.output_topic.clone());
            if output == config.input_topic {
                return bad(format!("branch {name} writes to the input topic {output}: give it another output topic"));
            }
            let repartition = crate::repartition::topic_name(&config.application_id, &name);
            resolved.push(BranchTopics { name, repartition, output });
        }
        Ok(Topology { input: config.input_topic.clone(), branches: resolved })
    }

    /// The sub-topology that reads `topic`.
    pub fn role_of(&self, topic: &str) -> Role {
        match self.branches.iter().position(|b| b.repartition == topic) {
            Some(branch) => Role::Window(branch),
            None => Role::Source,
        }
    }

    /// Every topic a member reads: the input and the repartition topics.
    pub fn subscribed(&self) -> Vec<&str> {
        std::iter::once(self.input.as_str()).chain(self.branches.iter().map(|b| b.repartition.as_str())).collect()
    }

    /// The name of `role`'s tasks: `source`, or the branch's name (a task's transactional id
    /// is `<application id>-<name>-<partition>`).
    pub fn name(&self, role: Role) -> &str {
        match role {
            Role::Source => "source",
            Role::Window(branch) => &self.branches[branch].name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Branch, InputRecord, Keyed};

    struct Two(Vec<Branch>);

    impl WindowedJob for Two {
        type Key = String;
        type Value = u64;
        type Accumulator = u64;
        fn branches(&self) -> Vec<Branch> {
            self.0.clone()
        }
        fn window_ms(&self) -> i64 {
            10
        }
        fn extract(&self, _: &InputRecord<'_>, _: &mut Vec<Keyed<String, u64>>) {}
        fn add(&self, _: usize, _: &mut u64, _: u64) {}
        fn format(&self, _: usize, _: &String, _: i64, _: i64, _: &u64) -> Option<Vec<u8>> {
            None
        }
    }

    #[test]
    fn each_branch_gets_its_repartition_topic_and_output() {
        let config = ClusterConfig::new("b", "taxi", "trips", "rows", "file:///tmp/x");
        let job = Two(vec![Branch::new("hot-spots"), Branch::new("airports").output_topic("durations")]);
        let topology = Topology::of(&job, &config).unwrap();
        assert_eq!(topology.subscribed(), ["trips", "taxi-hot-spots-repartition", "taxi-airports-repartition"]);
        assert_eq!(topology.branches[0].output, "rows");
        assert_eq!(topology.branches[1].output, "durations");
        assert_eq!(topology.role_of("trips"), Role::Source);
        assert_eq!(topology.role_of("taxi-airports-repartition"), Role::Window(1));
        assert_eq!(topology.name(Role::Window(1)), "airports");
        assert_eq!(topology.name(Role::Source), "source");
    }

    #[test]
    fn colliding_or_unusable_branches_are_refused() {
        let config = ClusterConfig::new("b", "taxi", "trips", "rows", "file:///tmp/x");
        let refused = |branches: Vec<Branch>, says: &str| {
            let e = Topology::of(&Two(branches), &config).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        };
        refused(vec![], "no branches");
        refused(vec![Branch::new("a"), Branch::new("a")], "is taken");
        refused(vec![Branch::new("source")], "is taken");
        refused(vec![Branch::new("a b")], "only letters");
        refused(vec![Branch::new("a").output_topic("trips")], "writes to the input topic");
    }
}
