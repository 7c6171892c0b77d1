//! Setting up a sink: where the cluster is, how records become actions, how big a bulk
//! request grows, how many may be in flight, how to retry, and how to authenticate.
//!
//! [`ElasticsearchSink::builder`] takes the cluster's URL and the function that turns a
//! record into an [`Action`]; everything else has a default. [`ElasticsearchSinkBuilder::build`]
//! checks every setting at once, so a typo is an error before the job starts, not a failure
//! in the middle of it.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use eddy_core::BoxError;
use reqwest::header::HeaderValue;
use reqwest::Url;

use crate::client::{BulkClient, RequestSigner, DEFAULT_REQUEST_TIMEOUT};
use crate::{Action, Error, RetryPolicy};

/// Turns a record into its bulk action; an error makes the record a dead letter.
pub(crate) type ActionFn<T> = Arc<dyn Fn(&T) -> Result<Action, BoxError> + Send + Sync>;

/// When Elasticsearch makes written documents visible to search (its `refresh` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Refresh {
    /// On the index's refresh interval (the default, and the fastest).
    #[default]
    Interval,
    /// Refresh the affected shards before answering (`refresh=true`): for tests and demos.
    Immediately,
    /// Answer once a refresh has made the documents visible (`refresh=wait_for`).
    WaitFor,
}

/// When a batch is sent: whichever limit is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BulkLimits {
    pub(crate) max_actions: usize,
    pub(crate) max_bytes: usize,
    /// `None`: only when full, at checkpoints and at the end of input.
    pub(crate) interval: Option<Duration>,
}

/// A configured Elasticsearch sink for records of type `T`; send a stream to it with
/// [`crate::ElasticsearchSinkExt::sink_to_elasticsearch`].
pub struct ElasticsearchSink<T> {
    pub(crate) client: Arc<BulkClient>,
    pub(crate) action: ActionFn<T>,
    pub(crate) limits: BulkLimits,
    pub(crate) max_in_flight: usize,
    pub(crate) retry: RetryPolicy,
}

impl<T> Clone for ElasticsearchSink<T> {
    fn clone(&self) -> Self {
        ElasticsearchSink {
            client: self.client.clone(),
            action: self.action.clone(),
            limits: self.limits,
            max_in_flight: self.max_in_flight,
            retry: self.retry,
        }
    }
}

impl<T> ElasticsearchSink<T> {
    /// A sink writing to the cluster at `url` (`http://host:9200`, or `https://…`, with a
    /// path prefix if a proxy needs one); `action` turns each record into its bulk action.
    pub fn builder<F, E>(url: impl Into<String>, action: F) -> ElasticsearchSinkBuilder<T>
    where
        F: Fn(&T) -> Result<Action, E> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        ElasticsearchSinkBuilder {
            url: url.into(),
            action: Arc::new(move |record: &T| action(record).map_err(Into::into)),
            limits: BulkLimits { max_actions: 1000, max_bytes: 5 << 20, interval: Some(Duration::from_secs(1)) },
            max_in_flight: 1,
            retry: RetryPolicy::default(),
            credentials: None,
            ca_certificates: Vec::new(),
            accept_invalid_certificates: false,
            signer: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            refresh: Refresh::default(),
        }
    }

    /// The `_bulk` URL it sends to (without credentials).
    pub fn target(&self) -> &str {
        &self.client.target
    }
}

enum Credentials {
    Basic { user: String, password: String },
    ApiKey(String),
}

/// Settings of an [`ElasticsearchSink`]; [`ElasticsearchSinkBuilder::build`] checks them.
pub struct ElasticsearchSinkBuilder<T> {
    url: String,
    action: ActionFn<T>,
    limits: BulkLimits,
    max_in_flight: usize,
    retry: RetryPolicy,
    credentials: Option<Credentials>,
    ca_certificates: Vec<Vec<u8>>,
    accept_invalid_certificates: bool,
    signer: Option<Arc<dyn RequestSigner>>,
    request_timeout: Duration,
    refresh: Refresh,
}

impl<T> ElasticsearchSinkBuilder<T> {
    /// Send a batch once it holds this many actions (default 1000, as Flink's sink).
    pub fn bulk_flush_max_actions(mut self, actions: usize) -> Self {
        self.limits.max_actions = actions;
        self
    }

