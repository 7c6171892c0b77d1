//! # eddy-files: partitioned, exactly-once file output to S3 or a local directory
//!
//! The file sink writes a stream into *part files* under a base path of an object store,
//! sorted into *buckets* (directories) such as Hive-style `year=2026/month=11/day=29/hour=15`,
//! as JSON lines, CSV or Parquet. It is Flink's `FileSink` for eddy, with Kinesis Data
//! Firehose's custom prefixes and error output prefix:
//!
//! ```
//! use eddy_stream::prelude::*;
//! use eddy_files::{DateTimeBucketAssigner, FileSink, FileSinkExt, Format, PathPattern, Storage};
//!
//! #[derive(Clone, serde::Serialize)]
//! struct Reading { sensor: String, celsius: f64 }
//!
//! let dir = tempfile::tempdir().unwrap();
//! let env = StreamEnvironment::new();
//! let readings = env
//!     .from_iter(vec![(1_764_428_400_000i64, "a", 20.5), (1_764_432_000_000, "b", 19.0)])
//!     .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |r| r.0)
//!     .map(|(_, sensor, celsius)| Reading { sensor: sensor.to_string(), celsius });
//! let sink = FileSink::new(Storage::local(dir.path()).unwrap(), "readings")
//!     .bucket_assigner(DateTimeBucketAssigner::event_time(PathPattern::hive_hourly()))
//!     .format(Format::json_lines());
//! readings.sink_to_files(sink).unwrap().uid("readings-sink");
//! env.execute("readings").unwrap().wait().unwrap();
//!
//! let hour = dir.path().join("readings/year=2025/month=11/day=29/hour=15");
//! let part = std::fs::read_dir(&hour).unwrap().next().unwrap().unwrap().path();
//! assert_eq!(std::fs::read_to_string(part).unwrap(), "{\"sensor\":\"a\",\"celsius\":20.5}\n");
//! ```
//!
//! ## Storage
//!
//! [`Storage::local`] writes to a directory, [`Storage::s3`] to an S3 bucket or an
//! S3-compatible server ([`S3Config`]: endpoint, region, credentials, `allow_http`, timeouts and
//! bounded retries), both through the `object_store` crate; [`Storage::from_url`] takes
//! `s3://BUCKET/PREFIX` or `file:///DIR`.
//!
//! ## Buckets
//!
//! A [`BucketAssigner`] names each record's bucket: [`DateTimeBucketAssigner`] formats the
//! event or processing time through a [`PathPattern`] (strftime, `year=%Y/month=%m`, or
//! Firehose expressions, `year=!{timestamp:yyyy}`) in UTC or any time zone;
//! [`FieldBucketAssigner`] writes `airport=JFK`; any closure works too.
//!
//! ## Formats and rolling
//!
//! [`Format::json_lines`] and [`Format::csv`], optionally compressed (gzip, zstd, snappy), and
//! with the `parquet` feature `Format::parquet` (schema from the record type or given). Each
//! subtask keeps one open part per bucket; the [`RollingPolicy`] closes it at a size, an age or
//! after inactivity, and every checkpoint closes every part.
//!
//! ## Errors are output too
//!
//! A record that the format cannot encode, that the [`FileSink::validator`] rejects, or that
//! has no bucket is written as an [`ErrorRecord`] (JSON lines: the error type, the message, the
//! record) under the error prefix, by default
//! `errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/`, as Firehose does. Nothing
//! is dropped. A failing store (unreachable, refused, full) fails the subtask with an error
//! naming the sink and the object, and the job's restart strategy takes over.
//!
//! ## Exactly once
//!
//! The sink is a two-phase-commit sink. A part is written invisibly — as an S3 multipart
//! upload that is not completed yet, or as a staging object under `<base>/_eddy/` on other
//! stores — and closed at the next checkpoint barrier. When that checkpoint completes, the
//! [`FilesCommitter`] makes it visible (completes the upload, or renames the staging object).
//! After a crash the job restores its last complete checkpoint, commits that checkpoint's
//! parts (again: commits are idempotent) and removes every other invisible part; the replayed
//! records are written anew. A reader that lists the bucket and skips names starting with `_`
//! or `.` (as Hive, Spark, Trino and Athena do) sees every record exactly once, and never a
//! partial part. Without checkpointing, parts become visible at the end of a bounded input.
//!
//! Synchronous subtasks drive the async `object_store` client through one shared tokio
//! runtime ([`io_runtime`]).

pub mod bucket;
mod committer;
mod error;
mod error_record;
pub mod format;
pub mod io_runtime;
mod layout;
mod rolling;
mod s3;
mod sink;
mod storage;
mod txn;
mod upload;
mod writer;

pub use bucket::{
    escape_partition_value, unescape_partition_value, BasePath, BucketAssigner, BucketContext, DateTimeBucketAssigner,
    FieldBucketAssigner, PathPattern, TimeSource,
};
pub use chrono_tz::Tz;
pub use committer::FilesCommitter;
pub use error::{FilesError, LostPart};
pub use error_record::{ErrorOutputType, ErrorRecord};
#[cfg(feature = "parquet")]
pub use format::ParquetFormat;
pub use format::{Compression, Format};
pub use rolling::RollingPolicy;
pub use s3::S3Config;
pub use sink::{FileSink, FileSinkExt, DEFAULT_ERROR_PREFIX};
pub use storage::Storage;
pub use txn::{FilesTxn, StagedPart, Staging};
pub use writer::FileSinkWriter;

/// The Arrow, Parquet and serde-to-Arrow crates the `parquet` feature builds on: for
/// [`ParquetFormat::with_schema`]'s schema, and to read Parquet parts back.
#[cfg(feature = "parquet")]
pub use {arrow_array, arrow_schema, parquet, serde_arrow};
