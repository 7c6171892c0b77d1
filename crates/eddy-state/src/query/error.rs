//! Why a read of queryable state failed; each says what to change or when to retry.

use crate::descriptor::StateKind;

/// A failed read of queryable state.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueryError {
    /// No keyed operator of the job has this uid.
    #[error("no keyed operator has uid '{uid}'; queryable operators: [{known}] (give the operator .uid(\"{uid}\"))")]
    UnknownOperator {
        /// The uid asked for.
        uid: String,
        /// The uids that can be queried, comma-separated.
        known: String,
    },
    /// The subtask that owns the key cannot answer now: the job is restarting or has ended.
    #[error("operator '{uid}' cannot answer: {reason}")]
    Unavailable {
        /// The operator's uid.
        uid: String,
        /// Why (restarting, ended, busy past the timeout).
        reason: String,
    },
    /// The state holds lists or maps, or is an operator's own namespaced state (a window's
    /// contents), which this reader does not read.
    #[error("state '{state}' is a {kind} state; only value, reducing and aggregating states can be queried")]
    UnsupportedKind {
        /// The state's name.
        state: String,
        /// Its kind.
        kind: StateKind,
    },
    /// The state was declared with another value type than the one asked for.
    #[error("state '{state}' holds {registered}, not {requested}; query it with its declared type")]
    TypeMismatch {
        /// The state's name.
        state: String,
        /// The type its descriptor declared.
        registered: &'static str,
        /// The type the query asked for.
        requested: &'static str,
    },
    /// The key could not be encoded, or a stored key or value could not be decoded.
    #[error("state '{state}': {reason}")]
    Codec {
        /// The state's name.
        state: String,
        /// What could not be read.
        reason: String,
    },
}
