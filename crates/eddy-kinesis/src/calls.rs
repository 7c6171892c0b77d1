//! The three Kinesis calls the reader makes (`ListShards`, `GetShardIterator`, `GetRecords`)
//! and what their failures mean: retry later, fetch a new iterator, or stop the job.

use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::{Record, ShardIteratorType};
use aws_sdk_kinesis::Client;

use crate::shard::ShardInfo;
use crate::split_state::Position;

/// What a failed call means for the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Throttled, unavailable, timed out or disconnected: retry after a backoff.
    Retry,
    /// The shard iterator expired (not used for 5 minutes): get a new one from the position.
    Expired,
    /// Retrying will not help.
    Fatal,
}

/// A failed call: what it means, and the service's or client's words.
#[derive(Debug, Clone)]
pub(crate) struct CallError {
    pub failure: Failure,
    /// The service's error code (`ResourceNotFoundException`), when it answered.
    pub code: Option<String>,
    /// The HTTP status of the service's answer, when it answered.
    pub status: Option<u16>,
    pub message: String,
}

impl CallError {
    /// What to check for errors whose cause is known.
    pub fn hint(&self) -> &'static str {
        if matches!(self.status, Some(401 | 403)) {
            return " (check the credentials, and that they may read the stream)";
        }
        match self.code.as_deref() {
            Some("ResourceNotFoundException") => " (check the stream name, the region and the endpoint)",
            Some(
                "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "AccessDeniedException"
                | "ExpiredTokenException"
                | "InvalidClientTokenId"
                | "IncompleteSignature"
                | "MissingAuthenticationToken",
            ) => " (check the credentials, and that they may read the stream)",
            None if self.failure == Failure::Retry => " (check that the endpoint is right and reachable)",
            _ => "",
        }
    }
}

/// Codes that mean "too much, too fast" or "not now": retried after a backoff.
const RETRIED: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "KMSThrottlingException",
    "ThrottlingException",
    "Throttling",
    "InternalFailure",
    "InternalFailureException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

fn classify<E>(error: SdkError<E, HttpResponse>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = error.code().map(str::to_string);
    let status = error.raw_response().map(|r| r.status().as_u16());
    let failure = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Failure::Retry,
        SdkError::ServiceError(_) => match code.as_deref() {
            Some("ExpiredIteratorException") => Failure::Expired,
            Some(code) if RETRIED.contains(&code) => Failure::Retry,
            _ if status.is_some_and(|s| s >= 500) => Failure::Retry,
            _ => Failure::Fatal,
        },
        _ => Failure::Fatal,
    };
    let message = match (&code, error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.clone(),
        _ => chain(&error),
    };
    let message = match status {
        Some(status) => format!("{message} (HTTP {status})"),
        None => message,
    };
    CallError { failure, code, status, message }
}

/// An error and its causes, each said once: `dispatch failure: io error: … Connection refused`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let words = cause.to_string();
        if !text.contains(&words) {
            text = format!("{text}: {words}");
        }
        source = cause.source();
    }
    text
}

/// Every shard of `stream`, following `NextToken` pages.
pub(crate) async fn list_shards(client: Client, stream: String) -> Result<Vec<ShardInfo>, CallError> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    loop {
        // With a token, the stream must not be named again.
        let request = match &token {
            Some(token) => client.list_shards().next_token(token),
            None => client.list_shards().stream_name(&stream),
        };
        let page = request.send().await.map_err(classify)?;
        shards.extend(page.shards().iter().map(ShardInfo::from_sdk));
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(shards),
        }
    }
}

/// Where a `GetRecords` call starts: an iterator from the last call, or a position.
#[derive(Debug, Clone)]
pub(crate) enum Start {
    Iterator(String),
    Position(Position),
}

/// One `GetRecords` answer.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub records: Vec<Record>,
    /// `None` once a closed shard has been read to its end.
    pub next_iterator: Option<String>,
    pub millis_behind_latest: Option<i64>,
}

/// Reads up to `limit` records of `shard` from `start`.
pub(crate) async fn get_records(
    client: Client,
    stream: String,
    shard: String,
    start: Start,
    limit: i32,
) -> Result<Fetched, CallError> {
    let iterator = match start {
        Start::Iterator(iterator) => iterator,
        Start::Position(position) => {
            let request = client.get_shard_iterator().stream_name(&stream).shard_id(&shard);
            let request = match position {
                Position::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
                Position::AtTimestamp(ms) => {
                    request.shard_iterator_type(ShardIteratorType::AtTimestamp).timestamp(DateTime::from_millis(ms))
                }
                Position::After(sequence) => request
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .starting_sequence_number(sequence),
                Position::Finished => {
                    return Ok(Fetched { records: Vec::new(), next_iterator: None, millis_behind_latest: Some(0) })
                }
            };
            let answer = request.send().await.map_err(classify)?;
            match answer.shard_iterator() {
                Some(iterator) => iterator.to_string(),
                None => return Ok(Fetched { records: Vec::new(), next_iterator: None, millis_behind_latest: Some(0) }),
            }
        }
    };
    let answer = client.get_records().shard_iterator(iterator).limit(limit).send().await.map_err(classify)?;
    Ok(Fetched {
        next_iterator: answer.next_shard_iterator().map(str::to_string),
        millis_behind_latest: answer.millis_behind_latest(),
        records: answer.records,
    })
}
