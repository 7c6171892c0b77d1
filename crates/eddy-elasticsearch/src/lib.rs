//! An Elasticsearch sink for eddy: records become bulk actions, sent through the `_bulk`
//! API in batches, retried with backoff when the cluster is busy, with refused documents on
//! a dead-letter stream instead of failing the job.
//!
//! # Writing a stream to an index
//!
//! Build an [`ElasticsearchSink`] from the cluster's URL and a function that turns a record
//! into an [`Action`], then end the stream with
//! [`sink_to_elasticsearch`](ElasticsearchSinkExt::sink_to_elasticsearch):
//!
//! ```no_run
//! use std::time::Duration;
//! use eddy_stream::prelude::*; // `eddy::prelude::*` in an application
//! use eddy_elasticsearch::{Action, ElasticsearchSink, ElasticsearchSinkExt};
//!
//! #[derive(Clone, serde::Serialize)]
//! struct PageViews { page: String, minute: i64, views: u64 }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sink = ElasticsearchSink::builder("http://127.0.0.1:9200", |v: &PageViews| {
//!     // One index per day, and an id that names the result: a replay overwrites it.
//!     let day = v.minute / 86_400_000;
//!     Action::index(format!("views-{day}"), v).map(|a| a.id(format!("{}@{}", v.page, v.minute)))
//! })
//! .basic_auth("elastic", "changeme")
//! .bulk_flush_max_actions(500)
//! .build()?;
//!
//! let env = StreamEnvironment::new();
//! env.enable_checkpointing(CheckpointConfig::every(Duration::from_secs(10)));
//! let views = env.from_iter(vec![PageViews { page: "/".into(), minute: 0, views: 3 }]);
//! let failed = views.sink_to_elasticsearch(sink);
//! failed.write_text("failed-documents.jsonl"); // one JSON line per refused document
//! env.execute("page views")?.wait()?;
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - **At-least-once delivery.** At each checkpoint barrier a subtask sends what it holds and
//!   waits until the cluster has answered every request; only then does the barrier pass, so
//!   a completed checkpoint covers every record before it. A request that still fails after
//!   its retries fails the checkpoint (and the job attempt); the restart strategy replays
//!   from the last completed checkpoint. Without checkpointing, everything is sent by the
//!   end of input.
//! - **Exactly-once results** with ids derived from the records: a replayed `index`
//!   overwrites the same document, a replayed `create` finds it there (counted as a
//!   duplicate), a replayed upsert or delete changes nothing. This is what Flink's
//!   documentation recommends for Elasticsearch, which has no transactions.
//! - **Bounded memory.** A subtask holds one batch (at most `bulk_flush_max_actions` actions
//!   or about `bulk_flush_max_bytes`) and `max_in_flight_requests` requests; when they are
//!   all out it waits, its input channel fills, and the whole job slows to the cluster's pace.
//!
//! # Failures
//!
//! | what | what the sink does |
//! |---|---|
//! | 429, 5xx, no connection, timeout, a body that is not a bulk response | retries with exponential backoff and jitter ([`RetryPolicy`]); then fails the checkpoint |
//! | an item refused with 429 or 5xx | retries that item alone, the same way |
//! | an item refused for good (400 mapping error, 404 missing document) | a [`FailedDocument`] on the dead-letter stream; the job goes on |
//! | a record whose action function returns an error | a [`FailedDocument`] with `error_type` `action_error` |
//! | 401/403, 413 or another request-level refusal | fails the checkpoint at once, saying what to change |
//!
//! Every error names the sink's operator and the `_bulk` URL it writes to.
//!
//! # Threads
//!
//! Each sink subtask runs on its own thread like every eddy operator; the HTTP requests run
//! on one tokio runtime shared by all connectors ([`eddy_runtime::io_runtime`]), and the subtask thread
//! only waits for them when it must.

mod action;
mod batch;
mod client;
mod config;
mod error;
mod failed;
mod response;
mod retry;
mod sink_ext;
mod writer;

pub use action::{Action, Operation};
pub use client::{RequestSigner, SignableRequest};
pub use config::{ElasticsearchSink, ElasticsearchSinkBuilder, Refresh};
pub use error::Error;
pub use failed::{FailedDocument, ACTION_ERROR};
pub use retry::RetryPolicy;
pub use sink_ext::ElasticsearchSinkExt;
pub use writer::{BULK_REQUESTS, BULK_RETRIES, DEAD_LETTERS, DUPLICATES};

/// Header names and values, for a [`RequestSigner`].
pub use reqwest::header;
