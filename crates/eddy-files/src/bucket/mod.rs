//! Buckets: the directories under a sink's base path that records are sorted into.

mod assigner;
mod date_time;
mod escape;
mod field;
mod pattern;

pub(crate) use assigner::normalize_bucket;
pub use assigner::{BasePath, BucketAssigner, BucketContext};
pub use date_time::{DateTimeBucketAssigner, TimeSource};
pub use escape::{escape_partition_value, unescape_partition_value, DEFAULT_PARTITION};
pub use field::FieldBucketAssigner;
pub use pattern::PathPattern;