    /// Send a batch once its body reaches this many bytes (default 5 MiB, as Flink's sink).
    pub fn bulk_flush_max_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_bytes = bytes;
        self
    }

    /// Send a batch at least this often while records trickle in (default 1 s; `None`: only
    /// when full, at checkpoints and at the end of input).
    pub fn bulk_flush_interval(mut self, interval: Option<Duration>) -> Self {
        self.limits.interval = interval;
        self
    }

    /// Bulk requests a subtask may have in flight before it waits (default 1). More hide
    /// latency; with more than one, two actions on the same id in different requests may
    /// apply out of order.
    pub fn max_in_flight_requests(mut self, requests: usize) -> Self {
        self.max_in_flight = requests;
        self
    }

    /// How 429s, 5xxs, timeouts and lost connections are retried (default: up to 8
    /// retries from 100 ms, doubling, at most 10 s apart).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// HTTP basic authentication (also taken from a URL's `user:password@`).
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::Basic { user: user.into(), password: password.into() });
        self
    }

    /// An Elasticsearch API key (the base64 `encoded` value), sent as `Authorization: ApiKey …`.
    pub fn api_key(mut self, encoded: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::ApiKey(encoded.into()));
        self
    }

    /// Trusts the CA certificates in `pem` (besides the system's): a cluster with its own CA,
    /// as Elasticsearch's security auto-configuration creates.
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificates.push(pem.into());
        self
    }

    /// Accepts any server certificate. Only for a throwaway test cluster: anyone in between
    /// can read and change the traffic.
    pub fn danger_accept_invalid_certificates(mut self, accept: bool) -> Self {
        self.accept_invalid_certificates = accept;
        self
    }

    /// Calls `signer` on every request attempt, after the sink's own headers are set: the
    /// hook for AWS SigV4 (Amazon OpenSearch Service) or any other header.
    pub fn request_signer(mut self, signer: impl RequestSigner + 'static) -> Self {
        self.signer = Some(Arc::new(signer));
        self
    }

    /// How long one request attempt may take before it counts as failed (and is retried);
    /// default 60 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// When written documents become visible to search (default: the index's refresh
    /// interval).
    pub fn refresh(mut self, refresh: Refresh) -> Self {
        self.refresh = refresh;
        self
    }

    /// Checks every setting and builds the HTTP client.
    pub fn build(self) -> Result<ElasticsearchSink<T>, Error> {
        self.check_limits()?;
        self.retry.validate()?;
        let (url, target, url_credentials) = bulk_url(&self.url, self.refresh)?;
        let credentials = self.credentials.or(url_credentials);
        let authorization = credentials.map(|c| authorization(&c)).transpose()?;
        let mut http = reqwest::Client::builder()
            .timeout(self.request_timeout)
            .connect_timeout(self.request_timeout.min(Duration::from_secs(10)))
            .tls_danger_accept_invalid_certs(self.accept_invalid_certificates);
        for pem in &self.ca_certificates {
            let certificates =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| Error::Certificate(e.to_string()))?;
            if certificates.is_empty() {
                return Err(Error::Certificate("no certificate in the PEM text".into()));
            }
            http = certificates.into_iter().fold(http, |http, c| http.add_root_certificate(c));
        }
        let http = http.build().map_err(|e| Error::Client(e.to_string()))?;
        Ok(ElasticsearchSink {
            client: Arc::new(BulkClient { http, url, target, authorization, signer: self.signer }),
            action: self.action,
            limits: self.limits,
            max_in_flight: self.max_in_flight,
            retry: self.retry,
        })
    }

    fn check_limits(&self) -> Result<(), Error> {
        let positive = |value: usize, name: &str| match value {
            0 => Err(Error::InvalidSetting(format!("{name} must be at least 1"))),
            _ => Ok(()),
        };
        positive(self.limits.max_actions, "bulk_flush_max_actions")?;
        positive(self.limits.max_bytes, "bulk_flush_max_bytes")?;
        positive(self.max_in_flight, "max_in_flight_requests")?;
        if self.limits.interval == Some(Duration::ZERO) {
            return Err(Error::InvalidSetting("bulk_flush_interval must be positive (or None)".into()));
        }
        if self.request_timeout.is_zero() {
            return Err(Error::InvalidSetting("request_timeout must be positive".into()));
        }
        Ok(())
    }
}

/// The `_bulk` URL under `base`, the same without credentials (for messages), and the
/// credentials the URL carried.
fn bulk_url(base: &str, refresh: Refresh) -> Result<(Url, String, Option<Credentials>), Error> {
    let invalid = |reason: String| Error::InvalidUrl { url: base.to_string(), reason };
    let mut url = Url::parse(base).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!("the scheme must be http or https, not {:?}", url.scheme())));
    }
    if url.host_str().is_none() {
        return Err(invalid("it has no host".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("give the cluster's base URL, without a query or fragment".into()));
    }
    let credentials = (!url.username().is_empty()).then(|| Credentials::Basic {
        user: decode(url.username()),
        password: decode(url.password().unwrap_or_default()),
    });
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    let mut url = url.join("_bulk").map_err(|e| invalid(e.to_string()))?;
    match refresh {
        Refresh::Interval => {}
        Refresh::Immediately => url.set_query(Some("refresh=true")),
        Refresh::WaitFor => url.set_query(Some("refresh=wait_for")),
    }
    let target = url.as_str().split('?').next().unwrap_or_default().to_string();
    Ok((url, target, credentials))
}

/// Percent-decodes a URL's user or password.
fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

fn authorization(credentials: &Credentials) -> Result<HeaderValue, Error> {
    let text = match credentials {
        Credentials::Basic { user, password } => format!("Basic {}", BASE64.encode(format!("{user}:{password}"))),
        Credentials::ApiKey(key) => format!("ApiKey {key}"),
    };
    let mut value = HeaderValue::from_str(&text)
        .map_err(|_| Error::InvalidSetting("the credentials hold characters an HTTP header cannot carry".into()))?;
    value.set_sensitive(true);
    Ok(value)
}
