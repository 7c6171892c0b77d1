//! # eddy-kinesis: read Amazon Kinesis Data Streams into an eddy job
//!
//! A [`KinesisSource`] reads one stream. Give it to `env.from_source` with a watermark
//! strategy, which then runs once per shard:
//!
//! ```no_run
//! use std::time::Duration;
//! use eddy_kinesis::{Json, KinesisSource, StartingPosition};
//! use eddy_stream::prelude::*;
//!
//! #[derive(Clone, Debug, serde::Deserialize)]
//! struct Ride { driver: String, fare_cents: u64 }
//!
//! let rides = KinesisSource::builder("rides")
//!     .region("eu-west-1") // or AWS_REGION; credentials from AWS_ACCESS_KEY_ID/…
//!     .starting_position(StartingPosition::TrimHorizon)
//!     .deserializer(Json::<Ride>::new())
//!     .build()?;
//! let env = StreamEnvironment::new();
//! env.enable_checkpointing(CheckpointConfig::every(Duration::from_secs(10)));
//! let rides = env
//!     .from_source(rides, WatermarkStrategy::bounded_out_of_orderness(Duration::from_secs(5))
//!         .with_idleness(Duration::from_secs(60)), "rides")
//!     .uid("rides");
//! let unreadable = rides.dead_letters::<RawRecord>(); // stream/shard, sequence number, why
//! let fares = rides
//!     .key_by(|r: &Ride| r.driver.clone())
//!     .window(TumblingEventTimeWindows::of(Duration::from_secs(60)))
//!     .aggregate_with(Count, |driver, window, n| (driver.clone(), window.start, n));
//! # let _ = (unreadable, fares);
//! env.execute("fares")?.wait()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What it does
//!
//! - **Shards are splits.** Each subtask reads the shards [`owner`] gives it, a pure function
//!   of the shard's number and the parallelism, and registers each as a split: it has its
//!   own watermark generator (the subtask emits the minimum over its shards; with
//!   `with_idleness` a quiet shard stops holding it back) and its own metrics, named by the
//!   shard: `shardId-000000000003.records_in`, `.bytes_in`, `.lag_ms` (`millisBehindLatest`
//!   of the last `GetRecords`).
//! - **Sequence numbers in checkpoints.** A checkpoint records, per shard, the sequence
//!   number of the last record that went downstream (or that the shard was read to its end).
//!   A restore rewinds each shard there, at any parallelism: every subtask sees the whole
//!   list and keeps the shards [`owner`] gives it. Records reach eddy's state exactly once;
//!   what leaves the job depends on the sink (a transactional sink keeps it exactly once).
//! - **Resharding, parent first.** Each subtask lists the shards every
//!   `shard_discovery_interval` and picks up new ones. A shard made by a split or a merge
//!   starts only once its parents are read to their end, on whichever subtask reads them, so
//!   a partition key's records leave the source in the order they were written (see
//!   *Resharding* below).
//! - **Throttling.** At most one `GetRecords` call per shard is in flight, at most one every
//!   `get_records_interval` (200 ms: Kinesis allows five a second per shard). A throttled or
//!   failed call backs off that shard alone on the [`Backoff`] schedule; the job fails with a
//!   clear error when the refusals outlast its retries.
//! - **Event time** is the record's `ApproximateArrivalTimestamp`, or what
//!   [`KinesisSourceBuilder::timestamps`] extracts.
//! - **Dead letters.** A record the [`Deserializer`] rejects goes to
//!   `dead_letters::<RawRecord>()` with `split` = `<stream>/<shard>`, `position` = its
//!   sequence number, its partition key, payload, arrival time and the reason.
//! - **Bounded mode** ([`KinesisSourceBuilder::bounded`]): read what arrived before the job
//!   started, then end (backfills, tests).
//!
//! ## Resharding
//!
//! The subtasks of one run of a job share a set of finished shards. When a reader has read a
//! closed shard to its end (and its last records went downstream), it marks the shard there,
//! with the newest checkpoint it had passed; the reader of a child starts once all the
//! child's parents are marked and it has passed that checkpoint itself. So no checkpoint holds
//! a started child next to an unfinished parent. As in Flink's Kinesis source, order holds in
//! what the source emits; a downstream operator that reads the parent's subtask and the
//! child's subtask over two channels sees each channel in order.
//!
//! ## Threads
//!
//! The AWS SDK is async; eddy's source subtasks are threads. eddy's one shared I/O runtime
//! (`eddy_runtime::io_runtime`, threads `eddy-io-N`, also used by the other connectors) runs
//! every reader's calls: a reader starts a call per due shard and takes the answers from a channel, waiting at most 50 ms, so a slow shard
//! never stalls the others, checkpoints or cancellation.
//!
//! ## Connecting
//!
//! | setting | builder | environment (when not set) |
//! |---|---|---|
//! | endpoint | `endpoint(url)` | `AWS_ENDPOINT_URL_KINESIS`, `AWS_ENDPOINT_URL`, else AWS' own for the region |
//! | region | `region(name)` | `AWS_REGION`, `AWS_DEFAULT_REGION` |
//! | credentials | `credentials(key, secret)`, `credentials_provider(p)` | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` |
//!
//! Profiles, SSO and instance or container roles need `aws-config`, which would add the STS
//! and SSO clients to every build of this crate: a program that wants them makes a provider
//! with `aws-config` and passes it to `credentials_provider`. A wrong stream, endpoint or
//! credentials fails the job when it starts, with an error that names the stream and says
//! what to check.

mod assignment;
mod backoff;
mod calls;
mod connection;
mod deserializer;
mod error;
mod parent_first;
mod reader;
mod record;
mod settings;
mod shard;
mod source;
mod split_state;
mod starting_position;

pub use assignment::owner;
pub use backoff::Backoff;
pub use deserializer::{Bytes, Deserializer, FnDeserializer, Json, Utf8};
pub use error::KinesisError;
pub use reader::KinesisReader;
pub use record::KinesisRecord;
pub use source::{KinesisSource, KinesisSourceBuilder};
pub use starting_position::StartingPosition;
