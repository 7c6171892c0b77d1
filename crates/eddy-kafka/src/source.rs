//! The Kafka source: what to read (topics or a pattern), from where (starting offsets), until
//! when (bounded or not), and how records become values. Each subtask runs a
//! [`crate::reader::KafkaReader`] over the partitions it owns.

use std::sync::Arc;
use std::time::Duration;

use eddy_core::{BoxError, ReaderContext, SplitAssignment, SplitSource, Timestamp};

use crate::client::Settings;
use crate::deserializer::{Deserializer, Utf8};
use crate::error::KafkaError;
use crate::reader::KafkaReader;
use crate::source_spec::{Spec, StartingOffsets};

/// A Kafka topic (or several, or a pattern) as a [`SplitSource`]: give it to
/// `StreamEnvironment::from_source`. Partitions are splits, their offsets live in
/// checkpoints. See the [crate docs](crate) for an example.
pub struct KafkaSource<T> {
    pub(crate) spec: Arc<Spec<T>>,
}

impl<T> Clone for KafkaSource<T> {
    fn clone(&self) -> Self {
        KafkaSource { spec: self.spec.clone() }
    }
}

impl KafkaSource<String> {
    /// A builder; the value type comes from the deserializer (UTF-8 strings by default).
    pub fn builder() -> KafkaSourceBuilder<Utf8> {
        KafkaSourceBuilder {
            settings: Settings::default(),
            topics: Vec::new(),
            pattern: None,
            group_id: None,
            starting: StartingOffsets::Earliest,
            bounded: false,
            deserializer: Utf8,
            commit_offsets: false,
            discovery_interval: Some(Duration::from_secs(30)),
            broker_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl<T> KafkaSource<T> {
    /// Takes each record's event time from its value instead of the Kafka record timestamp
    /// (the default).
    pub fn timestamps(self, extract: impl Fn(&T) -> Timestamp + Send + Sync + 'static) -> Result<Self, KafkaError> {
        let spec = Arc::into_inner(self.spec).ok_or_else(|| KafkaError::Config {
            connector: "source",
            message: "set timestamps before cloning the source".into(),
        })?;
        Ok(KafkaSource { spec: Arc::new(Spec { timestamps: Some(Arc::new(extract)), ..spec }) })
    }
}

impl<T: Send + 'static> SplitSource<T> for KafkaSource<T> {
    type Reader = KafkaReader<T>;

    fn open(&self, context: &ReaderContext) -> Result<KafkaReader<T>, BoxError> {
        Ok(KafkaReader::open(self.spec.clone(), context)?)
    }

    /// Every reader sees all recorded partitions and keeps those [`crate::owner`] gives it.
    fn split_assignment(&self) -> SplitAssignment {
        SplitAssignment::Owned
    }
}

/// Builds a [`KafkaSource`]; `D` is the deserializer.
pub struct KafkaSourceBuilder<D> {
    settings: Settings,
    topics: Vec<String>,
    pattern: Option<String>,
    group_id: Option<String>,
    starting: StartingOffsets,
    bounded: bool,
    deserializer: D,
    commit_offsets: bool,
    discovery_interval: Option<Duration>,
    broker_timeout: Duration,
    request_timeout: Duration,
}

impl<D> KafkaSourceBuilder<D> {
    /// The bootstrap servers, `host:port[,host:port…]`.
    pub fn brokers(mut self, brokers: impl Into<String>) -> Self {
        self.settings.brokers = brokers.into();
        self
    }

    /// Reads these topics.
    pub fn topics<I: IntoIterator<Item = S>, S: Into<String>>(mut self, topics: I) -> Self {
        self.topics.extend(topics.into_iter().map(Into::into));
        self
    }

    /// Reads every topic whose whole name matches this regular expression, including topics
    /// created while the job runs (found at the next discovery).
    pub fn topic_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.pattern = Some(pattern.into());
        self
    }

    /// The consumer group: where committed offsets are read from
    /// ([`StartingOffsets::Committed`]) and written to ([`Self::commit_offsets_on_checkpoint`]).
    /// Partitions are not assigned by the group: eddy deals them to its subtasks itself.
    pub fn group_id(mut self, group: impl Into<String>) -> Self {
        self.group_id = Some(group.into());
        self
    }

    /// Where partitions start on a fresh start (default: earliest). A restore starts every
    /// partition at its checkpointed offset instead, and partitions found later start at
    /// the earliest offset.
    pub fn starting_offsets(mut self, starting: StartingOffsets) -> Self {
        self.starting = starting;
        self
    }

    /// Stops at the end offsets seen at start: when every partition reached its end, the
    /// source ends (every window fires, the job finishes). No partitions are discovered.
    pub fn bounded(mut self) -> Self {
        self.bounded = true;
        self
    }

    /// How records become values (default [`Utf8`]); see [`crate::deserializer`].
    pub fn deserializer<E>(self, deserializer: E) -> KafkaSourceBuilder<E> {
        KafkaSourceBuilder {
            settings: self.settings,
            topics: self.topics,
            pattern: self.pattern,
            group_id: self.group_id,
            starting: self.starting,
            bounded: self.bounded,
            deserializer,
            commit_offsets: self.commit_offsets,
            discovery_interval: self.discovery_interval,
            broker_timeout: self.broker_timeout,
            request_timeout: self.request_timeout,
        }
    }

    /// Commits the offsets of each completed checkpoint to the consumer group, so lag tooling
    /// sees progress. eddy itself restores from its checkpoints, never from these.
    pub fn commit_offsets_on_checkpoint(mut self, commit: bool) -> Self {
        self.commit_offsets = commit;
        self
    }

    /// How often new partitions (and, with a pattern, new topics) are looked for (default
    /// 30 s; `None`: only at start).
    pub fn discovery_interval(mut self, interval: Option<Duration>) -> Self {
        self.discovery_interval = interval;
        self
    }

    /// How long brokers may stay unreachable before the source fails (default 60 s); the
    /// job's restart strategy then decides what happens.
    pub fn broker_timeout(mut self, timeout: Duration) -> Self {
        self.broker_timeout = timeout;
        self
    }

    /// How long one metadata or offset request may take (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets any librdkafka consumer property (`security.protocol`, `sasl.username`,
    /// `isolation.level`, …); it wins over eddy's defaults.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.properties.push((key.into(), value.into()));
        self
    }

