//! The crate's errors, each naming what was wrong and where.

use crate::io_runtime::RuntimeError;

/// What went wrong setting up or running a file sink.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A setting is invalid; the message says which and what to change.
    #[error("{0}")]
    Config(String),
    /// A path pattern does not parse.
    #[error("invalid path pattern {pattern:?}: {reason}")]
    Pattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it and what is allowed.
        reason: String,
    },
    /// The object store refused or failed a request.
    #[error("file sink {target}: cannot {action}: {source}")]
    Store {
        /// The sink's storage and base path, e.g. `s3://bucket/prefix`.
        target: String,
        /// What the sink was doing, with the object's key.
        action: String,
        /// The store's own error.
        #[source]
        source: object_store::Error,
    },
    /// A part's bytes could not be produced (compression or format encoder failure).
    #[error("file sink {target}: cannot write {key}: {reason}")]
    Write {
        /// The sink's storage and base path.
        target: String,
        /// The part's key.
        key: String,
        /// The underlying failure.
        reason: String,
    },
    /// Committed output is not where a transaction says it should be.
    #[error("file sink {target}: {detail}")]
    Lost {
        /// The sink's storage and base path.
        target: String,
        /// What is missing.
        detail: LostPart,
    },
    /// The shared I/O runtime could not start.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// A pre-committed part that is neither staged nor visible: its records are lost.
#[derive(Debug, thiserror::Error)]
#[error("part {key} of checkpoint {checkpoint} (subtask {subtask}) is neither staged nor committed: its {records} records are lost")]
pub struct LostPart {
    /// The part's visible key.
    pub key: String,
    /// The checkpoint whose transaction holds it.
    pub checkpoint: u64,
    /// The subtask that wrote it.
    pub subtask: usize,
    /// How many records it held.
    pub records: u64,
}
