//! Running this process's share of a DataStream job: [`execute_distributed`].

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use eddy_runtime::distributed_plan::DistributedPlan;
use eddy_stream::StreamEnvironment;

use crate::cluster::{create_repartition_topic, end_offsets, input_partitions, run_members};
use crate::config::ClusterConfig;
use crate::error::{ClusterError, Result};
use crate::graph_work::GraphWork;
use crate::member::Summary;
use crate::store::CheckpointStore;

/// Runs this process's share of the job built in `env`, as Kafka Streams runs a topology:
/// `config.threads` members of the consumer group `config.application_id`, each running the
/// partition tasks the group assigns it — one per partition of each sub-topology of
/// [`env.distributed_plan`](StreamEnvironment::distributed_plan) — until `stop` is set (each
/// member commits and hands its tasks back) or, with `config.bounded`, until every task has
/// read its input to the end offsets seen at start and committed. Start the same program in
/// as many processes as needed; the environment is empty afterwards, as after `execute`.
///
/// The topics come from the job: its sources must read Kafka topics (eddy-kafka's sources
/// carry the mark), all with the same number of partitions, which is also the number of
/// partitions of every repartition topic (created here if missing, named
/// `<application id>-<name>-repartition`) and of tasks per sub-topology. Its sinks write in
/// each task's transaction (eddy-kafka's sinks carry the mark). So the configuration names
/// no topics ([`ClusterConfig::for_graph`]), and `config.max_parallelism` must be the
/// environment's (the number of key groups).
///
/// A sub-topology may read several topics (a union of two topics, of two repartitioned
/// streams, of a topic and a repartitioned stream): its task `p` reads partition `p` of each,
/// its *partition group*, as a Kafka Streams task does. The group assigns tasks by the
/// partitions of each sub-topology's *lead* topic (the first of its topics by name), and a
/// member that owns lead partition `p` reads partition `p` of the others too (see
/// `member`).
///
/// Refused, each with a message saying what to change: a job the distributed plan refuses
/// (an unmarked `key_by`, a broadcast, a source that reads no topic, …), a topic read by two
/// sub-topologies, topics of different partition counts (input topics, or a repartition
/// topic left by an earlier run with another count).
pub fn execute_distributed(env: &StreamEnvironment, config: &ClusterConfig, stop: Arc<AtomicBool>) -> Result<Summary> {
    config.validate()?;
    let (graph, job_config) = env.take_job().map_err(|e| ClusterError::Runtime(e.to_string()))?;
    if graph.nodes.is_empty() {
        return Err(ClusterError::Runtime("the job has no operators; add a source and a sink".into()));
    }
    if job_config.max_parallelism != config.max_parallelism {
        return Err(ClusterError::Config(format!(
            "the environment's max parallelism (key groups) is {} but the cluster configuration's is {}: make them equal",
            job_config.max_parallelism, config.max_parallelism
        )));
    }
    let plan = DistributedPlan::of(&graph, &config.application_id).map_err(|e| ClusterError::Runtime(e.to_string()))?;
    // Opened first, so a wrong URL is refused before any connection is tried.
    let store = CheckpointStore::open(&config.checkpoint_store, config.s3_endpoint.as_deref())?;
    let readers = readers(&plan)?;
    let inputs: Vec<&str> =
        readers.keys().filter(|t| !plan.topics.iter().any(|r| &r.name == *t)).map(|t| t.as_str()).collect();
    let partitions = co_partitioned(config, &inputs)?;
    if partitions > config.max_parallelism {
        return Err(ClusterError::Config(format!(
            "the input topics have {partitions} partitions, more than the {} key groups: use fewer partitions",
            config.max_parallelism
        )));
    }
    for topic in &plan.topics {
        create_repartition_topic(config, &topic.name, partitions)?;
        // Co-read with the input topics' partitions: an existing one must have as many.
        let existing = input_partitions(config, &topic.name)?;
        if existing != partitions {
            return Err(ClusterError::Config(format!(
                "the repartition topic {} has {existing} partitions but the input topics {partitions}: \
                 delete it (or use a new --application-id)",
                topic.name
            )));
        }
    }
    let ends = match config.bounded {
        true => {
            let seen = inputs
                .iter()
                .map(|topic| Ok((topic.to_string(), end_offsets(config, topic, partitions)?)))
                .collect::<Result<BTreeMap<_, _>>>()?;
            Some(store.end_offsets(seen)?)
        }
        false => None,
    };
    let reads = reads(&readers, plan.sub_topologies.len());
    let names = plan.sub_topologies.iter().map(|s| format!("sub-topology-{}", s.id)).collect();
    let work = GraphWork { graph, plan, config: job_config, readers, reads, names, ends };
    run_members(work, config, partitions, stop)
}

/// Every topic the job's tasks read → the sub-topology that reads it; refuses a topic read
/// by two (a task's group would overlap another's).
pub(crate) fn readers(plan: &DistributedPlan) -> Result<BTreeMap<String, usize>> {
    let mut read: Vec<Vec<&str>> = vec![Vec::new(); plan.sub_topologies.len()];
    for input in &plan.input_topics {
        read[input.sub_topology].push(&input.topic);
    }
    for topic in &plan.topics {
        read[topic.reader].push(&topic.name);
    }
    let mut readers = BTreeMap::new();
    for (sub, mut topics) in read.into_iter().enumerate() {
        topics.sort_unstable();
        topics.dedup();
        for topic in topics {
            if let Some(other) = readers.insert(topic.to_string(), sub) {
                return Err(ClusterError::Runtime(format!(
                    "the topic {topic} is read by sub-topologies {other} and {sub}: read it once and split the stream"
                )));
            }
        }
    }
    Ok(readers)
}

/// Each of the `sub_topologies`' topics, in name order: the first is its lead topic, which
/// every process picks alike.
pub(crate) fn reads(readers: &BTreeMap<String, usize>, sub_topologies: usize) -> Vec<Vec<String>> {
    let mut reads = vec![Vec::new(); sub_topologies];
    for (topic, &sub) in readers {
        reads[sub].push(topic.clone());
    }
    reads
}

/// The partition count of the input topics, which must be the same for all (Kafka Streams'
/// co-partitioning: task `p` of every sub-topology holds the same key groups).
fn co_partitioned(config: &ClusterConfig, topics: &[&str]) -> Result<usize> {
    let counts = topics.iter().map(|t| Ok((*t, input_partitions(config, t)?))).collect::<Result<Vec<_>>>()?;
    match counts.first() {
        None => Err(ClusterError::Runtime("the job reads no topic".into())),
        Some(&(first, n)) => match counts.iter().find(|(_, m)| *m != n) {
            Some((other, m)) => Err(ClusterError::Config(format!(
                "the input topics {first} ({n} partitions) and {other} ({m} partitions) differ in partition count: \
                 every topic of a distributed job needs the same (Kafka Streams' co-partitioning); repartition one"
            ))),
            None => Ok(n),
        },
    }
}
