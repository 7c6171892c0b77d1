//! Settings for S3 and S3-compatible stores (MinIO, moto, s3s, Ceph…).

use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use crate::FilesError;

/// Where and how to reach an S3 bucket. Start from [`S3Config::from_env`] to pick up the usual
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` and
/// `AWS_ENDPOINT` variables, or from [`S3Config::new`] to set everything yourself.
///
/// Requests time out and are retried with exponential backoff a bounded number of times, so an
/// unreachable endpoint fails the sink (and the job's restart strategy takes over) instead of
/// hanging it.
///
/// ```
/// use eddy_files::S3Config;
///
/// let local = S3Config::new("results")
///     .endpoint("http://127.0.0.1:9000")
///     .allow_http(true)
///     .credentials("minio", "minio-secret");
/// # let _ = local;
/// ```
#[derive(Debug, Clone)]
pub struct S3Config {
    bucket: String,
    from_env: bool,
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    allow_http: bool,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_retries: usize,
    retry_timeout: Duration,
}

/// Regions matter for signing only; S3-compatible servers accept this one.
const DEFAULT_REGION: &str = "us-east-1";

impl S3Config {
    /// The bucket `bucket`, configured only by what is set on the returned value.
    pub fn new(bucket: &str) -> Self {
        S3Config {
            bucket: bucket.to_string(),
            from_env: false,
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            allow_http: false,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            max_retries: 5,
            retry_timeout: Duration::from_secs(30),
        }
    }

    /// The bucket `bucket`, with credentials, region and endpoint taken from the environment
    /// (`AWS_*` variables) wherever they are not set explicitly.
    pub fn from_env(bucket: &str) -> Self {
        S3Config { from_env: true, ..S3Config::new(bucket) }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Another bucket with the same settings.
    pub fn with_bucket(mut self, bucket: &str) -> Self {
        self.bucket = bucket.to_string();
        self
    }

    /// An S3-compatible server instead of AWS, e.g. `http://127.0.0.1:9000` (path-style
    /// requests: `<endpoint>/<bucket>/<key>`).
    pub fn endpoint(mut self, endpoint: &str) -> Self {
        self.endpoint = Some(endpoint.to_string());
        self
    }

    /// The region requests are signed for (default `us-east-1`, or `AWS_REGION`).
    pub fn region(mut self, region: &str) -> Self {
        self.region = Some(region.to_string());
        self
    }

    /// Static credentials.
    pub fn credentials(mut self, access_key_id: &str, secret_access_key: &str) -> Self {
        self.access_key_id = Some(access_key_id.to_string());
        self.secret_access_key = Some(secret_access_key.to_string());
        self
    }

    /// A session token that goes with temporary credentials.
    pub fn session_token(mut self, token: &str) -> Self {
        self.session_token = Some(token.to_string());
        self
    }

    /// Allows a plain `http://` endpoint (local testing; never for real credentials).
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// How long a connection may take to open (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one request may take, body included (default 60 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How often a failed request (connection error, 5xx, throttling) is retried with
    /// exponential backoff (from 100 ms, doubling, at most 5 s apart), and for how long at
    /// most (default 5 times within 30 s).
    pub fn retries(mut self, max_retries: usize, within: Duration) -> Self {
        self.max_retries = max_retries;
        self.retry_timeout = within;
        self
    }

    /// `s3://bucket`, plus the endpoint when it is not AWS: how errors name the store.
    pub(crate) fn describe(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("s3://{} (at {endpoint})", self.bucket),
            None => format!("s3://{}", self.bucket),
        }
    }

    /// The client for this bucket. Builds offline: nothing is sent until the first request.
    pub(crate) fn build(&self) -> Result<AmazonS3, FilesError> {
        if self.bucket.is_empty() {
            return Err(FilesError::Config("an S3 bucket name is required (s3://BUCKET/PREFIX)".into()));
        }
        let mut builder = if self.from_env { AmazonS3Builder::from_env() } else { AmazonS3Builder::new() };
        builder = builder.with_bucket_name(&self.bucket).with_allow_http(self.allow_http);
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let env_region = self.from_env.then(|| std::env::var("AWS_REGION").ok()).flatten();
        builder = builder.with_region(self.region.clone().or(env_region).unwrap_or_else(|| DEFAULT_REGION.into()));
        if let (Some(id), Some(secret)) = (&self.access_key_id, &self.secret_access_key) {
            builder = builder.with_access_key_id(id).with_secret_access_key(secret);
        }
        if let Some(token) = &self.session_token {
            builder = builder.with_token(token);
        }
        let client = ClientOptions::new()
            .with_allow_http(self.allow_http)
            .with_connect_timeout(self.connect_timeout)
            .with_timeout(self.request_timeout);
        let backoff =
            BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(5), base: 2.0 };
        let retry = RetryConfig { max_retries: self.max_retries, retry_timeout: self.retry_timeout, backoff };
        builder
            .with_client_options(client)
            .with_retry(retry)
            .build()
            .map_err(|e| FilesError::Config(format!("cannot set up the S3 client for {}: {e}", self.describe())))
    }
}
