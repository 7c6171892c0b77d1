//! Kafka for eddy: a source that reads topics as splits with offsets in checkpoints, and a
//! sink with at-least-once or exactly-once (transactional) delivery.
//!
//! Work in progress.

pub mod client;
pub mod deserializer;
pub mod error;
pub mod reader;
pub mod source;
pub mod split;

pub use deserializer::{Bytes, Deserializer, Json, KafkaRecord, Utf8};
pub use error::KafkaError;
pub use reader::KafkaReader;
pub use source::{Fallback, KafkaSource, KafkaSourceBuilder, StartingOffsets};
pub use split::{owner, PartitionSplit};
