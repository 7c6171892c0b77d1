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
//! The layers, each its own crate: [`core`] (records, time, keys, errors), [`runtime`]
//! (planner, threads, channels, checkpoints), [`stream`] (the API and operators); keyed state
//! and the snapshot format live in `eddy-state`. Connectors are crates behind features:
//! `elasticsearch` (`eddy::elasticsearch`, a `_bulk` sink), `kafka` (`eddy::kafka`, a source
//! with offsets in checkpoints and a sink with exactly-once transactional output), `kinesis`
//! (`eddy::kinesis`, a Kinesis Data Streams source), `files` (`eddy::files`, the partitioned
//! file sink for S3 and local directories) and `parquet` (its Parquet format). Guides are in
//! the repository's `docs/`.

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
pub use eddy_runtime as runtime;
pub use eddy_stream as stream;

pub use eddy_core::{Error, Result};
pub use eddy_stream::*;

/// Everything a job definition needs: `use eddy::prelude::*;`.
pub mod prelude {
    pub use eddy_stream::prelude::*;
}

/// The README's example compiles (it reads a file, so it is not run).
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
