//! Dead letters of the sink: actions Elasticsearch refused for good, with the document and
//! the reason, on the stream [`crate::ElasticsearchSinkExt::sink_to_elasticsearch`] returns.
//!
//! A mapping conflict or a malformed document fails the same way on every retry, so the sink
//! does not retry it and does not stop the job for it: like Kinesis Data Firehose, which
//! writes such records under its `elasticsearch-failed/` prefix, it hands them on, and the
//! job routes them wherever it keeps its errors (a file, another index). Each one is a JSON
//! line when displayed.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Operation;

/// An action that will never succeed as it is, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedDocument {
    /// The operation that was refused; `None` when the record could not be turned into one.
    pub action: Option<Operation>,
    /// The target index (empty when the action could not be built).
    pub index: String,
    /// The document id, if there was one.
    pub id: Option<String>,
    /// The body line as sent (the document, or `{"doc":…}` for updates); `None` for deletes
    /// and for records whose action could not be built.
    pub document: Option<String>,
    /// The item's HTTP status (400 for mapping errors); `None` when nothing was sent.
    pub status: Option<u16>,
    /// Elasticsearch's error type (`document_parsing_exception`, …), or `action_error` when
    /// the record could not be turned into an action.
    pub error_type: String,
    /// The reason, as Elasticsearch or the action function gave it.
    pub reason: String,
}

/// The `error_type` of records whose action function returned an error.
pub const ACTION_ERROR: &str = "action_error";

impl fmt::Display for FailedDocument {
    /// One JSON line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&json)
    }
}
