//! The snapshot a job (or a restarted attempt) starts from: a checkpoint or savepoint on disk,
//! or the newest checkpoint kept in memory.

use std::collections::BTreeSet;
use std::path::PathBuf;

use eddy_core::key::KeyGroupRange;
use eddy_core::{Error, Result};
use eddy_state::checkpoint::{redistribute, SnapshotReader, StoredStateKind};
use eddy_state::{KeyedEntries, OperatorSnapshot, Redistribution, SnapshotHeader};

/// Where restored state is read from.
enum Store {
    /// A checkpoint or savepoint directory.
    Disk(SnapshotReader),
    /// A checkpoint the coordinator kept in memory.
    Memory(Vec<OperatorSnapshot>),
}

/// A complete snapshot that subtasks restore their state from.
pub struct RestoredState {
    header: SnapshotHeader,
    store: Store,
}

fn checkpoint_error(error: impl std::fmt::Display) -> Error {
    Error::Checkpoint(error.to_string())
}

impl RestoredState {
    /// A snapshot read from disk (already verified).
    pub fn from_disk(reader: SnapshotReader) -> Self {
        RestoredState { header: reader.metadata().header.clone(), store: Store::Disk(reader) }
    }

    /// A checkpoint held in memory.
    pub fn from_memory(header: SnapshotHeader, operators: Vec<OperatorSnapshot>) -> Self {
        RestoredState { header, store: Store::Memory(operators) }
    }

    /// The snapshot's header: id, kind, max parallelism.
    pub fn header(&self) -> &SnapshotHeader {
        &self.header
    }

    /// Where it lies, when on disk.
    pub fn path(&self) -> Option<PathBuf> {
        match &self.store {
            Store::Disk(reader) => Some(reader.path().to_path_buf()),
            Store::Memory(_) => None,
        }
    }

    /// The uids of the operators that have state in it.
    pub fn uids(&self) -> BTreeSet<String> {
        match &self.store {
            Store::Disk(reader) => reader.metadata().operators.iter().map(|o| o.uid.clone()).collect(),
            Store::Memory(operators) => operators.iter().map(|o| o.uid.clone()).collect(),
        }
    }

    /// Operator `uid`'s keyed entries in `key_groups`.
    pub fn keyed(&self, uid: &str, key_groups: KeyGroupRange) -> Result<Vec<KeyedEntries>> {
        match &self.store {
            Store::Disk(reader) => reader.keyed(uid, key_groups).map_err(checkpoint_error),
            Store::Memory(operators) => Ok(operators
                .iter()
                .filter(|o| o.uid == uid)
                .flat_map(|o| &o.keyed)
                .map(|state| KeyedEntries {
                    state: state.state.clone(),
                    entries: state.entries.iter().filter(|e| key_groups.contains(e.0 as usize)).cloned().collect(),
                })
                .collect()),
        }
    }

    /// Every item of operator `uid`'s list `name`, from all old subtasks.
    pub fn list_all(&self, uid: &str, name: &str) -> Result<Vec<Vec<u8>>> {
        let items = match &self.store {
            Store::Disk(reader) => reader.list(uid, name).map_err(checkpoint_error)?,
            Store::Memory(operators) => operators
                .iter()
                .filter(|o| o.uid == uid)
                .flat_map(|o| &o.lists)
                .find(|l| l.name == name)
                .map(|l| l.items.clone())
                .unwrap_or_default(),
        };
        Ok(items.into_iter().flatten().collect())
    }

    /// Subtask `subtask` of `parallelism`'s share of operator `uid`'s list `name`.
    pub fn list(&self, uid: &str, name: &str, subtask: usize, parallelism: usize) -> Result<Vec<Vec<u8>>> {
        let (items, mode) = match &self.store {
            Store::Disk(reader) => {
                let mode = reader.operator(uid).and_then(|o| o.states.iter().find(|s| s.name == name)).and_then(|s| {
                    match s.kind {
                        StoredStateKind::List { redistribution, .. } => Some(redistribution),
                        StoredStateKind::Keyed { .. } => None,
                    }
                });
                (reader.list(uid, name).map_err(checkpoint_error)?, mode)
            }
            Store::Memory(operators) => {
                let list = operators.iter().filter(|o| o.uid == uid).flat_map(|o| &o.lists).find(|l| l.name == name);
                (list.map(|l| l.items.clone()).unwrap_or_default(), list.map(|l| l.redistribution))
            }
        };
        Ok(redistribute(items, mode.unwrap_or(Redistribution::Split), subtask, parallelism))
    }
}
