//! Buckets by time: the record's event time or the arrival (processing) time, formatted
//! through a [`PathPattern`] in a time zone (UTC unless set).
//!
//! In a zone with daylight saving time the local clock repeats an hour in autumn and skips
//! one in spring: with an hourly pattern, the repeated hour's bucket holds two hours of
//! records and the skipped hour has no bucket. UTC, the default, has neither.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use chrono_tz::Tz;

use super::assigner::{BucketAssigner, BucketContext};
use super::escape::escape_partition_value;
use super::pattern::PathPattern;
use crate::FilesError;

/// Which clock places a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// The record's timestamp (assign timestamps upstream); records without one go to the
    /// error prefix.
    EventTime,
    /// The time the record reaches the sink (Flink's `DateTimeBucketAssigner` default).
    ProcessingTime,
}

/// A partition key's function: the record's value for `!{partitionKeyFromLambda:NAME}`.
type KeyFn<T> = Arc<dyn Fn(&T) -> String + Send + Sync>;

/// Buckets by time through a pattern, e.g. Hive's `year=2026/month=11/day=29/hour=15`.
///
/// ```
/// use eddy_files::{BucketAssigner, BucketContext, DateTimeBucketAssigner, PathPattern};
///
/// let hourly = DateTimeBucketAssigner::<String>::event_time(PathPattern::hive_hourly());
/// let context = BucketContext { event_time: Some(1_764_428_400_000), processing_time: 0 };
/// assert_eq!(hourly.bucket(&"record".to_string(), &context).unwrap(), "year=2025/month=11/day=29/hour=15");
///
/// let berlin = hourly.with_zone("Europe/Berlin".parse().unwrap());
/// assert_eq!(berlin.bucket(&"record".to_string(), &context).unwrap(), "year=2025/month=11/day=29/hour=16");
/// ```
///
/// Firehose expressions may also name partition keys computed from the record:
///
/// ```
/// use eddy_files::{BucketAssigner, BucketContext, DateTimeBucketAssigner, PathPattern};
///
/// let pattern = PathPattern::expression("airport=!{partitionKeyFromLambda:airport}/!{timestamp:yyyy-MM-dd}").unwrap();
/// let assigner = DateTimeBucketAssigner::event_time(pattern).key("airport", |code: &&str| code.to_string());
/// let context = BucketContext { event_time: Some(0), processing_time: 0 };
/// assert_eq!(assigner.bucket(&"JFK", &context).unwrap(), "airport=JFK/1970-01-01");
/// ```
pub struct DateTimeBucketAssigner<T> {
    pattern: PathPattern,
    source: TimeSource,
    zone: Tz,
    keys: Vec<(String, KeyFn<T>)>,
}

impl<T> Clone for DateTimeBucketAssigner<T> {
    fn clone(&self) -> Self {
        DateTimeBucketAssigner {
            pattern: self.pattern.clone(),
            source: self.source,
            zone: self.zone,
            keys: self.keys.clone(),
        }
    }
}

impl<T> DateTimeBucketAssigner<T> {
    /// Buckets by the record's event time.
    pub fn event_time(pattern: PathPattern) -> Self {
        DateTimeBucketAssigner { pattern, source: TimeSource::EventTime, zone: Tz::UTC, keys: Vec::new() }
    }

    /// Buckets by the time the record reaches the sink.
    pub fn processing_time(pattern: PathPattern) -> Self {
        DateTimeBucketAssigner { source: TimeSource::ProcessingTime, ..Self::event_time(pattern) }
    }

    /// Formats times in `zone` (an IANA name parses into one: `"America/New_York".parse()`).
    pub fn with_zone(mut self, zone: Tz) -> Self {
        self.zone = zone;
        self
    }

    /// Computes the partition key `name` of the pattern's `!{partitionKeyFromLambda:NAME}`;
    /// the value is escaped as Hive does ([`escape_partition_value`]).
    pub fn key(mut self, name: &str, value: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        self.keys.push((name.to_string(), Arc::new(value)));
        self
    }
}

impl<T> BucketAssigner<T> for DateTimeBucketAssigner<T> {
    fn bucket(&self, value: &T, context: &BucketContext) -> Result<String, String> {
        let millis = match self.source {
            TimeSource::ProcessingTime => context.processing_time,
            TimeSource::EventTime => context.event_time.ok_or(
                "the record has no event time: assign timestamps before the sink, or bucket by processing time",
            )?,
        };
        let time = Utc
            .timestamp_millis_opt(millis)
            .single()
            .ok_or_else(|| format!("timestamp {millis} ms is outside the dates a path can hold"))?
            .with_timezone(&self.zone);
        let key = |name: &str| {
            let (_, value_of) = self.keys.iter().find(|(key, _)| key == name)?;
            Some(escape_partition_value(&value_of(value)))
        };
        let mut path = String::new();
        self.pattern.render(Some(&time), None, &key, &mut path)?;
        Ok(path)
    }

    fn validate(&self) -> Result<(), FilesError> {
        let problem = |reason: String| FilesError::Pattern { pattern: self.pattern.to_expression(), reason };
        if self.pattern.uses_error_type() {
            return Err(problem("a bucket pattern cannot use the error type; that belongs in the error prefix".into()));
        }
        if let Some(missing) = self.pattern.keys().find(|name| !self.keys.iter().any(|(key, _)| key == name)) {
            return Err(problem(format!(
                "partition key {missing:?} has no function: add .key({missing:?}, |record| …)"
            )));
        }
        if let Some((unused, _)) = self.keys.iter().find(|(key, _)| !self.pattern.keys().any(|name| name == key)) {
            return Err(problem(format!(
                "key {unused:?} is not in the pattern: add !{{partitionKeyFromLambda:{unused}}} or drop the key"
            )));
        }
        Ok(())
    }
}
