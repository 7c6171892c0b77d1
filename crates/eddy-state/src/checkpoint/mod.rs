//! Checkpoints and savepoints on disk: writing, reading, verifying and keeping the last N.
//!
//! # Format (version 3)
//!
//! One snapshot — a checkpoint or a savepoint — is one directory holding one sled 0.34
//! database, self-contained, so a savepoint can be copied anywhere and restored at any
//! parallelism. The database has four parts:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `keyed` | `uid_len u16 │ uid │ key_group u16 │ state_len u16 │ state │ chunk u32` | a chunk: entries framed `key_len u32 │ key │ value_len u32 │ value`, in key order |
//! | `deltas` | as `keyed`, chunk 0 | a delta: changed entries framed as in a chunk, each value `1 │ new value` or `0` (removed), in key order |
//! | `lists` | `uid_len u16 │ uid │ name_len u16 │ name │ old_subtask u32 │ index u32` | the item's bytes |
//! | default, key `metadata` | | bincode (standard) of [`SnapshotMetadata`] |
//!
//! All integers are big-endian, so sled's byte order is numeric order: an operator's keyed
//! chunks are one contiguous range ordered by key group, and a subtask restoring key groups
//! `a..=b` reads exactly one range scan. A list reads back subtask by subtask, in order.
//!
//! **Chunks.** A state's entries in one key group are stored in key order as chunks
//! numbered 0, 1, 2, …; a chunk is closed at 1024 entries or once it reaches 64 KiB,
//! whichever comes first (an entry larger than that is a chunk of its own), and in version 2
//! also after a boundary key (below). A chunk never
//! spans key groups or states, so restoring at any parallelism reads whole chunks. One sled
//! entry per keyed entry cost more than the data: writing 1M entries (8–12 byte keys, 8 byte
//! values, 128 key groups, one state) took 7–8 s and 280 MB, 10M took 75–94 s and 2.9 GB,
//! and checkpoints of a word count took 36% of its throughput at 1 s intervals. In chunks,
//! 1M take 0.25–0.3 s and 40 MB, 10M take 4–5 s and 380 MB; verifying 10M takes 0.15 s
//! instead of 8 s, reading a quarter of their key groups 0.3 s instead of 1.2–2.3 s
//! (sled 0.34.7, release, 2 cores). Chunks of 256 to 4096 entries measured within noise of
//! each other in time; 256 took 18% more disk, and larger chunks make reading a few keys
//! decode more. sled keeps tree nodes this large in the `blobs` folder of the snapshot
//! directory: copy a savepoint's whole directory.
//!
//! **Keyed parts, chunks and incremental checkpoints (version 2).** One state's entries in
//! one key group are a *part*, stored as chunks. Where a chunk ends depends on the keys: at
//! 1024 entries or 64 KiB, or after a key whose xxh3 has its low 9 bits zero (one in 512 on
//! average; content-defined chunking), so changing or inserting a few entries changes the
//! chunks that hold them and leaves the others byte for byte as they were. The metadata
//! lists every part of every operator ([`KeyedPart`]: state, key group, entries, bytes)
//! with its chunks in order ([`ChunkRef`]: entries, bytes, xxh3-64 of the chunk's bytes,
//! and where it is stored: `stored_in`, the id of the checkpoint whose `keyed` tree holds
//! it, under chunk number `number`). A full snapshot stores every chunk itself, numbered by
//! its position in its part. An incremental checkpoint ([`write_incremental`]) stores only
//! the chunks its base (the previous checkpoint) does not have in the same part, and
//! references the others in the checkpoint that stores them, `<dir>/chk-<stored_in>` in
//! the same [`CheckpointDirectory`] — never through a chain: a chunk taken over twice still
//! names the checkpoint holding its bytes. A chunk stored more than [`REWRITE_AFTER`] ids
//! earlier is written again, so unchanged state does not keep an old directory alive for
//! ever. [`CheckpointDirectory::retain`] never deletes a checkpoint that a kept one takes
//! chunks from (Flink's shared state registry, with the references read from the kept
//! checkpoints' metadata instead of counted). Savepoints are always full, so they stay
//! self-contained and portable, as in Flink. [`write_incremental`] finds what changed by
//! content, from the whole state the subtasks hand over.
//!
//! **Deltas (version 3): incremental checkpoints from a changelog.** With change tracking
//! on, a subtask hands over only the entries changed since the previous checkpoint
//! ([`OperatorChanges`](crate::OperatorChanges)), and [`write_changelog`] stores them per
//! part as a *delta* ([`DeltaRef`]: where it is stored, its changes, bytes and xxh3-64) on
//! top of the part's chunks and earlier deltas, as Flink's changelog state backend does.
//! A restore reads the chunks, applies the deltas in order, and checks the result against
//! the part's entry and byte counts. A part is *materialised* — written in full as chunks,
//! its deltas dropped — once every [`MATERIALIZE_AFTER`] ids (staggered by key group, so
//! only a share of the parts is rewritten per checkpoint; Flink's periodic
//! materialization), when anything it refers to is that old, or when its deltas outgrow
//! its chunks.
//!
//! Version 1 had no parts (every snapshot stored everything) and version 2 no deltas; this
//! build reads both ([`OLDEST_FORMAT_VERSION`]), and writes version 3.
//!
//! **Completeness.** The writer writes every entry, flushes, then writes the metadata and
//! flushes again. The metadata is the commit: a directory without it is an incomplete
//! snapshot (the job stopped while writing it) and is never loaded.
//!
//! **Integrity.** The metadata starts with the magic string `"eddy-snapshot"` and the
//! [`FORMAT_VERSION`], read before anything else so a foreign database or another version is
//! refused by name. It records the job [`fingerprint`] (xxh3 of the sorted operator uids)
//! and, per operator, per state counts of entries (keyed entries, not chunks), their key
//! and value bytes, and key groups, and a checksum: xxh3-64 over the operator's stored
//! pairs in sled key order, `keyed` tree first (one pair per chunk: its key and its whole
//! value), then `lists`, then (version 3) `deltas`, each pair framed as `key_len u32 │ key
//! │ value_len u32 │ value`. From version 2 on the operator's counts and key groups cover all its parts, and its checksum
//! the pairs this snapshot stores itself; each stored chunk must match the checksum, entries
//! and bytes its metadata records (and none may be missing or extra), and each chunk taken
//! over is read from the checkpoint storing it and checked the same way (a damaged or
//! missing one fails verification, and recovery skips the checkpoint as it skips any
//! damaged one).
//! [`SnapshotReader::verify`] recomputes all of it in one ordered scan per tree, and checks
//! that every chunk parses as whole frames, that a state's chunks in a key group are
//! numbered 0, 1, 2, … and that their keys ascend. A chunk that does not parse is damaged:
//! reading it is an error naming the operator and the path. sled itself checks its log
//! with CRCs; a damaged file that makes sled panic is caught and reported as an error,
//! never a crash.
//!
//! **Checkpoint directories.** A job's checkpoints live in `<dir>/chk-<id:010>`
//! ([`CheckpointDirectory`]), next to records of the savepoints it took
//! (`<dir>/savepoint-<id:010>`, holding the savepoint's path). Recovery takes the newest
//! snapshot of either kind that opens and verifies, skipping newer damaged, incomplete or
//! missing ones with a warning; old checkpoints are deleted by
//! [`CheckpointDirectory::retain`], which never deletes the newest complete one, and a
//! restore sets the snapshots newer than the one it restored aside into [`SUPERSEDED_DIR`].
//!
//! sled locks a database's directory while it is open: a snapshot has one reader or one
//! writer at a time. Opening waits briefly for a just-dropped handle's lock. Opening,
//! flushing and closing run on a helper thread with a time limit, because a full or failing
//! disk can block sled for good; past it they fail with [`StateError::Storage`](crate::StateError::Storage).
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

mod changelog;
mod damage;
mod deadline;
mod delta;
mod directory;
mod format;
mod guard;
mod metadata;
mod open;
mod operator_write;
mod reader;
mod redistribute;
mod shared;
mod verify;
mod writer;

pub use directory::{open_restore_path, CheckpointDirectory, SUPERSEDED_DIR};
pub use format::{fingerprint, FORMAT_VERSION, MAGIC, MATERIALIZE_AFTER, OLDEST_FORMAT_VERSION, REWRITE_AFTER};
pub use metadata::{ChunkRef, DeltaRef, KeyedPart, OperatorMetadata, SnapshotMetadata, StateMetadata, StoredStateKind};
pub use reader::{is_snapshot_dir, SnapshotReader};
pub use redistribute::redistribute;
pub use writer::{write_changelog, write_incremental, write_snapshot};
