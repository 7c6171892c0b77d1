//! Where the source connects and as whom: endpoint, region and credentials, by default from
//! the usual AWS environment variables (the table is in the crate docs).
//!
//! The client makes no retries of its own: the reader retries throttled and failed calls per
//! shard on its [`crate::Backoff`] schedule, so one policy, with one set of settings, applies.

use std::time::Duration;

use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::config::timeout::TimeoutConfig;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, ProvideCredentials, Region, SharedCredentialsProvider};
use aws_sdk_kinesis::Client;

use crate::error::KinesisError;

/// How long connecting may take: a wrong endpoint fails fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The connection settings a builder collects.
#[derive(Debug, Clone, Default)]
pub(crate) struct Connection {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub credentials: Option<SharedCredentialsProvider>,
    /// The longest one call may take.
    pub call_timeout: Option<Duration>,
}

/// The default time one call may take.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);

impl Connection {
    /// Fills what was not set from the environment and makes a client; says what is missing.
    pub fn client(&self) -> Result<Client, KinesisError> {
        let region = self.region.clone().or_else(|| env("AWS_REGION")).or_else(|| env("AWS_DEFAULT_REGION"));
        let region = region
            .ok_or_else(|| KinesisError::Config("no region: call .region(\"eu-west-1\") or set AWS_REGION".into()))?;
        let credentials = match &self.credentials {
            Some(provider) => provider.clone(),
            None => SharedCredentialsProvider::new(env_credentials()?),
        };
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_timeout(self.call_timeout.unwrap_or(CALL_TIMEOUT))
            .build();
        let mut config = aws_sdk_kinesis::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(credentials)
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts);
        let endpoint =
            self.endpoint.clone().or_else(|| env("AWS_ENDPOINT_URL_KINESIS")).or_else(|| env("AWS_ENDPOINT_URL"));
        if let Some(endpoint) = endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(KinesisError::Config(format!(
                    "the endpoint '{endpoint}' is not a URL: write it as http://host:port or https://host"
                )));
            }
            config = config.endpoint_url(endpoint);
        }
        Ok(Client::from_conf(config.build()))
    }
}

/// Static credentials, named so that errors and logs say where they came from.
pub(crate) fn static_credentials(key: &str, secret: &str, session_token: Option<String>) -> impl ProvideCredentials {
    Credentials::new(key, secret, session_token, None, "eddy-kinesis")
}

fn env_credentials() -> Result<Credentials, KinesisError> {
    match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(key), Some(secret)) => Ok(Credentials::new(key, secret, env("AWS_SESSION_TOKEN"), None, "environment")),
        _ => Err(KinesisError::Config(
            "no credentials: call .credentials(key, secret) or .credentials_provider(..), or set \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                .into(),
        )),
    }
}

/// A set, non-empty environment variable.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
