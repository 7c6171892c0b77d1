//! A snapshot's metadata: what it holds, per operator and state, and how to check it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::format::{FORMAT_VERSION, MAGIC, OLDEST_FORMAT_VERSION};
use crate::error::{Result, StateError};
use crate::operator_snapshot::{Redistribution, SnapshotHeader};

/// bincode's configuration for metadata, with a size limit so damaged length prefixes cannot
/// make decoding allocate without bound.
const CONFIG: bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<{ 256 << 20 }>,
> = bincode::config::standard().with_limit::<{ 256 << 20 }>();

/// Everything a snapshot records besides its entries; stored last, under the default tree's
/// `metadata` key, as bincode (standard configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMetadata {
    /// Always [`MAGIC`](super::MAGIC) (`"eddy-snapshot"`).
    pub magic: String,
    /// The format the snapshot was written in ([`FORMAT_VERSION`](super::FORMAT_VERSION)).
    pub format_version: u32,
    /// The job, id, kind, time and key groups of the snapshot.
    pub header: SnapshotHeader,
    /// [`fingerprint`](super::fingerprint) of the operator uids.
    pub fingerprint: u64,
    /// Every operator in the snapshot, in the order they were written.
    pub operators: Vec<OperatorMetadata>,
}

/// What a snapshot holds for one operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorMetadata {
    /// The operator's stable id.
    pub uid: String,
    /// Its display name.
    pub name: String,
    /// Its parallelism when the snapshot was taken.
    pub parallelism: usize,
    /// Its keyed states, then its lists, in the order they were written.
    pub states: Vec<StateMetadata>,
    /// xxh3-64 over the operator's stored pairs in key order (see the module docs): in
    /// version 2 on, the pairs this snapshot stores itself (chunks, lists, then in version 3
    /// deltas), not the parts it references.
    pub checksum: u64,
    /// Every keyed part (one state's entries in one key group): where it is stored and what
    /// it holds (version 2 on; empty in a version-1 snapshot, which stores everything itself).
    pub parts: Vec<KeyedPart>,
}

/// One state's entries in one key group, as a snapshot of format version 2 or 3 records it:
/// a run of chunks, each stored by this snapshot or taken over from an earlier checkpoint,
/// then (version 3) the deltas to apply on top of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyedPart {
    /// The keyed state's name.
    pub state: String,
    /// The key group.
    pub key_group: u16,
    /// Its entries.
    pub entries: u64,
    /// Its key plus value bytes.
    pub bytes: u64,
    /// Its chunks, in key order: the part as of its last materialisation.
    pub chunks: Vec<ChunkRef>,
    /// The changes made since, oldest first (format version 3; empty for a part stored in
    /// full): a restore reads the chunks, then applies each delta in order.
    pub deltas: Vec<DeltaRef>,
}

/// Where one delta of a keyed part is stored, and what it holds: the entries of the part
/// that changed between two checkpoints (new values, and tombstones for removed keys), as
/// a changelog state backend writes them (format version 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaRef {
    /// The id of the checkpoint whose `deltas` tree stores it.
    pub stored_in: u64,
    /// Its changes: values written and keys removed.
    pub changes: u32,
    /// Its stored bytes (its frames).
    pub bytes: u64,
    /// xxh3-64 of its bytes.
    pub checksum: u64,
}

/// Where one chunk of a keyed part is stored, and what it holds: the unit an incremental
/// checkpoint writes again or takes over from an earlier checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// The id of the checkpoint whose directory stores the chunk: the snapshot's own id, or
    /// an earlier checkpoint's in the same checkpoint directory (`chk-<id>`).
    pub stored_in: u64,
    /// Its number there: the last field of its key in that snapshot's `keyed` tree.
    pub number: u32,
    /// Its entries.
    pub entries: u32,
    /// Its key plus value bytes.
    pub bytes: u64,
    /// xxh3-64 of the chunk's bytes (its frames): a chunk taken over is checked with it.
    pub checksum: u64,
}

/// What a snapshot holds for one named state of an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMetadata {
    /// The state's (or list's) name.
    pub name: String,
    /// Keyed state or an operator-state list, with what is particular to each.
    pub kind: StoredStateKind,
    /// Keyed entries, or list items over all old subtasks.
    pub entries: u64,
    /// User bytes: key plus value bytes of keyed entries, item bytes of list items.
    pub bytes: u64,
}

/// The kind of a stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoredStateKind {
    /// Keyed state, filed by key group.
    Keyed {
        /// The lowest and highest key group with an entry; `None` when there are none.
        key_groups: Option<(u32, u32)>,
        /// How many distinct key groups have entries.
        key_group_count: u32,
    },
    /// An operator-state list.
    List {
        /// How its items are shared out on restore.
        redistribution: Redistribution,
        /// How many old subtasks it has item lists for (some may be empty).
        subtasks: u32,
    },
}

