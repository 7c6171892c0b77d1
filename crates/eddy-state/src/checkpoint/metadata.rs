//! A snapshot's metadata: what it holds, per operator and state, and how to check it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::format::{FORMAT_VERSION, MAGIC};
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
    /// xxh3-64 over the operator's stored pairs in key order (see the module docs).
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
        if prefix.format_version != FORMAT_VERSION {
            return Err(problem(format!(
                "it is in snapshot format version {}, and this build of eddy reads version {FORMAT_VERSION}; \
                 use the eddy version that wrote it",
                prefix.format_version
            )));
        }
        let (metadata, used) = bincode::serde::decode_from_slice::<Self, _>(bytes, CONFIG).map_err(|e| {
            problem(format!("its metadata is damaged ({e}); use an older checkpoint or another savepoint"))
        })?;
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
}

/// The leading fields of [`SnapshotMetadata`], which every format version keeps.
#[derive(Deserialize)]
struct MetadataPrefix {
    magic: String,
    format_version: u32,
}
