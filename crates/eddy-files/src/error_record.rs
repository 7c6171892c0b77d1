//! Error records: what the error prefix holds for a record the sink could not write as data.
//!
//! Like Kinesis Data Firehose's error output, each failed record is one JSON line with the
//! error's type (also a directory in the path, `!{firehose:error-output-type}`), its message,
//! and the record itself as JSON, so nothing is dropped and the record can be replayed.

use serde::{Deserialize, Serialize};

/// Why a record went to the error prefix; its name is the `error-output-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorOutputType {
    /// The format could not encode it (`format-conversion-failed`, as Firehose says).
    FormatConversionFailed,
    /// The sink's validator rejected it (`processing-failed`).
    ProcessingFailed,
    /// The bucket assigner could not place it, e.g. no event time (`bucket-assignment-failed`).
    BucketAssignmentFailed,
}

impl ErrorOutputType {
    /// The name used in paths and in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorOutputType::FormatConversionFailed => "format-conversion-failed",
            ErrorOutputType::ProcessingFailed => "processing-failed",
            ErrorOutputType::BucketAssignmentFailed => "bucket-assignment-failed",
        }
    }
}

/// One line of an error part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// `format-conversion-failed`, `processing-failed` or `bucket-assignment-failed`.
    pub error_output_type: String,
    /// What went wrong.
    pub error_message: String,
    /// The record's event time (ms since the epoch), if it had one.
    pub event_time: Option<i64>,
    /// When the sink handled it (ms since the epoch).
    pub processing_time: i64,
    /// The record as JSON; `null` if even that failed (the message then says why).
    pub record: serde_json::Value,
}

impl ErrorRecord {
    /// The error record of `value`.
    pub(crate) fn new<T: Serialize>(
        kind: ErrorOutputType,
        message: String,
        value: &T,
        event_time: Option<i64>,
        processing_time: i64,
    ) -> Self {
        let (record, error_message) = match serde_json::to_value(value) {
            Ok(record) => (record, message),
            Err(e) => (serde_json::Value::Null, format!("{message}; the record cannot be shown as JSON either: {e}")),
        };
        ErrorRecord { error_output_type: kind.as_str().to_string(), error_message, event_time, processing_time, record }
    }
}
