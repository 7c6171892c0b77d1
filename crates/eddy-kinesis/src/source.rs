//! `KinesisSource`: what to read and how, collected by a builder, and the [`SplitSource`]
//! that opens one [`KinesisReader`] per subtask.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_sdk_kinesis::config::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_kinesis::Client;
use eddy_core::{BoxError, ReaderContext, SplitAssignment, SplitSource, Timestamp};

use crate::backoff::Backoff;
use crate::connection::{static_credentials, Connection};
use crate::deserializer::{Bytes, Deserializer, FnDeserializer};
use crate::error::KinesisError;
use crate::parent_first::RunSlot;
use crate::reader::KinesisReader;
use crate::record::KinesisRecord;
use crate::settings::Settings;
use crate::starting_position::StartingPosition;

/// A Kinesis Data Streams source: give it to `env.from_source(source, strategy, name)`.
/// Build one with [`KinesisSource::builder`]; see the [crate docs](crate) for what it
/// guarantees.
pub struct KinesisSource<T> {
    settings: Arc<Settings<T>>,
    client: OnceLock<Client>,
    run: RunSlot,
}

impl KinesisSource<Vec<u8>> {
    /// A source of `stream`'s records as raw bytes; the builder's methods set the rest.
    pub fn builder(stream: impl Into<String>) -> KinesisSourceBuilder<Vec<u8>> {
        KinesisSourceBuilder {
            settings: Settings {
                stream: stream.into(),
                connection: Connection::default(),
                starting_position: StartingPosition::default(),
                deserializer: Box::new(Bytes),
                timestamps: None,
                bounded: false,
                get_records_interval: Duration::from_millis(200),
                get_records_limit: 10_000,
                discovery_interval: Duration::from_secs(10),
                backoff: Backoff::default(),
            },
        }
    }
}

impl<T> KinesisSource<T> {
    /// The client, made on first use (so that building a source needs no runtime).
    fn client(&self) -> Result<Client, KinesisError> {
        if let Some(client) = self.client.get() {
            return Ok(client.clone());
        }
        let client = self.settings.connection.client()?;
        Ok(self.client.get_or_init(|| client).clone())
    }
}

impl<T: Send + 'static> SplitSource<T> for KinesisSource<T> {
    type Reader = KinesisReader<T>;

    fn open(&self, context: &ReaderContext) -> Result<KinesisReader<T>, BoxError> {
        let reader = KinesisReader::open(self.settings.clone(), self.client()?, self.run.join(), context)?;
        Ok(reader)
    }

    /// Shards belong to the subtask [`crate::owner`] names, at any parallelism.
    fn split_assignment(&self) -> SplitAssignment {
        SplitAssignment::Owned
    }
}

/// Collects a [`KinesisSource`]'s settings; [`KinesisSourceBuilder::build`] checks them.
pub struct KinesisSourceBuilder<T> {
    settings: Settings<T>,
}

