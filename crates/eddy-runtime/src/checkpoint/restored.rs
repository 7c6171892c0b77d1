//! The snapshot a job (or a restarted attempt) starts from: a checkpoint or savepoint on disk,
//! or the newest checkpoint kept in memory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use eddy_core::key::KeyGroupRange;
use eddy_core::{Error, Result};
use eddy_state::checkpoint::{redistribute, SnapshotMetadata, SnapshotReader, StoredStateKind};
use eddy_state::{KeyedEntries, OperatorSnapshot, Redistribution, SnapshotHeader, SnapshotKind};

/// Where restored state is read from.
enum Store {
    /// A checkpoint or savepoint directory, open while subtasks restore from it.
    Disk(Box<Disk>),
    /// A checkpoint the coordinator kept in memory.
    Memory(Vec<OperatorSnapshot>),
}

/// A snapshot on disk: its path, its metadata, and its database while it is open. sled locks
/// an open database, so it is closed once an attempt's subtasks are built (a running job must
/// not keep its restored checkpoint locked: the directory's clean-up could not delete it).
struct Disk {
    path: PathBuf,
    metadata: SnapshotMetadata,
    reader: Mutex<Option<SnapshotReader>>,
}

impl Disk {
    fn with_reader<R>(&self, f: impl FnOnce(&SnapshotReader) -> Result<R>) -> Result<R> {
        let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        if reader.is_none() {
            *reader = Some(SnapshotReader::open(&self.path).map_err(checkpoint_error)?);
        }
        f(reader.as_ref().expect("opened above"))
    }
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
        let disk = Disk {
            path: reader.path().to_path_buf(),
            metadata: reader.metadata().clone(),
            reader: Mutex::new(Some(reader)),
        };
        RestoredState { header: disk.metadata.header.clone(), store: Store::Disk(Box::new(disk)) }
    }

    /// Closes the database until it is read again (by a restart's subtasks). Closing is
    /// bounded in time; a close that stalls (a failing disk) is logged, and the next open of
    /// the snapshot reports it locked.
    pub fn release(&self) {
        if let Store::Disk(disk) = &self.store {
            let reader = disk.reader.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(Err(error)) = reader.map(SnapshotReader::close) {
                tracing::error!("{error}");
            }
        }
    }

    /// Where the snapshot is on disk (`None`: a checkpoint kept in memory).
    pub fn path(&self) -> Option<&Path> {
        match &self.store {
            Store::Disk(disk) => Some(&disk.path),
            Store::Memory(_) => None,
        }
    }

    /// The snapshot for people: `checkpoint 7 (/jobs/chk/chk-0000000007)`.
    pub fn describe(&self) -> String {
        let kind = match self.header.kind {
            SnapshotKind::Checkpoint => "checkpoint",
            SnapshotKind::Savepoint => "savepoint",
        };
        match self.path() {
            Some(path) => format!("{kind} {} ({})", self.header.id, path.display()),
            None => format!("{kind} {} (kept in memory)", self.header.id),
        }
    }

    /// A checkpoint held in memory.
    pub fn from_memory(header: SnapshotHeader, operators: Vec<OperatorSnapshot>) -> Self {
        RestoredState { header, store: Store::Memory(operators) }
    }

    /// The snapshot's header: id, kind, max parallelism.
    pub fn header(&self) -> &SnapshotHeader {
        &self.header
    }

    /// The uids of the operators that have state in it.
    pub fn uids(&self) -> BTreeSet<String> {
        match &self.store {
            Store::Disk(disk) => disk.metadata.operators.iter().map(|o| o.uid.clone()).collect(),
            Store::Memory(operators) => operators.iter().map(|o| o.uid.clone()).collect(),
        }
    }

    /// Operator `uid`'s keyed entries in `key_groups`.
    pub fn keyed(&self, uid: &str, key_groups: KeyGroupRange) -> Result<Vec<KeyedEntries>> {
        match &self.store {
            Store::Disk(disk) => disk.with_reader(|r| r.keyed(uid, key_groups).map_err(checkpoint_error)),
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
            Store::Disk(disk) => disk.with_reader(|r| r.list(uid, name).map_err(checkpoint_error))?,
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
            Store::Disk(disk) => {
                let mode =
                    disk.metadata.operator(uid).and_then(|o| o.states.iter().find(|s| s.name == name)).and_then(|s| {
                        match s.kind {
                            StoredStateKind::List { redistribution, .. } => Some(redistribution),
                            StoredStateKind::Keyed { .. } => None,
                        }
                    });
                (disk.with_reader(|r| r.list(uid, name).map_err(checkpoint_error))?, mode)
            }
            Store::Memory(operators) => {
                let list = operators.iter().filter(|o| o.uid == uid).flat_map(|o| &o.lists).find(|l| l.name == name);
                (list.map(|l| l.items.clone()).unwrap_or_default(), list.map(|l| l.redistribution))
            }
        };
        Ok(redistribute(items, mode.unwrap_or(Redistribution::Split), subtask, parallelism))
    }
}
