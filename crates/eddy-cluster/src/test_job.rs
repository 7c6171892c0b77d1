//! The job the unit tests run windows of: counts per key in 10 ms windows.

use crate::group_snapshot::GroupFormat;
use crate::job::{InputRecord, Keyed, WindowedJob};

/// Counts per key in 10 ms windows, rows `start,end,key,count`.
pub(crate) struct Counting;

impl WindowedJob for Counting {
    type Key = String;
    type Value = u64;
    type Accumulator = u64;

    fn window_ms(&self) -> i64 {
        10
    }

    fn extract(&self, _: &InputRecord<'_>, _: &mut Vec<Keyed<String, u64>>) {}

    fn add(&self, _: usize, accumulator: &mut u64, value: u64) {
        *accumulator += value;
    }

    fn format(&self, _: usize, key: &String, start: i64, end: i64, count: &u64) -> Option<Vec<u8>> {
        Some(format!("{start},{end},{key},{count}").into_bytes())
    }
}

/// Counting's windows, over 128 key groups.
pub(crate) const FORMAT: GroupFormat = GroupFormat { window_ms: 10, max_parallelism: 128 };