    /// The source, after checking the settings.
    pub fn build<T>(self) -> Result<KafkaSource<T>, KafkaError>
    where
        D: Deserializer<T>,
    {
        let config = |message: &str| KafkaError::Config { connector: "source", message: message.into() };
        if self.settings.brokers.trim().is_empty() {
            return Err(config("no brokers: call .brokers(\"host:port\")"));
        }
        if self.topics.is_empty() && self.pattern.is_none() {
            return Err(config("no topics: call .topics([..]) or .topic_pattern(..)"));
        }
        if self.commit_offsets && self.group_id.is_none() {
            return Err(config("committing offsets needs a consumer group: call .group_id(..)"));
        }
        if matches!(self.starting, StartingOffsets::Committed { .. }) && self.group_id.is_none() {
            return Err(config("starting from committed offsets needs a consumer group: call .group_id(..)"));
        }
        let pattern = match &self.pattern {
            Some(p) => Some(
                regex::Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| config(&format!("topic pattern {p:?} is not a regular expression: {e}")))?,
            ),
            None => None,
        };
        Ok(KafkaSource {
            spec: Arc::new(Spec {
                settings: self.settings,
                topics: self.topics,
                pattern,
                group_id: self.group_id,
                starting: self.starting,
                bounded: self.bounded,
                deserializer: Box::new(self.deserializer),
                timestamps: None,
                commit_offsets: self.commit_offsets,
                discovery_interval: if self.bounded { None } else { self.discovery_interval },
                broker_timeout: self.broker_timeout,
                request_timeout: self.request_timeout,
            }),
        })
    }
}
