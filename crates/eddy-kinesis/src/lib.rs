//! A Kinesis Data Streams source for eddy.
//!
//! (Crate docs are written below, once the API settles.)

mod assignment;
mod backoff;
mod calls;
mod connection;
mod deserializer;
mod error;
mod io_runtime;
mod parent_first;
mod reader;
mod record;
mod shard;
mod source;
mod split_state;
mod starting_position;

pub use assignment::owner;
pub use backoff::Backoff;
pub use deserializer::{Bytes, Deserializer, FnDeserializer, Json, Utf8};
pub use error::KinesisError;
pub use reader::KinesisReader;
pub use record::KinesisRecord;
pub use shard::{compare_sequence, ShardInfo};
pub use source::{KinesisSource, KinesisSourceBuilder};
pub use starting_position::StartingPosition;
