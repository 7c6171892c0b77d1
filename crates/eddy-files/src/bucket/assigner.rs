//! The bucket assigner: which directory under the sink's base path a record goes to.
//!
//! A *bucket* is a directory of part files, e.g. `year=2026/month=11/day=29/hour=15` or
//! `airport=JFK`. Each subtask keeps one open part per bucket it writes to. Assigners are
//! [`DateTimeBucketAssigner`](super::DateTimeBucketAssigner) (event or processing time through
//! a pattern), [`FieldBucketAssigner`](super::FieldBucketAssigner) (`name=value` from a record
//! field), [`BasePath`] (no buckets) and any closure `Fn(&T, &BucketContext) -> String`.

use crate::FilesError;

/// What an assigner knows of a record besides its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketContext {
    /// The record's event time in ms since the epoch, if it has one.
    pub event_time: Option<i64>,
    /// The subtask's clock when the record arrived, in ms since the epoch.
    pub processing_time: i64,
}

/// Picks the bucket of each record.
pub trait BucketAssigner<T>: Send + Sync {
    /// The bucket's path relative to the sink's base path (`""` for the base itself), or why
    /// the record cannot be placed; such a record goes to the error prefix as
    /// `bucket-assignment-failed`, never lost.
    fn bucket(&self, value: &T, context: &BucketContext) -> Result<String, String>;

    /// Checks the assigner's settings once, when the sink is built.
    fn validate(&self) -> Result<(), FilesError> {
        Ok(())
    }
}

/// A closure is an assigner: `|trip: &Trip, _: &BucketContext| format!("vendor={}", trip.vendor)`.
/// Escape values that may hold `/` or `=` with
/// [`escape_partition_value`](super::escape_partition_value).
impl<T, F> BucketAssigner<T> for F
where
    F: Fn(&T, &BucketContext) -> String + Send + Sync,
{
    fn bucket(&self, value: &T, context: &BucketContext) -> Result<String, String> {
        Ok(self(value, context))
    }
}

/// Every record in the base path itself (Flink's `BasePathBucketAssigner`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BasePath;

impl<T> BucketAssigner<T> for BasePath {
    fn bucket(&self, _: &T, _: &BucketContext) -> Result<String, String> {
        Ok(String::new())
    }
}

/// Checks a bucket path an assigner returned: relative, no empty, `.`/`..` or hidden (`.`/`_`)
/// components, which readers would skip. Trailing slashes are dropped.
pub(crate) fn normalize_bucket(bucket: &str) -> Result<&str, String> {
    let bucket = bucket.trim_end_matches('/');
    if bucket.is_empty() {
        return Ok(bucket);
    }
    let bad = bucket.split('/').find(|c| {
        c.is_empty() || c.starts_with('.') || c.starts_with('_') || c.chars().any(|ch| ch.is_ascii_control())
    });
    match bad {
        Some(component) => Err(format!(
            "invalid bucket path {bucket:?}: component {component:?} is empty, hidden (starts with . or _) or holds a control character"
        )),
        None => Ok(bucket),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_paths_are_checked() {
        assert_eq!(normalize_bucket("a=1/b=2/"), Ok("a=1/b=2"));
        assert_eq!(normalize_bucket(""), Ok(""));
        for bad in ["/abs", "a//b", "../x", "a/./b", "_hidden", "a/.dot", "a\nb"] {
            assert!(normalize_bucket(bad).is_err(), "{bad:?}");
        }
    }
}
