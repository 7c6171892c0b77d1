//! Errors: each says which state, what went wrong and what to change.

use std::path::PathBuf;

use crate::descriptor::StateKind;
use crate::ttl::StateTtlConfig;

/// The state crate's result type.
pub type Result<T, E = StateError> = std::result::Result<T, E>;

/// Everything that can go wrong reading, writing, snapshotting or restoring keyed state.
///
/// Bad bytes (a corrupted backend, a snapshot from another build, a state read with the wrong
/// type) always come back as [`StateError::Decode`] or [`StateError::Corrupted`], never as a
/// panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A value could not be serialized with bincode.
    #[error("state '{state}': the value cannot be encoded with bincode: {source}")]
    Encode {
        /// The state's name.
        state: String,
        /// bincode's reason.
        #[source]
        source: bincode::error::EncodeError,
    },
    /// Stored bytes are not a valid bincode encoding of the state's type.
    #[error(
        "state '{state}': stored bytes do not decode as {type_name} ({source}); \
         read the state with the type it was written with"
    )]
    Decode {
        /// The state's name.
        state: String,
        /// The Rust type the bytes were decoded as.
        type_name: &'static str,
        /// bincode's reason.
        #[source]
        source: bincode::error::DecodeError,
    },
    /// Stored bytes are damaged: a bad header, a truncated list, trailing bytes after a value.
    #[error("state '{state}': stored bytes are corrupted: {reason}")]
    Corrupted {
        /// The state's name (or `<unknown>` when the entry key itself is damaged).
        state: String,
        /// What is wrong with the bytes.
        reason: String,
    },
    /// sled reported an I/O or storage error.
    #[error("sled state backend at {}: {source}", path.display())]
    Sled {
        /// The backend's directory.
        path: PathBuf,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
    /// A sled directory was written with another number of key groups.
    #[error(
        "sled state backend at {}: it holds state for {stored} key groups, not {requested}; \
         open it with max_parallelism {stored} or use an empty directory",
        path.display()
    )]
    MaxParallelismMismatch {
        /// The backend's directory.
        path: PathBuf,
        /// The number of key groups the directory was created with.
        stored: usize,
        /// The number asked for now.
        requested: usize,
    },
    /// A state name is reused for another kind of state.
    #[error(
        "state '{name}' is registered as {registered} state and cannot be opened as {requested} state; \
         give the {requested} state another name"
    )]
    KindMismatch {
        /// The state's name.
        name: String,
        /// The kind it was first registered with.
        registered: StateKind,
        /// The kind asked for now.
        requested: StateKind,
    },
    /// A state name is reused with another value type.
    #[error(
        "state '{name}' holds {registered} and cannot be opened with type {requested}; \
         use the same type for every descriptor of a state name"
    )]
    TypeMismatch {
        /// The state's name.
        name: String,
        /// The type it was first registered with.
        registered: &'static str,
        /// The type asked for now.
        requested: &'static str,
    },
    /// A state name is reused with another TTL configuration.
    #[error(
        "state '{name}' is registered with TTL {registered:?} and cannot be opened with TTL {requested:?}; \
         use one TTL configuration per state name"
    )]
    TtlMismatch {
        /// The state's name.
        name: String,
        /// The TTL it was first registered with.
        registered: Option<StateTtlConfig>,
        /// The TTL asked for now.
        requested: Option<StateTtlConfig>,
    },
    /// A state name longer than the key layout allows.
    #[error("state name '{name}…' is {len} bytes long; state names are limited to 65535 bytes")]
    NameTooLong {
        /// The first characters of the name.
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    /// Keyed state was used before the operator set a current key.
    #[error("state '{state}' was used before a current key was set; call set_current_key first")]
    NoCurrentKey {
        /// The state's name.
        state: String,
    },
    /// A key (or snapshot) belongs to a key group this store does not own.
    #[error(
        "key group {key_group} is outside this store's key groups {start}..={end}; \
         the key or snapshot was routed to the wrong subtask"
    )]
    KeyGroupOutOfRange {
        /// The key group that was asked for.
        key_group: usize,
        /// First key group this store owns.
        start: usize,
        /// Last key group this store owns.
        end: usize,
    },
    /// A store was given key groups that do not exist.
    #[error(
        "key-group range {start}..={end} does not fit max_parallelism {max_parallelism}; \
         use KeyGroupRange::of_subtask(subtask, max_parallelism, parallelism)"
    )]
    InvalidKeyGroupRange {
        /// First key group asked for.
        start: usize,
        /// Last key group asked for.
        end: usize,
        /// The backend's number of key groups.
        max_parallelism: usize,
    },
    /// A key, user-map key or timer namespace could not be serialized.
    #[error("key cannot be encoded: {0}")]
    KeyEncoding(String),
    /// The number of key groups is not one the key layout supports.
    #[error("max_parallelism {0} is not supported: use 1..=65536 key groups (128 is the default)")]
    InvalidMaxParallelism(usize),
    /// A snapshot entry's key is not a valid entry key for the key group being restored.
    #[error("snapshot entry for key group {expected} is malformed: {reason}")]
    BadSnapshotEntry {
        /// The key group being restored.
        expected: usize,
        /// What is wrong with the entry.
        reason: String,
    },
    /// A checkpoint or savepoint on disk cannot be used: missing, not a snapshot, damaged,
    /// from another format version, or unreadable. `problem` says what is wrong and what to do.
    #[error("snapshot at {}: {problem}", path.display())]
    Checkpoint {
        /// The snapshot's directory (or the checkpoint directory).
        path: PathBuf,
        /// What is wrong, and what to do about it.
        problem: String,
    },
    /// A snapshot's storage failed, not its content: the file system is full, a file cannot
    /// be read or written, or sled did not finish within its time limit. The snapshot may be
    /// intact; `problem` says what failed and what to do.
    #[error("snapshot at {}: {problem}", path.display())]
    Storage {
        /// The snapshot's directory.
        path: PathBuf,
        /// What failed, and what to do about it.
        problem: String,
    },
    /// A snapshot without metadata: the job stopped while writing it, or damage to its files
    /// cut off the end of sled's log, where the metadata (written last) was.
    #[error(
        "snapshot at {}: incomplete snapshot: it has no metadata, so either writing it never finished \
         (the job stopped during the checkpoint) or its files are damaged (sled drops a damaged log's tail, \
         and the metadata is written last); restore from an older checkpoint or another savepoint",
        path.display()
    )]
    IncompleteSnapshot {
        /// The snapshot's directory.
        path: PathBuf,
    },
    /// A snapshot is open elsewhere: sled's lock on it is held by another reader or writer.
    #[error(
        "snapshot at {}: it is open elsewhere (its sled lock is held by another reader or writer); \
         close the other handle or wait for it to finish",
        path.display()
    )]
    SnapshotLocked {
        /// The snapshot's directory.
        path: PathBuf,
    },
    /// An operator's snapshot cannot be written: it contradicts itself or the header.
    #[error("operator '{uid}' cannot be written to a snapshot: {problem}")]
    InvalidOperatorSnapshot {
        /// The operator's uid.
        uid: String,
        /// What is wrong with its snapshot.
        problem: String,
    },
    /// A state name that eddy keeps for its own entries.
    #[error(
        "state name '{name}' starts with NUL, which eddy reserves for its own entries (timers); \
         choose another name"
    )]
    ReservedName {
        /// The name, escaped.
        name: String,
    },
    /// A state handle was used with another store than the one it was opened from.
    #[error("state '{state}' was used with another store than the one it was opened from")]
    ForeignStore {
        /// The state.
        state: String,
    },
    /// State was used from inside a callback that already holds the store (e.g. a clock).
    #[error("the keyed state store was used re-entrantly; do not access state from inside a state callback")]
    Reentrant,
}
