//! Dead letters: inputs a fallible function rejected, with the reason, on a side output the
//! user can route to a sink (like a delivery stream's error-output prefix).

use crate::side_output::OutputTag;
use crate::{Data, DataStream};

/// An input that a fallible function rejected, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeadLetter<T> {
    /// The record as it came in.
    pub input: T,
    /// The error's text.
    pub error: String,
}

/// The side output every fallible operator sends its dead letters to.
pub(crate) fn dead_letter_tag<T>() -> OutputTag<DeadLetter<T>> {
    OutputTag::new("dead-letters")
}

impl<U: Data> DataStream<U> {
    /// The dead letters of the operator that produced this stream: a fallible function
    /// (`try_map`, `try_flat_map`, a keyed `process`), `assign_timestamps_and_watermarks`
    /// (records whose timestamp is a reserved marker), or a text source (lines too long or
    /// not UTF-8; `T` is `String`). `T` is that operator's input type.
    pub fn dead_letters<T: Data>(&self) -> DataStream<DeadLetter<T>> {
        self.side_output(&dead_letter_tag())
    }
}
