//! A record: one value and the event time it carries.

use crate::time::Timestamp;

/// One element of a stream: a value and its event timestamp.
///
/// A record without an event time (before timestamps are assigned) carries
/// [`crate::time::NO_TIMESTAMP`]; any other timestamp lies in
/// [`crate::time::MIN_TIMESTAMP`]`..=`[`crate::time::MAX_TIMESTAMP`] (see [`crate::time`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<T> {
    /// The user's value.
    pub value: T,
    /// Event time in milliseconds since the epoch, or `NO_TIMESTAMP`.
    pub timestamp: Timestamp,
}

impl<T> Record<T> {
    /// A record with the given value and event time.
    #[inline]
    pub fn new(value: T, timestamp: Timestamp) -> Self {
        Record { value, timestamp }
    }
}
