//! Buckets by a record field, Hive style: `airport=JFK`.

use std::sync::Arc;

use super::assigner::{BucketAssigner, BucketContext};
use super::escape::escape_partition_value;
use crate::FilesError;

/// Buckets by one value of the record as `name=value`, the value escaped as Hive does.
///
/// ```
/// use eddy_files::{BucketAssigner, BucketContext, FieldBucketAssigner};
///
/// let by_airport = FieldBucketAssigner::new("airport", |trip: &(&str, u32)| trip.0.to_string());
/// let context = BucketContext { event_time: None, processing_time: 0 };
/// assert_eq!(by_airport.bucket(&("JFK", 7), &context).unwrap(), "airport=JFK");
/// assert_eq!(by_airport.bucket(&("a/b", 7), &context).unwrap(), "airport=a%2Fb");
/// ```
pub struct FieldBucketAssigner<T> {
    name: String,
    value: Arc<dyn Fn(&T) -> String + Send + Sync>,
}

impl<T> Clone for FieldBucketAssigner<T> {
    fn clone(&self) -> Self {
        FieldBucketAssigner { name: self.name.clone(), value: self.value.clone() }
    }
}

impl<T> FieldBucketAssigner<T> {
    /// Buckets by `value(record)` under the key `name`.
    pub fn new(name: &str, value: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        FieldBucketAssigner { name: name.to_string(), value: Arc::new(value) }
    }
}

impl<T> BucketAssigner<T> for FieldBucketAssigner<T> {
    fn bucket(&self, value: &T, _: &BucketContext) -> Result<String, String> {
        Ok(format!("{}={}", self.name, escape_partition_value(&(self.value)(value))))
    }

    fn validate(&self) -> Result<(), FilesError> {
        let valid = !self.name.is_empty()
            && !self.name.starts_with(['.', '_'])
            && self.name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        if valid {
            Ok(())
        } else {
            Err(FilesError::Config(format!(
                "invalid partition key name {:?}: letters, digits, _ and -, not starting with _",
                self.name
            )))
        }
    }
}
