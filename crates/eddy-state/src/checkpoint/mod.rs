//! Checkpoints and savepoints on disk: writing, reading, verifying and keeping the last N.
//!
//! # Format (version 1)
//!
//! One snapshot — a checkpoint or a savepoint — is one directory holding one sled 0.34
//! database, self-contained, so a savepoint can be copied anywhere and restored at any
//! parallelism. The database has three parts:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `keyed` | `uid_len u16 │ uid │ key_group u16 │ state_len u16 │ state │ key` | the value's bytes |
//! | `lists` | `uid_len u16 │ uid │ name_len u16 │ name │ old_subtask u32 │ index u32` | the item's bytes |
//! | default, key `metadata` | | bincode (standard) of [`SnapshotMetadata`] |
//!
//! All integers are big-endian, so sled's byte order is numeric order: an operator's keyed
//! entries are one contiguous range ordered by key group, and a subtask restoring key groups
//! `a..=b` reads exactly one range scan. A list reads back subtask by subtask, in order.
//!
//! **Completeness.** The writer writes every entry, flushes, then writes the metadata and
//! flushes again. The metadata is the commit: a directory without it is an incomplete
//! snapshot (the job stopped while writing it) and is never loaded.
//!
//! **Integrity.** The metadata starts with the magic string `"eddy-snapshot"` and the
//! [`FORMAT_VERSION`], read before anything else so a foreign database or another version is
//! refused by name. It records the job [`fingerprint`] (xxh3 of the sorted operator uids)
//! and, per operator, per state counts, bytes and key groups, and a checksum: xxh3-64 over
//! the operator's stored pairs in sled key order, `keyed` tree first, then `lists`, each
//! pair framed as `key_len u32 │ key │ value_len u32 │ value`.
//! [`SnapshotReader::verify`] recomputes all of it in one ordered scan per tree. sled itself
//! checks its log with CRCs; a damaged file that makes sled panic is caught and reported as
//! an error, never a crash.
//!
//! **Checkpoint directories.** A job's checkpoints live in `<dir>/chk-<id:010>`
//! ([`CheckpointDirectory`]). Recovery takes the newest one that opens and verifies,
//! skipping newer damaged or incomplete ones with a warning; old ones are deleted by
//! [`CheckpointDirectory::retain`], which never deletes the newest complete one.
//!
//! sled locks a database's directory while it is open: a snapshot has one reader or one
//! writer at a time. Opening waits briefly for a just-dropped handle's lock.
//!
//! # Example
//!
//! ```
//! use eddy_core::key::KeyGroupRange;
//! use eddy_state::checkpoint::{write_snapshot, CheckpointDirectory};
//! use eddy_state::{KeyedEntries, OperatorSnapshot, SnapshotHeader, SnapshotKind};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let checkpoints = CheckpointDirectory::open(dir.path())?;
//! let header = SnapshotHeader {
//!     job: "clicks".into(),
//!     id: 7,
//!     kind: SnapshotKind::Checkpoint,
//!     created_ms: 0,
//!     max_parallelism: 128,
//!     finished: false,
//! };
//! let counts = KeyedEntries { state: "count".into(), entries: vec![(5, b"alice".to_vec(), b"\x03".to_vec())] };
//! let op = OperatorSnapshot { uid: "counter".into(), name: "Count".into(), parallelism: 2, keyed: vec![counts], lists: vec![] };
//! write_snapshot(&checkpoints.path_for(7), header, &[op])?;
//!
//! let (reader, warnings) = checkpoints.latest_valid()?.expect("one checkpoint");
//! assert!(warnings.is_empty());
//! let restored = reader.keyed("counter", KeyGroupRange { start: 0, end: 63 })?;
//! assert_eq!(restored[0].entries, vec![(5, b"alice".to_vec(), b"\x03".to_vec())]);
//! # Ok::<(), eddy_state::StateError>(())
//! ```

mod directory;
mod format;
mod guard;
mod metadata;
mod reader;
mod redistribute;
mod verify;
mod writer;

pub use directory::{open_restore_path, CheckpointDirectory};
pub use format::{fingerprint, FORMAT_VERSION, MAGIC};
pub use metadata::{OperatorMetadata, SnapshotMetadata, StateMetadata, StoredStateKind};
pub use reader::{is_snapshot_dir, SnapshotReader};
pub use redistribute::redistribute;
pub use writer::write_snapshot;
