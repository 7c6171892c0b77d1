//! # eddy: stateful stream processing, embedded in your Rust service
//!
//! eddy runs Flink-style dataflows inside your own process: a typed DataStream API builds
//! an operator graph, and a multi-threaded runtime executes it with operator chaining,
//! bounded channels (backpressure), event time and watermarks, and keyed windows.
//!
//! `use eddy::prelude::*;` is all a job needs:
//!
//! ```
//! use std::time::Duration;
//! use eddy::prelude::*;
//!
//! let env = StreamEnvironment::new();
//! let lines = vec![(0i64, "to be or not"), (1_000, "to be"), (7_000, "be quick")];
//! let counts = env
//!     .from_iter(lines)
//!     .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |line| line.0)
//!     .flat_map(|(_, text)| text.split(' ').map(String::from).collect::<Vec<_>>())
//!     .key_by(|word: &String| word.clone())
//!     .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
//!     .aggregate_with(Count, |word, window, n| format!("{},{},{word},{n}", window.start, window.end))
//!     .collect();
//! env.execute("word count").unwrap().wait().unwrap();
//! let mut lines = counts.take();
//! lines.sort();
//! assert_eq!(lines[0], "0,5000,be,2");
//! ```
//!
//! Turn on checkpoints and the same job survives failures with exactly-once state, and can
//! be stopped with a savepoint and restored at another parallelism (every stateful operator
//! then needs a `uid`):
//!
//! ```
//! use std::time::Duration;
//! use eddy::prelude::*;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let env = StreamEnvironment::new();
//! env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(100)));
//! let sums = env.generate(None, |i| (i % 3, 1u64)).uid("numbers")
//!     .key_by(|n| n.0).sum(|n| &mut n.1).uid("sums")
//!     .collect();
//! let job = env.execute("sums").unwrap();
//! let savepoint = job.stop_with_savepoint(dir.path().join("sp"), false).unwrap();
//! job.wait().unwrap();
//!
//! let env = StreamEnvironment::new();
//! env.set_parallelism(3);
//! env.enable_checkpointing(CheckpointConfig::on_request());
//! env.restore_from(&savepoint); // the running sums go on where they stopped
//! # drop(sums);
//! ```
//!
//! ## Inside an async service
//!
//! The environment and the handle are `Send`; a job takes records from the application's
//! channels and hands results back through channels, streams or callbacks; the handle is
//! awaited without blocking the runtime, reports its status, drains with `stop`, and answers
//! reads of its keyed state while it runs (see `docs/embedding.md`):
//!
//! ```
//! use eddy::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> eddy::Result<()> {
//! let (orders, incoming) = tokio::sync::mpsc::channel::<(String, u64)>(1024);
//! let (results, mut totals) = tokio::sync::mpsc::channel(1024);
//! let env = StreamEnvironment::new();
//! env.from_channel(incoming)                       // a full job pushes back on `orders`
//!     .key_by(|order: &(String, u64)| order.0.clone())
//!     .sum(|order| &mut order.1)                   // each customer's running total
//!     .uid("totals")
//!     .into_channel(results);
//! let job = env.execute("orders")?;
//! orders.send(("ada".into(), 30)).await.unwrap();
//! orders.send(("ada".into(), 12)).await.unwrap();
//! assert_eq!(totals.recv().await, Some(("ada".to_string(), 30)));
//! assert_eq!(totals.recv().await, Some(("ada".to_string(), 42)));
//! drop(orders);                                    // the end of the input: the job finishes
//! let result = job.await?;                         // never blocks the runtime's thread
//! assert_eq!(result.metrics.counter("Sink: Channel", "records_written"), Ok(2));
//! # Ok(()) }
//! ```
//!
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tokio` | yes | async Rust integration: `from_channel` over tokio channels, `from_stream`, `into_sink`, `collect_stream`, `map_async`, and the shared I/O runtime (compiles tokio and futures-util) |
//! | `kafka` | no | `eddy::kafka`: a Kafka source (partitions as splits, offsets in checkpoints) and a sink with exactly-once transactional output (compiles rdkafka, which builds librdkafka from C) |
//! | `cluster` | no | `eddy::cluster`: a job spread over several processes, Kafka Streams style: a consumer group assigns tasks, repartition topics join sub-topologies, task state is checkpointed to S3 or a shared directory (compiles rdkafka and object_store) |
//! | `kinesis` | no | `eddy::kinesis`: a Kinesis Data Streams source (shards as splits, sequence numbers in checkpoints; compiles the AWS SDK, Rust 1.94.1 or newer) |
//! | `elasticsearch` | no | `eddy::elasticsearch`: a `_bulk` sink (compiles reqwest with rustls) |
//! | `files` | no | `eddy::files`: the partitioned file sink, exactly-once part files in S3 or a local directory as JSON lines or CSV (compiles object_store; Rust 1.88 or newer) |
//! | `metrics-http` | no | `eddy::metrics_http` and `env.serve_metrics(addr)`: Prometheus text at `/metrics` and a JSON REST API of jobs, vertices and checkpoints (compiles axum) |
//! | `parquet` | no | Parquet output for the file sink; turns on `files` (compiles arrow and parquet, the slowest to build) |
//!
//! Without default features (`default-features = false`) neither tokio nor futures is
//! compiled; crossbeam channels in and out, callbacks, and awaiting a `JobHandle` (a plain
//! `Future`, polled by any executor) still work. sled is always compiled: checkpoints and
//! savepoints are sled databases, whichever state backend a job uses.
//!
//! The layers, each its own crate: [`core`] (records, time, keys, errors), [`runtime`]
//! (planner, threads, channels, checkpoints), [`stream`] (the API and operators); keyed state,
//! queryable state and the snapshot format live in `eddy-state`. Connectors are crates behind
//! the features above. Guides are in the repository's `docs/`.

/// Scale-out over several processes on Kafka and an object store (feature `cluster`).
#[cfg(feature = "cluster")]
pub use eddy_cluster as cluster;
pub use eddy_core as core;
/// The Elasticsearch sink (feature `elasticsearch`).
#[cfg(feature = "elasticsearch")]
pub use eddy_elasticsearch as elasticsearch;
/// The partitioned file sink: exactly-once part files in S3 or a local directory, as JSON
/// lines, CSV or (feature `parquet`) Parquet. Feature `files`.
#[cfg(feature = "files")]
pub use eddy_files as files;
/// Kafka source and sink (feature `kafka`).
#[cfg(feature = "kafka")]
pub use eddy_kafka as kafka;
/// The Kinesis Data Streams source (feature `kinesis`).
#[cfg(feature = "kinesis")]
pub use eddy_kinesis as kinesis;
/// The metrics endpoint: Prometheus text and a JSON REST API (feature `metrics-http`).
#[cfg(feature = "metrics-http")]
pub use eddy_metrics_http as metrics_http;
pub use eddy_runtime as runtime;
pub use eddy_stream as stream;

pub use eddy_core::{Error, Result};
pub use eddy_stream::*;

/// Everything a job definition needs: `use eddy::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "metrics-http")]
    pub use eddy_metrics_http::ServeMetrics;
    pub use eddy_stream::prelude::*;
}

/// The embedding guide's examples compile.
#[doc = include_str!("../docs/embedding.md")]
#[cfg(doctest)]
pub struct EmbeddingGuideDoctests;

/// The README's example compiles (it reads a file, so it is not run).
#[doc = include_str!("../docs/observability.md")]
#[cfg(doctest)]
pub struct ObservabilityGuideDoctests;

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
