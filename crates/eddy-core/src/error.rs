//! Errors: each says what went wrong, where, and what to change.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// eddy's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can end a job or reject one. `Clone`, so a job's outcome can be read by
/// every holder of its handle.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A user function panicked or returned an error inside a running operator.
    #[error("operator '{operator}' (subtask {subtask} of {parallelism}) failed: {message}")]
    Operator {
        /// The operator's name.
        operator: String,
        /// Index of the failing subtask.
        subtask: usize,
        /// Parallelism of the operator.
        parallelism: usize,
        /// The panic message or the error's text.
        message: String,
    },
    /// The job graph cannot run as built; the message says what to change.
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// A key could not be serialized to compute its stable hash.
    #[error("key cannot be encoded for hashing: {0}")]
    KeyEncoding(String),
    /// A checkpoint, savepoint or restore cannot be taken or used; the message says why.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A channel to another subtask closed because that subtask stopped (another error is the cause).
    #[error("a connected subtask stopped")]
    Disconnected,
    /// The job was cancelled through its handle.
    #[error("job was cancelled")]
    Cancelled,
}

impl Error {
    /// True for errors that are only echoes of another subtask's failure or a cancellation.
    pub fn is_secondary(&self) -> bool {
        matches!(self, Error::Disconnected | Error::Cancelled)
    }
}

/// Who is running: an operator's name and which of its parallel subtasks this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorInfo {
    /// The operator's name (as set with `name`, or its default).
    pub name: String,
    /// Index of this subtask, `0..parallelism`.
    pub subtask: usize,
    /// Number of parallel subtasks of this operator.
    pub parallelism: usize,
}

impl OperatorInfo {
    /// An operator failure with this operator's name and subtask.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::Operator {
            operator: self.name.clone(),
            subtask: self.subtask,
            parallelism: self.parallelism,
            message: message.into(),
        }
    }

    /// Runs user code; a panic becomes an [`Error::Operator`] naming this operator.
    ///
    /// `catch_unwind` costs nothing unless a panic happens, so operators call this once per
    /// batch around the loop that runs the user's function.
    #[inline]
    pub fn guard<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        catch_unwind(AssertUnwindSafe(f))
            .map_err(|payload| self.error(format!("panicked: {}", panic_message(&payload))))
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_turns_a_panic_into_an_error_naming_the_operator() {
        let info = OperatorInfo { name: "Map".into(), subtask: 1, parallelism: 2 };
        let err = info.guard(|| panic!("boom")).unwrap_err();
        assert_eq!(err.to_string(), "operator 'Map' (subtask 1 of 2) failed: panicked: boom");
        assert_eq!(info.guard(|| 7).unwrap(), 7);
    }
}
