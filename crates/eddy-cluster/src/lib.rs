//! Scale an eddy job out over several processes, as Kafka Streams does: every process is a
//! member of one consumer group, the group decides which process runs which partitions, data
//! crosses processes only through Kafka topics, and state is checkpointed to a shared object
//! store. Adding a process rescales; a process that dies has its tasks moved to the others.
//!
//! # The model
//!
//! A job is any DataStream job whose sources read Kafka topics and whose sinks write them
//! (eddy-kafka's `from_kafka` and `sink_to_kafka`), with each `key_by` (and `rebalance`) that
//! crosses processes marked: `.repartitioned(Repartitioned::named("words"))`. It is cut at
//! the marked edges into **sub-topologies** joined by **repartition topics**
//! (`<application.id>-<name>-repartition`, as many partitions as the input topic;
//! `StreamEnvironment::distributed_plan` describes the cut). A word count has two:
//!
//! ```text
//!  input topic "lines"               repartition topic                          output topic
//!  (N partitions)                    "<app>-words-repartition"                  "counts"
//! ┌──────────────┐  sub-topology 0   ┌──────────────┐  sub-topology 1
//! │ partition 0  │──► task 0 ───┬───►│ partition 0  │──► task 0 ──┐
//! │ partition 1  │──► task 1 ───┼───►│ partition 1  │──► task 1 ──┼──► rows
//! │ …            │    …         └───►│ …            │    …        │
//! └──────────────┘                   └──────────────┘             ┘
//!                     read, split, key:                 the windows of its key
//!                     key group → partition;            groups, fired at the minimum
//!                     watermarks and ends               watermark over all producing
//!                     to every partition                tasks
//! ```
//!
//! A **task** is one partition of one sub-topology, an `eddy_runtime::partition_task`
//! running that sub-topology's operators, as one subtask does in one process. Each process
//! runs the tasks of the partitions the consumer group assigned to it (cooperative-sticky: a
//! rebalance moves only what must move). A record goes to the repartition partition that
//! holds its key's key group (Flink's key-group ranges), so key groups remain the unit of
//! state. Besides records, a producing task writes [`control`] records to every partition of
//! the topic: its watermark, and (a bounded run) the end of its input; a reading task goes on
//! at the minimum watermark over its producers, as a Flink operator does over its input
//! channels. A sub-topology that reads several topics (a union) runs task `p` over partition
//! `p` of each, its *partition group*, assigned by the partitions of its lead topic (Kafka
//! Streams' co-partitioning; see [`execute_distributed`]).
//!
//! **Exactly-once.** Each task commits, every commit interval, one Kafka transaction of its
//! own producer holding what it wrote and the input offsets it read up to. Its state is
//! checkpointed to the [`store`] first, and the checkpoint's id is the metadata committed
//! with that offset: the committed offset always names a complete checkpoint. A task that
//! moves restores that checkpoint and reads on from that offset; its new transactional
//! producer fences the old owner, which can no longer commit. Since no owner of a task reads
//! what it committed past again, each member deletes those repartition records every
//! `purge_interval` (Kafka Streams' `repartition.purge.interval.ms`).
//!
//! # Running a job
//!
//! [`execute_distributed`] runs this process's share of the job. The configuration names no
//! topics: they come from the job's sources and sinks.
//!
//! ```no_run
//! use std::sync::{atomic::AtomicBool, Arc};
//! use std::time::Duration;
//! use eddy_cluster::ClusterConfig;
//! use eddy_kafka::{DeliveryGuarantee, KafkaSink, KafkaSinkExt, KafkaSource, KafkaSourceExt, Text};
//! use eddy_stream::prelude::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let brokers = "127.0.0.1:9092";
//! let lines = KafkaSource::builder().brokers(brokers).topics(["lines"]).build()?;
//! let counts = KafkaSink::builder().brokers(brokers).topic("counts").serializer(Text)
//!     .delivery(DeliveryGuarantee::ExactlyOnce).transactional_id_prefix("wc-counts").build()?;
//! let env = StreamEnvironment::new();
//! env.from_kafka(lines, WatermarkStrategy::monotonous(), "lines")
//!     .flat_map(|line: String| line.split(' ').map(String::from).collect::<Vec<_>>())
//!     .key_by(|w: &String| w.clone())
//!     .repartitioned(Repartitioned::named("words"))
//!     .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
//!     .aggregate_with(Count, |w, window, n| format!("{},{w},{n}", window.start))
//!     .uid("counts")
//!     .sink_to_kafka(counts)
//!     .uid("counts-sink");
//! let config = ClusterConfig::for_graph(brokers, "word-count", "file:///shared/wc");
//! // Start the same program in as many processes as needed; set `stop` on SIGTERM.
//! eddy_cluster::execute_distributed(&env, &config, Arc::new(AtomicBool::new(false)))?;
//! # Ok(()) }
//! ```
//!
//! See `docs/scale-out.md` for how this maps to Kafka Streams and Flink.

mod admin;
mod cluster;
pub mod config;
pub mod control;
mod distributed;
pub mod error;
mod graph_work;
mod incarnation;
mod liveness;
mod member;
mod purge;
pub mod store;
mod task;
#[cfg(test)]
mod test_graph;
mod work;

pub use config::ClusterConfig;
pub use distributed::execute_distributed;
pub use error::{ClusterError, Result};
pub use member::Summary;