impl<T: 'static> KinesisSourceBuilder<T> {
    /// The endpoint URL (`http://127.0.0.1:4566` for a local emulation). Default:
    /// `AWS_ENDPOINT_URL_KINESIS`, `AWS_ENDPOINT_URL`, else AWS' endpoint for the region.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.settings.connection.endpoint = Some(url.into());
        self
    }

    /// The region (`eu-west-1`). Default: `AWS_REGION`, then `AWS_DEFAULT_REGION`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.settings.connection.region = Some(region.into());
        self
    }

    /// An access key and its secret. Default: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`
    /// and `AWS_SESSION_TOKEN`.
    pub fn credentials(mut self, access_key: &str, secret_key: &str) -> Self {
        let provider = static_credentials(access_key, secret_key, None);
        self.settings.connection.credentials = Some(SharedCredentialsProvider::new(provider));
        self
    }

    /// Any credentials provider (for example one from `aws-config`: profiles, SSO, roles).
    pub fn credentials_provider(mut self, provider: impl ProvideCredentials + 'static) -> Self {
        self.settings.connection.credentials = Some(SharedCredentialsProvider::new(provider));
        self
    }

    /// Where a job without a checkpoint starts (default: [`StartingPosition::TrimHorizon`]).
    pub fn starting_position(mut self, position: StartingPosition) -> Self {
        self.settings.starting_position = position;
        self
    }

    /// Read only the records that arrived before the job started, then end (for backfills and
    /// tests): each shard is read until a record that arrived later, or until it is caught
    /// up, or to its end if it is closed.
    pub fn bounded(mut self) -> Self {
        self.settings.bounded = true;
        self
    }

    /// The shortest time between two `GetRecords` calls on one shard (default 200 ms: Kinesis
    /// allows 5 a second per shard, shared by all consumers of the stream).
    pub fn get_records_interval(mut self, interval: Duration) -> Self {
        self.settings.get_records_interval = interval;
        self
    }

    /// The most records one `GetRecords` call returns (1 to 10 000, the default).
    pub fn get_records_limit(mut self, limit: i32) -> Self {
        self.settings.get_records_limit = limit;
        self
    }

    /// How often each subtask lists the stream's shards to find new ones (default 10 s).
    pub fn shard_discovery_interval(mut self, interval: Duration) -> Self {
        self.settings.discovery_interval = interval;
        self
    }

    /// How throttled and failed calls are retried (default: [`Backoff::default`]).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings.backoff = backoff;
        self
    }

    /// The longest one call to Kinesis may take before it is retried (default 10 s).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connection.call_timeout = Some(timeout);
        self
    }

    /// Event time from `extract(value, record)` instead of the record's arrival time.
    pub fn timestamps(mut self, extract: impl Fn(&T, &KinesisRecord<'_>) -> Timestamp + Send + Sync + 'static) -> Self {
        self.settings.timestamps = Some(Box::new(extract));
        self
    }

    /// Values made by `deserializer` ([`crate::Utf8`], [`crate::Json`], your own); records it
    /// rejects become dead letters. Resets an event-time extractor set before.
    pub fn deserializer<U>(self, deserializer: impl Deserializer<U>) -> KinesisSourceBuilder<U> {
        let s = self.settings;
        KinesisSourceBuilder {
            settings: Settings {
                stream: s.stream,
                connection: s.connection,
                starting_position: s.starting_position,
                deserializer: Box::new(deserializer),
                timestamps: None,
                bounded: s.bounded,
                get_records_interval: s.get_records_interval,
                get_records_limit: s.get_records_limit,
                discovery_interval: s.discovery_interval,
                backoff: s.backoff,
            },
        }
    }

    /// Values made by a closure that sees the whole record; an `Err` makes it a dead letter.
    pub fn deserialize_with<U, F>(self, f: F) -> KinesisSourceBuilder<U>
    where
        U: 'static,
        F: Fn(&KinesisRecord<'_>) -> Result<U, BoxError> + Send + Sync + 'static,
    {
        self.deserializer(FnDeserializer(f))
    }

    /// Checks the settings (without calling Kinesis) and makes the source; says what to change.
    pub fn build(self) -> Result<KinesisSource<T>, KinesisError> {
        let s = &self.settings;
        let stream_ok = !s.stream.is_empty()
            && s.stream.len() <= 128
            && s.stream.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !stream_ok {
            return Err(KinesisError::Config(format!(
                "'{}' is not a stream name: use 1 to 128 letters, digits, '_', '.' or '-'",
                s.stream
            )));
        }
        if !(1..=10_000).contains(&s.get_records_limit) {
            return Err(KinesisError::Config(format!(
                "get_records_limit {} is outside 1..=10000, the range GetRecords accepts",
                s.get_records_limit
            )));
        }
        if s.discovery_interval.is_zero() {
            return Err(KinesisError::Config("the shard discovery interval must be above zero".into()));
        }
        s.backoff.validate().map_err(KinesisError::Config)?;
        Ok(KinesisSource { settings: Arc::new(self.settings), client: OnceLock::new(), run: RunSlot::default() })
    }
}
