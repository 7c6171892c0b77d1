//! What can go wrong talking to Kafka, said so the user knows what to change.

/// A Kafka connector error; every message names the connector and the brokers or topic.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The builder was given settings that cannot work.
    #[error("Kafka {connector}: {message}")]
    Config {
        /// `source` or `sink`.
        connector: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// The brokers could not be reached, refused the client, or answered with an error.
    #[error("Kafka {connector} at {brokers}: {message}")]
    Broker {
        /// `source` or `sink`.
        connector: &'static str,
        /// The bootstrap servers.
        brokers: String,
        /// What happened.
        message: String,
    },
    /// A subscribed topic does not exist.
    #[error(
        "Kafka source at {brokers}: topic '{topic}' does not exist; create it first (or subscribe with a pattern)"
    )]
    UnknownTopic {
        /// The bootstrap servers.
        brokers: String,
        /// The missing topic.
        topic: String,
    },
}

/// A client's own error, as a [`KafkaError::Broker`].
pub(crate) fn broker(connector: &'static str, brokers: &str, error: impl std::fmt::Display) -> KafkaError {
    KafkaError::Broker { connector, brokers: brokers.to_string(), message: error.to_string() }
}
