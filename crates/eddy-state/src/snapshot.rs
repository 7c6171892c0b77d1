//! A key group's part of a checkpoint: its state entries and its timers.

use serde::{Deserialize, Serialize};

use crate::timers::{TimeDomain, Timer};

/// Everything one key group holds, as bytes: what a checkpoint writes per key group and a
/// restore (at any parallelism) reads back into whichever subtask now owns the key group.
///
/// `entries` are backend entries, `(entry key, stored value)` with keys in the
/// [`layout`](crate::backend::layout) (key group first) and values in the cell format, the
/// same for both backends; `timers` are the key group's timers of both time domains.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGroupSnapshot {
    /// The key group.
    pub key_group: usize,
    /// The key group's state entries, in key order.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// The key group's timers.
    pub timers: Vec<(TimeDomain, Timer)>,
}
