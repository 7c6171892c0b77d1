//! The unit tests' job graph, planned and wrapped in a member's [`Context`].

use std::sync::Arc;
use std::time::Duration;

use eddy_kafka::{KafkaSource, KafkaSourceExt};
use eddy_runtime::distributed_plan::DistributedPlan;
use eddy_stream::prelude::*;

use crate::graph_work::GraphWork;
use crate::store::CheckpointStore;
use crate::task::Context;

/// The application id of [`context`]'s job.
pub(crate) const APPLICATION: &str = "app";

/// The repartition topic between [`context`]'s two sub-topologies.
pub(crate) const WORDS: &str = "app-words-repartition";

/// Kafka topic `lines` (sub-topology 0) → key_by(line), marked `words` → 5 s count →
/// `collect()` rows `<window start>,<line>,<count>` (sub-topology 1), planned for
/// `partitions` tasks per sub-topology, its checkpoints in `store`, its brokers `brokers` (no
/// connection is made before a task starts); and the rows its checkpoints committed.
pub(crate) fn context(store: &str, brokers: &str, partitions: usize) -> (Context<GraphWork>, Collected<String>) {
    let lines = KafkaSource::builder().brokers(brokers).topics(["lines"]).build().unwrap();
    let env = StreamEnvironment::new();
    let rows = env
        .from_kafka(lines, WatermarkStrategy::monotonous(), "lines")
        .uid("lines")
        .key_by(|w: &String| w.clone())
        .repartitioned(Repartitioned::named("words"))
        .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
        // Late records to a side output: the window runs as one stage, in sub-topology 1,
        // and the lines themselves cross the cut (no pre-aggregation before it).
        .side_output_late_data(&OutputTag::new("late"))
        .aggregate_with(Count, |w, window, n| format!("{},{w},{n}", window.start))
        .uid("counts")
        .collect();
    let (graph, config) = env.take_job().unwrap();
    let plan = DistributedPlan::of(&graph, APPLICATION).unwrap();
    let readers = crate::distributed::readers(&plan).unwrap();
    let reads = crate::distributed::reads(&readers, plan.sub_topologies.len());
    let names = plan.sub_topologies.iter().map(|s| format!("sub-topology-{}", s.id)).collect();
    let work = GraphWork { graph, plan, config, readers, reads, names, ends: None };
    let cx = Context {
        work: Arc::new(work),
        application_id: APPLICATION.into(),
        brokers: brokers.into(),
        partitions,
        store: CheckpointStore::open(store, None).unwrap(),
    };
    (cx, rows)
}
