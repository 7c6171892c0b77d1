//! Kafka for eddy: a source that reads topics as splits with offsets in checkpoints, and a
//! sink with at-least-once or exactly-once (transactional) delivery.
//!
//! Work in progress.

pub mod client;
pub mod deserializer;
pub mod error;
pub mod reader;
pub mod serializer;
pub mod sink;
pub mod source;
pub mod split;
pub mod transaction;
pub mod writer;

pub use deserializer::{Bytes, Deserializer, Json, KafkaRecord, Utf8};
pub use error::KafkaError;
/// The Kafka client eddy uses, for settings and tools beyond the connector's.
pub use rdkafka;
pub use reader::KafkaReader;
pub use serializer::{JsonValue, RawBytes, Serializer, Text};
pub use sink::{DeliveryGuarantee, KafkaSink, KafkaSinkBuilder, KafkaSinkExt};
pub use source::{Fallback, KafkaSource, KafkaSourceBuilder, StartingOffsets};
pub use split::{owner, PartitionSplit};
pub use transaction::KafkaTxn;
