//! Sending a batch to `_bulk`: one HTTP attempt, and the retry loop around it.
//!
//! Every failure falls in one of three kinds, each with its own remedy:
//!
//! | what happened | remedy |
//! |---|---|
//! | 429 or 5xx for the request or for some items; no connection; a timeout; a body that is not a bulk response | wait ([`RetryPolicy`]) and send what is left again (the ids make it harmless); past the last retry, fail the checkpoint |
//! | an item refused for good (400 mapping error, 404 missing document) | a dead letter; the rest goes on |
//! | the request refused for good (401/403 credentials, 413 too large, …) | fail the checkpoint at once with what to change |

use std::sync::Arc;
use std::time::Duration;

use eddy_core::{BoxError, Timestamp};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};

use crate::batch::BulkBatch;
use crate::response::{outcomes, preview, Outcome};
use crate::{Error, FailedDocument, RetryPolicy};

/// A request about to be sent, for a [`RequestSigner`] to add headers to.
pub struct SignableRequest<'a> {
    /// `POST`.
    pub method: &'a Method,
    /// The full URL, with query.
    pub url: &'a Url,
    /// The headers so far (content type, and authorization if configured); add yours here.
    pub headers: &'a mut HeaderMap,
    /// The exact body that will be sent (for signatures that cover a payload hash).
    pub body: &'a [u8],
}

/// Adds headers to every request just before it is sent, on every attempt: for AWS SigV4 on
/// Amazon OpenSearch Service, a token that expires, or tracing headers. Any
/// `Fn(&mut SignableRequest) -> Result<(), BoxError>` is one.
pub trait RequestSigner: Send + Sync {
    /// Adds or changes headers of `request`; an error fails the attempt (it is retried).
    fn sign(&self, request: &mut SignableRequest<'_>) -> Result<(), BoxError>;
}

impl<F> RequestSigner for F
where
    F: Fn(&mut SignableRequest<'_>) -> Result<(), BoxError> + Send + Sync,
{
    fn sign(&self, request: &mut SignableRequest<'_>) -> Result<(), BoxError> {
        self(request)
    }
}

/// What a batch left behind once every action was applied or refused for good.
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// Dead letters, with the event time of their records.
    pub(crate) failed: Vec<(FailedDocument, Timestamp)>,
    /// `create` actions whose document already existed.
    pub(crate) duplicates: u64,
    /// Retries it took.
    pub(crate) retries: u64,
}

/// Why one attempt failed.
enum AttemptError {
    /// Worth trying again.
    Transient(String),
    /// Trying again will not help.
    Fatal(Error),
}

/// A client for one cluster's `_bulk` endpoint, shared by the sink's subtasks.
pub(crate) struct BulkClient {
    pub(crate) http: reqwest::Client,
    /// The `_bulk` URL, with the refresh parameter if any.
    pub(crate) url: Url,
    /// The URL without credentials, for messages.
    pub(crate) target: String,
    pub(crate) authorization: Option<HeaderValue>,
    pub(crate) signer: Option<Arc<dyn RequestSigner>>,
}

impl BulkClient {
    /// Writes `batch`, retrying what the cluster refused for now, as `policy` allows.
    pub(crate) async fn write(
        self: Arc<Self>,
        batch: BulkBatch,
        policy: RetryPolicy,
        seed: u64,
    ) -> Result<Written, Error> {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut written = Written::default();
        let mut pending = batch;
        let mut retries = 0;
        loop {
            let why = match self.attempt(&pending).await {
                Err(AttemptError::Fatal(error)) => return Err(error),
                Err(AttemptError::Transient(why)) => why,
                Ok(outcomes) => {
                    let mut again = Vec::new();
                    let mut why = String::new();
                    for (i, outcome) in outcomes.into_iter().enumerate() {
                        match outcome {
                            Outcome::Done => {}
                            Outcome::Duplicate => written.duplicates += 1,
                            Outcome::Failed { status, error_type, reason } => {
                                let item = pending.item(i);
                                let timestamp = item.timestamp;
                                written.failed.push((pending.failed(i, status, error_type, reason), timestamp));
                            }
                            Outcome::Retry { status, reason } => {
                                again.push(i);
                                why = format!("HTTP {status} for an item: {reason}");
                            }
                        }
                    }
                    if again.is_empty() {
                        return Ok(written);
                    }
                    pending = pending.subset(&again);
                    format!("{} of the actions were refused for now, the last with {why}", again.len())
                }
            };
            if retries >= policy.max_retries {
                return Err(Error::RetriesExhausted { target: self.target.clone(), attempts: retries + 1, last: why });
            }
            tokio::time::sleep(policy.delay(retries, &mut rng)).await;
            retries += 1;
            written.retries += 1;
        }
    }

    /// Sends `batch` once and reads what became of each action.
    async fn attempt(&self, batch: &BulkBatch) -> Result<Vec<Outcome>, AttemptError> {
        let mut request = reqwest::Request::new(Method::POST, self.url.clone());
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
        if let Some(authorization) = &self.authorization {
            headers.insert(AUTHORIZATION, authorization.clone());
        }
        if let Some(signer) = &self.signer {
            let (method, url) = (request.method().clone(), request.url().clone());
            let mut signable =
                SignableRequest { method: &method, url: &url, headers: request.headers_mut(), body: batch.body() };
            signer
                .sign(&mut signable)
                .map_err(|e| AttemptError::Transient(Error::Signer(e.to_string()).to_string()))?;
        }
        *request.body_mut() = Some(batch.body().to_vec().into());
        let response = self.http.execute(request).await.map_err(|e| AttemptError::Transient(chain(&e)))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| AttemptError::Transient(chain(&e)))?;
        match status {
            StatusCode::OK => {
                let operations: Vec<_> = (0..batch.len()).map(|i| batch.item(i).operation).collect();
                outcomes(&body, &operations).map_err(AttemptError::Transient)
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(AttemptError::Fatal(Error::Unauthorized { target: self.target.clone(), status: status.as_u16() }))
            }
            s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
                Err(AttemptError::Transient(format!("HTTP {}: {}", s.as_u16(), preview(&body))))
            }
            s => Err(AttemptError::Fatal(Error::Refused {
                target: self.target.clone(),
                status: s.as_u16(),
                body: preview(&body),
            })),
        }
    }
}

/// An error with its causes (`error sending request: connection refused`): reqwest's own
/// message leaves out the cause that says what to fix.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// How long one attempt may take, by default.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
