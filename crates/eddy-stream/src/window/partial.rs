//! A partial aggregate: what a subtask's pre-aggregation sends to the keyed window stage.

use serde::{Deserialize, Serialize};

use crate::window::TimeWindow;

/// The accumulator of one key's records in one window, as far as one upstream subtask saw.
/// Serde, for the repartition topic of a marked window `key_by`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Partial<K, Acc> {
    /// The key.
    pub key: K,
    /// The window the records fell into.
    pub window: TimeWindow,
    /// Their accumulator.
    pub acc: Acc,
    /// How many records it holds (so late ones are counted exactly).
    pub records: u64,
}