impl StoredStateKind {
    /// `"keyed"` or `"list"`.
    pub fn label(&self) -> &'static str {
        match self {
            StoredStateKind::Keyed { .. } => "keyed",
            StoredStateKind::List { .. } => "list",
        }
    }
}

impl SnapshotMetadata {
    /// The operator with this uid.
    pub fn operator(&self, uid: &str) -> Option<&OperatorMetadata> {
        self.operators.iter().find(|op| op.uid == uid)
    }

    /// Entries (keyed entries and list items) over all operators.
    pub fn entries(&self) -> u64 {
        self.operators.iter().map(OperatorMetadata::entries).sum()
    }

    /// User bytes over all operators.
    pub fn bytes(&self) -> u64 {
        self.operators.iter().map(OperatorMetadata::bytes).sum()
    }

    /// Whether this is an incremental checkpoint: it takes some chunks of keyed state over
    /// from earlier checkpoints instead of storing them.
    pub fn is_incremental(&self) -> bool {
        self.shared_chunks().next().is_some()
    }

    /// The ids of the checkpoints storing the chunks and deltas this snapshot takes over
    /// from earlier checkpoints (with repeats).
    fn shared_chunks(&self) -> impl Iterator<Item = u64> + '_ {
        let id = self.header.id;
        self.operators.iter().flat_map(|op| op.stored_in()).filter(move |stored_in| *stored_in != id)
    }

    /// Bytes this snapshot stores itself: all of its state for a full snapshot; for an
    /// incremental checkpoint, its lists, the chunks it writes and its deltas.
    pub fn added_bytes(&self) -> u64 {
        let id = self.header.id;
        self.operators.iter().map(|op| op.bytes() - op.keyed_bytes() + op.own_keyed_bytes(id)).sum()
    }

    /// The ids of the earlier checkpoints this one takes chunks or deltas from, ascending.
    pub fn references(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.shared_chunks().collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The metadata's stored bytes.
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        bincode::serde::encode_to_vec(self, CONFIG)
            .map_err(|source| StateError::Encode { state: "<snapshot metadata>".into(), source })
    }

    /// Decodes stored metadata, checking the magic and version before the rest so that a
    /// foreign database or a newer format gets a message saying so, not a decode error.
    pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Result<Self> {
        let problem = |problem: String| StateError::Checkpoint { path: path.to_path_buf(), problem };
        let (prefix, _): (MetadataPrefix, _) = bincode::serde::decode_from_slice(bytes, CONFIG).map_err(|e| {
            problem(format!("its metadata is not eddy snapshot metadata ({e}); the snapshot is damaged or not eddy's"))
        })?;
        if prefix.magic != MAGIC {
            return Err(problem(format!(
                "its metadata starts with {:?}, not {MAGIC:?}: this sled database is not an eddy snapshot",
                prefix.magic
            )));
        }
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&prefix.format_version) {
            return Err(problem(format!(
                "it is in snapshot format version {}, and this build of eddy reads versions \
                 {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}; use the eddy version that wrote it",
                prefix.format_version
            )));
        }
        let damaged = |e: bincode::error::DecodeError| {
            problem(format!("its metadata is damaged ({e}); use an older checkpoint or another savepoint"))
        };
        let (metadata, used) = if prefix.format_version == 1 {
            let (v1, used) =
                bincode::serde::decode_from_slice::<v1::SnapshotMetadata, _>(bytes, CONFIG).map_err(damaged)?;
            (v1.into(), used)
        } else if prefix.format_version == 2 {
            let (v2, used) =
                bincode::serde::decode_from_slice::<v2::SnapshotMetadata, _>(bytes, CONFIG).map_err(damaged)?;
            (v2.into(), used)
        } else {
            bincode::serde::decode_from_slice::<Self, _>(bytes, CONFIG).map_err(damaged)?
        };
        if used != bytes.len() {
            return Err(problem(format!(
                "its metadata has {} trailing bytes; it is damaged: use an older checkpoint or another savepoint",
                bytes.len() - used
            )));
        }
        Ok(metadata)
    }
}

impl OperatorMetadata {
    /// The state or list with this name (a keyed state first, if both kinds use it).
    pub fn state(&self, name: &str) -> Option<&StateMetadata> {
        self.states.iter().find(|state| state.name == name)
    }

    /// Entries over all its states.
    pub fn entries(&self) -> u64 {
        self.states.iter().map(|state| state.entries).sum()
    }

    /// User bytes over all its states.
    pub fn bytes(&self) -> u64 {
        self.states.iter().map(|state| state.bytes).sum()
    }

    /// User bytes of the chunks that snapshot `id` takes from earlier checkpoints.
    pub fn shared_bytes(&self, id: u64) -> u64 {
        self.chunks().filter(|chunk| chunk.stored_in != id).map(|chunk| chunk.bytes).sum()
    }

