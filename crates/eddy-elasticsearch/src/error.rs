//! What can go wrong in the sink, said so a user knows what to change.

/// Errors of the Elasticsearch sink. Those from a running job reach the job's error as the
/// message of an operator failure naming the sink.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The endpoint is not an `http://` or `https://` URL.
    #[error("invalid Elasticsearch URL {url:?}: {reason} (expected e.g. http://127.0.0.1:9200)")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting is out of range; the message says which and why.
    #[error("invalid Elasticsearch sink setting: {0}")]
    InvalidSetting(String),
    /// The CA certificate cannot be used.
    #[error("cannot use the CA certificate: {0} (expected PEM, `-----BEGIN CERTIFICATE-----`)")]
    Certificate(String),
    /// The HTTP client cannot be built with these TLS settings.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// The cluster kept refusing (429, 5xx), could not be reached, or answered garbage, for
    /// every attempt the retry policy allows.
    #[error("bulk request to {target} failed after {attempts} attempts: {last} (raise the retry policy's max_retries, or check the cluster)")]
    RetriesExhausted {
        /// The bulk URL.
        target: String,
        /// Attempts made.
        attempts: u32,
        /// Why the last one failed.
        last: String,
    },
    /// The cluster refused the credentials.
    #[error("{target} refused the credentials (HTTP {status}): check basic_auth / api_key and the user's privileges")]
    Unauthorized {
        /// The bulk URL.
        target: String,
        /// 401 or 403.
        status: u16,
    },
    /// The cluster refused the whole request for a reason a retry does not fix.
    #[error("{target} refused the bulk request with HTTP {status}: {body}")]
    Refused {
        /// The bulk URL.
        target: String,
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The request signer returned an error.
    #[error("the request signer failed: {0}")]
    Signer(String),
}
