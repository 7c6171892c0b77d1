//! Scale an eddy job out over several processes, as Kafka Streams does: every process is a
//! member of one consumer group, the group decides which process runs which partitions, data
//! crosses processes only through Kafka topics, and state is checkpointed to a shared object
//! store. Adding a process rescales; a process that dies has its tasks moved to the others.
//!
//! # The model
//!
//! A job is cut at each `key_by` into **sub-topologies** joined by **repartition topics**
//! (`<application.id>-<branch>-repartition`, as many partitions as the input topic): a source
//! sub-topology, and one window sub-topology per keyed-window [`Branch`] (a word count has
//! one, `window`; the taxi job two, from one extract). With one branch:
//!
//! ```text
//!  input topic (N partitions)        repartition topic (N partitions)          output topic
//! ┌──────────────┐  sub-topology 0  ┌──────────────┐  sub-topology 1
//! │ partition 0  │─► source task 0 ─┤ partition 0  │─► window task 0 ─┐
//! │ partition 1  │─► source task 1 ─┤ partition 1  │─► window task 1 ─┼──► rows
//! │ …            │   extract, key   │ …            │   windows of its  │
//! └──────────────┘   → key group    └──────────────┘   key groups      ┘
//!                    → partition      + watermarks
//! ```
//!
//! A **task** is one partition of one sub-topology. Each process runs the tasks of the
//! partitions the consumer group assigned to it (cooperative-sticky: a rebalance moves only
//! what must move). A key's repartition partition is derived from its key group
//! ([`repartition`]), so key groups remain the unit of state. Source tasks write their
//! watermarks into every repartition partition; a window task fires a window when the
//! minimum over all source tasks has passed it ([`window_state`]).
//!
//! Exactly-once: each task commits, every commit interval, one Kafka transaction holding what
//! it wrote and the input offset it read up to; a window task files its state in the
//! checkpoint store under that offset first ([`store`]), one object per key group in
//! eddy-state's snapshot format ([`group_snapshot`]). A task that moves restores
//! that state and reads on from that offset; its new transactional producer fences the old
//! owner.
//!
//! # Running a job
//!
//! ```no_run
//! use std::sync::{atomic::AtomicBool, Arc};
//! use eddy_cluster::{ClusterConfig, InputRecord, Keyed, WindowedJob};
//!
//! /// Counts the words of each record value per 5 s of Kafka record time.
//! struct WordCount;
//!
//! impl WindowedJob for WordCount {
//!     type Key = String;
//!     type Value = u64;
//!     type Accumulator = u64;
//!     fn window_ms(&self) -> i64 { 5_000 }
//!     fn extract(&self, record: &InputRecord<'_>, out: &mut Vec<Keyed<String, u64>>) {
//!         let (Ok(text), Some(timestamp)) = (std::str::from_utf8(record.payload), record.timestamp) else { return };
//!         out.extend(text.split_whitespace().map(|w| Keyed { branch: 0, key: w.to_lowercase(), value: 1, timestamp }));
//!     }
//!     fn add(&self, _branch: usize, count: &mut u64, value: u64) { *count += value }
//!     fn format(&self, _branch: usize, word: &String, start: i64, end: i64, count: &u64) -> Option<Vec<u8>> {
//!         Some(format!("{start},{end},{word},{count}").into_bytes())
//!     }
//! }
//!
//! let config = ClusterConfig::new("127.0.0.1:9092", "word-count", "lines", "counts", "file:///shared/wc");
//! // Start the same program in as many processes as needed; set `stop` on SIGTERM.
//! eddy_cluster::run(WordCount, &config, Arc::new(AtomicBool::new(false))).unwrap();
//! ```
//!
//!
//! # Running a DataStream job
//!
//! [`execute_distributed`] runs any job built with the DataStream API whose cut edges are
//! marked (`repartitioned`, `repartition`: see `StreamEnvironment::distributed_plan`): each
//! sub-topology of its plan runs as partition tasks (`eddy_runtime::partition_task`), one per
//! partition, assigned, fenced, checkpointed and moved exactly as the tasks above; what
//! crosses a repartition topic besides records is a [`control`] message. A sub-topology that
//! reads several topics (a union) runs task `p` over partition `p` of each, its partition
//! group, assigned by the partitions of its lead topic (Kafka Streams' co-partitioning; see
//! [`execute_distributed`]). Its sources must
//! read Kafka topics and its sinks write them (eddy-kafka's `from_kafka` and
//! `sink_to_kafka` mark them), so the configuration names no topics:
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

mod checkpoint;
pub mod cluster;
pub mod config;
pub mod control;
mod distributed;
pub mod error;
mod graph_work;
pub mod group_snapshot;
mod incarnation;
pub mod job;
mod liveness;
mod member;
pub mod repartition;
pub mod store;
mod task;
#[cfg(test)]
mod test_job;
pub mod topology;
pub mod window_state;
mod windowed;
mod work;

pub use cluster::run;
pub use config::ClusterConfig;
pub use distributed::execute_distributed;
pub use error::{ClusterError, Result};
pub use job::{Branch, InputRecord, Keyed, WindowedJob};
pub use member::Summary;
