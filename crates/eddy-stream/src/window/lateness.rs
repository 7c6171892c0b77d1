//! How long a window stays open after it fired (Flink's `allowedLateness`), and where records
//! go that come after that.

use crate::side_output::OutputTag;

/// A window stage's lateness settings.
#[derive(Clone)]
pub(crate) struct Lateness<T> {
    /// Milliseconds a window stays open after it fired.
    pub(crate) allowed: i64,
    /// Where records for windows past that go, instead of being dropped.
    pub(crate) side_output: Option<OutputTag<T>>,
}

impl<T> Default for Lateness<T> {
    fn default() -> Self {
        Lateness { allowed: 0, side_output: None }
    }
}
