//! Kafka for eddy: read topics as a [`KafkaSource`] and write results with a [`KafkaSink`],
//! with offsets in eddy's checkpoints and, if asked, exactly-once output through Kafka
//! transactions. In the `eddy` crate this is the `kafka` feature (`eddy::kafka`); the
//! examples below use `eddy_stream::prelude`, which `eddy::prelude` re-exports.
//!
//! # Reading
//!
//! A source reads one or more topics (or every topic matching a pattern). Its partitions are
//! *splits*: each subtask reads the partitions it owns ([`owner`], Flink's assignment), and
//! each partition's next offset goes into every checkpoint. A restore rewinds every
//! partition to its checkpointed offset, at any parallelism; the consumer group's committed
//! offsets are only read for [`StartingOffsets::Committed`] and written, if asked, for lag
//! tooling. Event time is the record's timestamp, or what [`KafkaSource::timestamps`]
//! extracts; watermarks are generated per partition inside the source, so a partition read
//! in a burst never makes another partition's records late.
//!
//! ```no_run
//! use std::time::Duration;
//! use eddy_stream::prelude::*;
//! use eddy_kafka::{Json, KafkaSource, StartingOffsets};
//!
//! #[derive(Clone, Debug, serde::Deserialize)]
//! struct Order { id: u64, amount_cents: i64, placed_ms: i64 }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let orders = KafkaSource::builder()
//!     .brokers("127.0.0.1:9092")
//!     .topics(["orders"])
//!     .group_id("order-stats")
//!     .starting_offsets(StartingOffsets::Earliest)
//!     .deserializer(Json::<Order>::new())
//!     .build()?
//!     .timestamps(|o: &Order| o.placed_ms)?;
//! let env = StreamEnvironment::new();
//! let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_secs(5))
//!     .with_idleness(Duration::from_secs(30));
//! let orders = env.from_source(orders, strategy, "orders").uid("orders");
//! let bad = orders.dead_letters::<RawRecord>(); // not JSON: topic-partition, offset, bytes, reason
//! # drop(bad);
//! # Ok(()) }
//! ```
//!
//! # Writing
//!
//! ```no_run
//! use eddy_stream::prelude::*;
//! use eddy_kafka::{DeliveryGuarantee, JsonValue, KafkaSink, KafkaSinkExt};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let env = StreamEnvironment::new();
//! # let totals = env.from_collection(vec![(1u64, 2i64)]);
//! let sink = KafkaSink::builder()
//!     .brokers("127.0.0.1:9092")
//!     .topic("order-totals")
//!     .serializer(JsonValue)
//!     .key(|t: &(u64, i64)| Some(t.0.to_be_bytes().to_vec()))
//!     .delivery(DeliveryGuarantee::ExactlyOnce)
//!     .transactional_id_prefix("order-stats-totals")
//!     .build()?;
//! totals.sink_to_kafka(sink).uid("totals-sink");
//! # Ok(()) }
//! ```
//!
//! [`DeliveryGuarantee::ExactlyOnce`] writes each checkpoint's records in one transaction
//! per subtask and commits it when the checkpoint completes, so `read_committed` consumers see
//! every record once, also across failures and restores ([`transaction`] says how).
//!
//! # In a distributed job
//!
//! A job run as tasks of a consumer group (`docs/scale-out.md`) reads its input with the
//! group's consumer and writes with each task's transactional producer. Add the source with
//! [`KafkaSourceExt::from_kafka`] (`from_source` plus a *topic mark*: its topic, and how a
//! task turns a record into a value with event time and per-partition watermarks, see
//! [`topic_reader`]); [`KafkaSinkExt::sink_to_kafka`] marks the sink ([`topic_writer`]).
//! A source of several topics or a pattern, and a sink with a topic per record or headers,
//! get no mark: the distributed plan refuses such a source, and runs such a sink in every
//! task outside the task's transaction. One-process runs ignore the marks.
//!
//! # Failures
//!
//! Bad settings are refused by `build` with a message that says what to add. Unreachable
//! brokers, missing topics and refused credentials fail `execute` (or the running job, when
//! brokers stay away longer than [`KafkaSourceBuilder::broker_timeout`]) with an error
//! naming the connector and the brokers; the job's restart strategy then applies.

mod client;
pub mod deserializer;
pub mod error;
mod from_kafka;
pub mod marker;
pub mod reader;
pub mod serializer;
pub mod sink;
mod sink_spec;
pub mod source;
mod source_spec;
pub mod split;
pub mod topic_reader;
pub mod topic_writer;
pub mod transaction;
mod writer;

pub use deserializer::{Bytes, Deserializer, Json, KafkaRecord, Utf8};
pub use error::KafkaError;
pub use from_kafka::KafkaSourceExt;
pub use marker::{Commit, Marker};
/// The Kafka client eddy uses, for settings and tools beyond the connector's.
pub use rdkafka;
pub use reader::KafkaReader;
pub use serializer::{JsonValue, RawBytes, Serializer, Text};
pub use sink::{KafkaSink, KafkaSinkBuilder, KafkaSinkExt};
pub use sink_spec::{DeliveryGuarantee, OutRecord};
pub use source::{KafkaSource, KafkaSourceBuilder};
pub use source_spec::{Fallback, StartingOffsets};
pub use split::{owner, PartitionSplit};
pub use transaction::KafkaTxn;
