//! What can go wrong in a cluster member, with what to change.

/// An error of a cluster member.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A flag or setting is wrong.
    #[error("{0}")]
    Config(String),
    /// The Kafka cluster refused or failed an operation.
    #[error("Kafka: {what}: {source}")]
    Kafka {
        /// What the member was doing.
        what: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// The checkpoint store failed.
    #[error("checkpoint store {url}: {what}: {source}")]
    Store {
        /// The store's URL.
        url: String,
        /// What the member was doing.
        what: String,
        /// object_store's error.
        source: object_store::Error,
    },
    /// A checkpoint the committed offsets point at is missing or unreadable: the store was
    /// changed behind the application's back, so its state cannot be restored.
    #[error("checkpoint {0}")]
    Checkpoint(String),
    /// A job graph's operators failed, or the job cannot run distributed (see the message).
    #[error("{0}")]
    Runtime(String),
    /// Another process took over this process's task (it was paused longer than the session
    /// timeout): this process stops; its tasks run elsewhere.
    #[error("fenced: {0}")]
    Fenced(String),
}

impl ClusterError {
    pub(crate) fn kafka(what: impl Into<String>) -> impl FnOnce(rdkafka::error::KafkaError) -> ClusterError {
        let what = what.into();
        move |source| ClusterError::Kafka { what, source }
    }
}

/// A result with a [`ClusterError`].
pub type Result<T, E = ClusterError> = std::result::Result<T, E>;
