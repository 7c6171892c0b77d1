//! Dead letters: inputs a fallible function rejected, with the reason, on a side output the
//! user can route to a sink (like a delivery stream's error-output prefix). Sources send the
//! records they cannot deserialise there too, as [`eddy_core::RawRecord`]s.

pub use eddy_core::DeadLetter;

use crate::side_output::OutputTag;
use crate::{Data, DataStream};

/// The name of the side output that carries dead letters (a connector's reader finds its
/// dead-letter consumers by it among [`BuildContext::take_side_outputs`](eddy_runtime::graph::BuildContext::take_side_outputs)).
pub const DEAD_LETTER_TAG: &str = "dead-letters";

/// The side output every fallible operator sends its dead letters to.
pub(crate) fn dead_letter_tag<T>() -> OutputTag<DeadLetter<T>> {
    OutputTag::new(DEAD_LETTER_TAG)
}

impl<U: Data> DataStream<U> {
    /// The dead letters of the operator that produced this stream: a fallible function
    /// (`try_map`, `try_flat_map`, a keyed `process`) or `assign_timestamps_and_watermarks`
    /// (records whose timestamp is a reserved marker), where `T` is that operator's input
    /// type; or a source, where `T` is [`eddy_core::RawRecord`]: the records it could not
    /// read (a text source's lines too long or not UTF-8, a connector's undeserialisable
    /// messages) or that came with a marker for a timestamp, with where they were read and
    /// why they were rejected.
    pub fn dead_letters<T: Data>(&self) -> DataStream<DeadLetter<T>> {
        self.side_output(&dead_letter_tag())
    }
}