    /// Bytes of keyed state (key plus value bytes of its entries).
    fn keyed_bytes(&self) -> u64 {
        let keyed = self.states.iter().filter(|state| matches!(state.kind, StoredStateKind::Keyed { .. }));
        keyed.map(|state| state.bytes).sum()
    }

    /// Keyed bytes snapshot `id` stores itself: its own chunks and deltas (all keyed bytes
    /// in a version-1 snapshot, which has no parts).
    fn own_keyed_bytes(&self, id: u64) -> u64 {
        if self.parts.is_empty() {
            return self.keyed_bytes();
        }
        let chunks: u64 = self.chunks().filter(|chunk| chunk.stored_in == id).map(|chunk| chunk.bytes).sum();
        let deltas = self.parts.iter().flat_map(|part| &part.deltas).filter(|delta| delta.stored_in == id);
        chunks + deltas.map(|delta| delta.bytes).sum::<u64>()
    }

    /// Where each of its chunks and deltas is stored.
    fn stored_in(&self) -> impl Iterator<Item = u64> + '_ {
        let chunks = self.chunks().map(|chunk| chunk.stored_in);
        chunks.chain(self.parts.iter().flat_map(|part| &part.deltas).map(|delta| delta.stored_in))
    }

    /// The chunks of all its keyed parts.
    pub fn chunks(&self) -> impl Iterator<Item = &ChunkRef> {
        self.parts.iter().flat_map(|part| &part.chunks)
    }
}

/// The leading fields of [`SnapshotMetadata`], which every format version keeps.
#[derive(Deserialize)]
struct MetadataPrefix {
    magic: String,
    format_version: u32,
}

/// The metadata of format version 1, which had no keyed parts: read and turned into the
/// current form, with `parts` empty.
mod v1 {
    use serde::Deserialize;

    use super::StateMetadata;
    use crate::operator_snapshot::SnapshotHeader;

    #[derive(Deserialize)]
    pub(super) struct SnapshotMetadata {
        magic: String,
        format_version: u32,
        header: SnapshotHeader,
        fingerprint: u64,
        operators: Vec<OperatorMetadata>,
    }

    #[derive(Deserialize)]
    struct OperatorMetadata {
        uid: String,
        name: String,
        parallelism: usize,
        states: Vec<StateMetadata>,
        checksum: u64,
    }

    impl From<SnapshotMetadata> for super::SnapshotMetadata {
        fn from(v1: SnapshotMetadata) -> Self {
            super::SnapshotMetadata {
                magic: v1.magic,
                format_version: v1.format_version,
                header: v1.header,
                fingerprint: v1.fingerprint,
                operators: v1
                    .operators
                    .into_iter()
                    .map(|op| super::OperatorMetadata {
                        uid: op.uid,
                        name: op.name,
                        parallelism: op.parallelism,
                        states: op.states,
                        checksum: op.checksum,
                        parts: Vec::new(),
                    })
                    .collect(),
            }
        }
    }
}

/// The metadata of format version 2, whose keyed parts had chunks but no deltas: read and
/// turned into the current form, with every part's `deltas` empty.
mod v2 {
    use serde::Deserialize;

    use super::{ChunkRef, StateMetadata};
    use crate::operator_snapshot::SnapshotHeader;

    #[derive(Deserialize)]
    pub(super) struct SnapshotMetadata {
        magic: String,
        format_version: u32,
        header: SnapshotHeader,
        fingerprint: u64,
        operators: Vec<OperatorMetadata>,
    }

    #[derive(Deserialize)]
    struct OperatorMetadata {
        uid: String,
        name: String,
        parallelism: usize,
        states: Vec<StateMetadata>,
        checksum: u64,
        parts: Vec<KeyedPart>,
    }

    #[derive(Deserialize)]
    struct KeyedPart {
        state: String,
        key_group: u16,
        entries: u64,
        bytes: u64,
        chunks: Vec<ChunkRef>,
    }

    impl From<SnapshotMetadata> for super::SnapshotMetadata {
        fn from(v2: SnapshotMetadata) -> Self {
            let part = |p: KeyedPart| super::KeyedPart {
                state: p.state,
                key_group: p.key_group,
                entries: p.entries,
                bytes: p.bytes,
                chunks: p.chunks,
                deltas: Vec::new(),
            };
            super::SnapshotMetadata {
                magic: v2.magic,
                format_version: v2.format_version,
                header: v2.header,
                fingerprint: v2.fingerprint,
                operators: v2
                    .operators
                    .into_iter()
                    .map(|op| super::OperatorMetadata {
                        uid: op.uid,
                        name: op.name,
                        parallelism: op.parallelism,
                        states: op.states,
                        checksum: op.checksum,
                        parts: op.parts.into_iter().map(part).collect(),
                    })
                    .collect(),
            }
        }
    }
}
