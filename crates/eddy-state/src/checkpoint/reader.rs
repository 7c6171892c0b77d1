//! Reading a snapshot: its metadata, a subtask's key groups, an operator's lists.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use eddy_core::key::KeyGroupRange;

use super::damage::{broken_chunk, damaged};
use super::deadline::close;
use super::format::{
    chunk_key, frames, keyed_scan_start, list_prefix, parse_chunk_key, uid_prefix, ChunkKey, DELTAS_TREE, KEYED_TREE,
    LISTS_TREE, METADATA_KEY,
};
use super::guard::{catch_panic, sled_error};
use super::metadata::{ChunkRef, DeltaRef, KeyedPart, OperatorMetadata, SnapshotMetadata, StoredStateKind};
use super::open::open_waiting_for_lock;
use super::shared::{EarlierSnapshot, SharedChunks};
use crate::error::{Result, StateError};
use crate::operator_snapshot::KeyedEntries;

/// An open, complete snapshot (checkpoint or savepoint): its metadata is read and checked
/// on open; its entries are read on demand, and checked by [`verify`](Self::verify).
///
/// The reader holds sled's lock on the directory until it is dropped, so drop it before
/// anything else (a writer, another reader, [`retain`](super::CheckpointDirectory::retain))
/// opens the same snapshot.
pub struct SnapshotReader {
    path: PathBuf,
    metadata: SnapshotMetadata,
    /// Always `Some` until closed: [`close`](Self::close) or drop takes the handles to close
    /// them on a helper thread, with a time limit and a panic guard.
    handles: Option<Handles>,
    /// The earlier checkpoints an incremental checkpoint takes chunks from.
    shared: SharedChunks<SnapshotReader>,
}

/// The open database and its entry trees.
struct Handles {
    keyed: sled::Tree,
    lists: sled::Tree,
    /// Keyed parts' deltas (format version 3 on; `None` before).
    deltas: Option<sled::Tree>,
    /// Held so the database (and its lock) lives exactly as long as the reader.
    _db: sled::Db,
}

impl SnapshotReader {
    /// Opens the snapshot in `dir` and reads its metadata, refusing a directory without a
    /// snapshot database, an incomplete snapshot ([`StateError::IncompleteSnapshot`]), a
    /// foreign database, another format version or damaged metadata.
    ///
    /// sled may write to the directory while opening it (recovery bookkeeping); the stored
    /// entries are not changed.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let path = dir.as_ref().to_path_buf();
        check_snapshot_files(&path)?;
        let config = sled::Config::new().path(&path).mode(sled::Mode::HighThroughput).flush_every_ms(None);
        let db = open_waiting_for_lock(&path, &config)?;
        match catch_panic(&path, "reading the metadata", || read_metadata(&path, &db)) {
            Ok((metadata, [keyed, lists, deltas])) => {
                let deltas = (metadata.format_version >= 3).then_some(deltas).flatten();
                let handles =
                    Some(Handles { keyed: keyed.expect("always"), lists: lists.expect("always"), deltas, _db: db });
                Ok(SnapshotReader { path, metadata, handles, shared: SharedChunks::default() })
            }
            Err(error) => {
                // The first problem is the one to report.
                let _ = close(&path, db);
                Err(error)
            }
        }
    }

    /// Closes the snapshot, releasing sled's lock on it; an error when sled does not finish
    /// closing within a minute (a full or failing disk) — then the lock may stay held.
    /// Dropping the reader closes it too, logging such an error.
    pub fn close(mut self) -> Result<()> {
        match self.handles.take() {
            Some(handles) => close(&self.path, handles),
            None => Ok(()),
        }
    }

    /// The snapshot's metadata.
    pub fn metadata(&self) -> &SnapshotMetadata {
        &self.metadata
    }

    /// The snapshot's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The operator with this uid, if the snapshot has one.
    pub fn operator(&self, uid: &str) -> Option<&OperatorMetadata> {
        self.metadata.operator(uid)
    }

    /// Recomputes every operator's checksum, entry and byte counts and key groups from the
    /// stored entries (one ordered scan of each tree) and compares them with the metadata;
    /// a difference is a [`StateError::Checkpoint`] naming the operator and the path. An
    /// incremental checkpoint's chunks stored in earlier checkpoints are read there and
    /// checked against their checksums: a damaged or missing one fails verification.
    pub fn verify(&self) -> Result<()> {
        let handles = self.handles();
        catch_panic(&self.path, "verifying the entries", || {
            super::verify::verify(&self.path, &self.metadata, &handles.keyed, &handles.lists, handles.deltas.as_ref())
        })?;
        let id = self.metadata.header.id;
        for op in &self.metadata.operators {
            for part in &op.parts {
                if !part.deltas.is_empty() {
                    // Applying the deltas checks them, and the part's counts after them.
                    self.part_entries(op, part)?;
                    continue;
                }
                for chunk in part.chunks.iter().filter(|chunk| chunk.stored_in != id) {
                    self.shared_chunk(op, part, chunk, |_, _| ())?;
                }
            }
        }
        Ok(())
    }

    /// The bytes stored under `key` in this snapshot's deltas tree.
    pub(crate) fn own_delta(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        catch_panic(&self.path, "reading a delta", || {
            let Some(deltas) = &self.handles().deltas else { return Ok(None) };
            let found = deltas.get(key).map_err(|e| sled_error(&self.path, "reading a delta", e))?;
            Ok(found.map(|bytes| bytes.to_vec()))
        })
    }

    /// The entries of a part with deltas, in key order: its chunks with every delta applied,
    /// checked against the part's entry and byte counts.
    pub(crate) fn part_entries(&self, op: &OperatorMetadata, part: &KeyedPart) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut entries = Vec::with_capacity(part.entries as usize);
        self.part_chunks(op, part, |key, value| entries.push((key.to_vec(), value.to_vec())))?;
        for delta in &part.deltas {
            let bytes = if delta.stored_in == self.metadata.header.id {
                let key = chunk_key(&uid_prefix(&op.uid), part.key_group, &part.state, 0);
                self.own_delta(&key)?.ok_or_else(|| self.damaged(op, &delta_problem(part, delta, "is missing")))?
            } else {
                let read = catch_panic(&self.path, "reading a shared delta", || {
                    Ok(self.shared.read_delta(&self.path, &op.uid, part, delta.stored_in))
                })?;
                read.map_err(|what| self.damaged(op, &delta_problem(part, delta, &format!("is unusable: {what}"))))?
            };
            let changes = super::delta::decode(&bytes, delta)
                .map_err(|what| self.damaged(op, &delta_problem(part, delta, &what)))?;
            entries = super::delta::apply(entries, &changes);
        }
        let bytes: u64 = entries.iter().map(|(key, value)| (key.len() + value.len()) as u64).sum();
        if (entries.len() as u64, bytes) != (part.entries, part.bytes) {
            let what = format!(
                "state '{}' in key group {} does not add up to its entries after its deltas",
                part.state, part.key_group
            );
            return Err(self.damaged(op, &what));
        }
        Ok(entries)
    }

    /// Hands the entries of a part's chunks, in order, to `visit`, each chunk read from this
    /// snapshot or the checkpoint that stores it and checked.
    fn part_chunks(&self, op: &OperatorMetadata, part: &KeyedPart, mut visit: impl FnMut(&[u8], &[u8])) -> Result<()> {
        let (id, prefix) = (self.metadata.header.id, uid_prefix(&op.uid));
        for chunk in &part.chunks {
            if chunk.stored_in != id {
                self.shared_chunk(op, part, chunk, &mut visit)?;
                continue;
            }
            let key = chunk_key(&prefix, part.key_group, &part.state, chunk.number);
            let missing = || {
                let (number, state, key_group) = (chunk.number, &part.state, part.key_group);
                self.damaged(op, &format!("chunk {number} of state '{state}' in key group {key_group} is missing"))
            };
            let bytes = self.own_chunk(&key)?.ok_or_else(missing)?;
            decode_chunk(part, chunk, &bytes, &mut visit).map_err(|what| self.damaged(op, &what))?;
        }
        Ok(())
    }

    /// The bytes stored under `key` in this snapshot's keyed tree.
    pub(crate) fn own_chunk(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        catch_panic(&self.path, "reading a keyed chunk", || {
            let found =
                self.handles().keyed.get(key).map_err(|e| sled_error(&self.path, "reading a keyed chunk", e))?;
            Ok(found.map(|bytes| bytes.to_vec()))
        })
    }

    /// Reads a chunk that this snapshot takes over from an earlier checkpoint, checks it
    /// against what the metadata says of it, and hands its entries to `visit`.
    fn shared_chunk(
        &self,
        op: &OperatorMetadata,
        part: &KeyedPart,
        chunk: &ChunkRef,
        visit: impl FnMut(&[u8], &[u8]),
    ) -> Result<()> {
        let read = catch_panic(&self.path, "reading a shared chunk", || {
            Ok(self.shared.read(&self.path, &op.uid, part, chunk))
        })?;
        let taken = format!(
            "its chunk {} of state '{}' in key group {}, taken over from checkpoint {}",
            chunk.number, part.state, part.key_group, chunk.stored_in
        );
        let bytes = read.map_err(|what| self.damaged(op, &format!("{taken} is unusable: {what}")))?;
        decode_chunk(part, chunk, &bytes, visit).map_err(|what| self.damaged(op, &format!("{taken}: {what}")))
    }

    /// The keyed entries of operator `uid` in `key_groups`, one [`KeyedEntries`] per keyed
    /// state of the operator (in metadata order, empty if it has no entries there), each
    /// sorted by key group, then key bytes.
    pub fn keyed(&self, uid: &str, key_groups: KeyGroupRange) -> Result<Vec<KeyedEntries>> {
        let op = self.operator(uid).ok_or_else(|| self.no_operator(uid))?;
        let mut out: Vec<KeyedEntries> = op
            .states
            .iter()
            .filter(|state| matches!(state.kind, StoredStateKind::Keyed { .. }))
            .map(|state| KeyedEntries { state: state.name.clone(), entries: Vec::new() })
            .collect();
        // Key groups are u16 on disk: a range past them holds nothing.
        let Ok(start) = u16::try_from(key_groups.start) else { return Ok(out) };
        if key_groups.start > key_groups.end {
            return Ok(out);
        }
        if self.metadata.format_version == 1 {
            catch_panic(&self.path, "reading keyed entries", || self.scan_keyed(op, start, key_groups.end, &mut out))?;
        } else {
            self.read_parts(op, key_groups, &mut out)?;
        }
        Ok(out)
    }

    /// Format version 2: reads the parts of `op` in `key_groups`, chunk by chunk, from this
    /// snapshot or the checkpoint that stores each, into `out`, sorted by key group, then key.
    fn read_parts(&self, op: &OperatorMetadata, key_groups: KeyGroupRange, out: &mut [KeyedEntries]) -> Result<()> {
        for part in op.parts.iter().filter(|part| key_groups.contains(usize::from(part.key_group))) {
            let slot = out.iter().position(|entries| entries.state == part.state).ok_or_else(|| {
                self.damaged(op, &format!("it has a part of state '{}', which it does not list", part.state))
            })?;
            let entries = &mut out[slot].entries;
            let start = entries.len();
            if part.deltas.is_empty() {
                self.part_chunks(op, part, |key, value| entries.push((part.key_group, key.to_vec(), value.to_vec())))?;
            } else {
                let applied = self.part_entries(op, part)?;
                entries.extend(applied.into_iter().map(|(key, value)| (part.key_group, key, value)));
            }
            if !entries[start..].windows(2).all(|pair| pair[0].1 < pair[1].1) {
                let what = format!("state '{}' has keys out of order in key group {}", part.state, part.key_group);
                return Err(self.damaged(op, &what));
            }
        }
        for state in out {
            if !state.entries.is_sorted_by(|a, b| (a.0, &a.1) <= (b.0, &b.1)) {
                state.entries.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            }
        }
        Ok(())
    }

    /// Fills `out` with the operator's entries from key group `start` to `end` (inclusive).
    fn scan_keyed(&self, op: &OperatorMetadata, start: u16, end: usize, out: &mut [KeyedEntries]) -> Result<()> {
        let prefix = uid_prefix(&op.uid);
        let slots: HashMap<Vec<u8>, usize> =
            out.iter().enumerate().map(|(i, entries)| (entries.state.as_bytes().to_vec(), i)).collect();
        for item in self.handles().keyed.range(keyed_scan_start(&prefix, start)..) {
            let (key, chunk) = item.map_err(|e| sled_error(&self.path, "reading keyed entries", e))?;
            let Some(rest) = key.strip_prefix(&prefix[..]) else { break };
            let parsed = parse_chunk_key(rest).ok_or_else(|| self.damaged(op, "a keyed chunk's key is malformed"))?;
            if usize::from(parsed.key_group) > end {
                break;
            }
            let slot = slots.get(parsed.state).ok_or_else(|| {
                let state = String::from_utf8_lossy(parsed.state);
                self.damaged(op, &format!("it has keyed entries of state '{state}', which its metadata does not list"))
            })?;
            let entries = &mut out[*slot].entries;
            for frame in frames(&chunk) {
                let (key, value) = frame.map_err(|_| self.damaged(op, &broken_chunk(&parsed)))?;
                entries.push((parsed.key_group, key.to_vec(), value.to_vec()));
            }
        }
        Ok(())
    }

    /// The items of operator `uid`'s list `name`, per old subtask in subtask order, each in
    /// item order; see [`redistribute`](super::redistribute) to share them out.
    pub fn list(&self, uid: &str, name: &str) -> Result<Vec<Vec<Vec<u8>>>> {
        let op = self.operator(uid).ok_or_else(|| self.no_operator(uid))?;
        let subtasks = op
            .states
            .iter()
            .find_map(|state| match state.kind {
                StoredStateKind::List { subtasks, .. } if state.name == name => Some(subtasks),
                _ => None,
            })
            .ok_or_else(|| StateError::Checkpoint {
                path: self.path.clone(),
                problem: format!("operator '{uid}' has no list named '{name}'; check the list's name"),
            })?;
        catch_panic(&self.path, "reading a list", || self.scan_list(op, name, subtasks as usize))
    }

    /// Reads the items of one list, checking that every item sits where the writer put it.
    fn scan_list(&self, op: &OperatorMetadata, name: &str, subtasks: usize) -> Result<Vec<Vec<Vec<u8>>>> {
        let prefix = list_prefix(&uid_prefix(&op.uid), name);
        let mut out = vec![Vec::new(); subtasks];
        for item in self.handles().lists.scan_prefix(&prefix) {
            let (key, value) = item.map_err(|e| sled_error(&self.path, "reading list items", e))?;
            let position = <[u8; 8]>::try_from(&key[prefix.len()..]).ok().and_then(|rest| {
                let subtask = u32::from_be_bytes(rest[..4].try_into().ok()?) as usize;
                let index = u32::from_be_bytes(rest[4..].try_into().ok()?) as usize;
                (subtask < subtasks && index == out[subtask].len()).then_some(subtask)
            });
            let subtask = position.ok_or_else(|| {
                self.damaged(op, &format!("list '{name}' has an item outside its subtasks or out of order"))
            })?;
            out[subtask].push(value.to_vec());
        }
        Ok(out)
    }

    /// The open handles; present from open until drop.
    fn handles(&self) -> &Handles {
        self.handles.as_ref().expect("handles are only taken by drop")
    }

    /// The error for asking about an operator the snapshot does not have.
    fn no_operator(&self, uid: &str) -> StateError {
        StateError::Checkpoint {
            path: self.path.clone(),
            problem: format!("it has no operator with uid '{uid}'; check the uid, or call operator() first"),
        }
    }

    /// The error for damaged entries of `op`.
    fn damaged(&self, op: &OperatorMetadata, what: &str) -> StateError {
        damaged(&self.path, op, what)
    }
}

/// Checks a chunk of `part` against what the metadata says of it (`chunk`) and hands its
/// entries to `visit`; the error says what is wrong.
fn decode_chunk(
    part: &KeyedPart,
    chunk: &ChunkRef,
    bytes: &[u8],
    mut visit: impl FnMut(&[u8], &[u8]),
) -> std::result::Result<(), String> {
    let key = ChunkKey { key_group: part.key_group, state: part.state.as_bytes(), chunk: chunk.number };
    super::verify::check_chunk(&key, bytes, chunk)?;
    for (key, value) in frames(bytes).flatten() {
        visit(key, value);
    }
    Ok(())
}

/// What is wrong with a part's delta.
fn delta_problem(part: &KeyedPart, delta: &DeltaRef, what: &str) -> String {
    format!(
        "the delta of state '{}' in key group {} stored in checkpoint {} {what}",
        part.state, part.key_group, delta.stored_in
    )
}

/// An earlier checkpoint that an incremental one takes chunks from is read with the same
/// reader.
impl EarlierSnapshot for SnapshotReader {
    fn open_earlier(dir: &Path) -> Result<Self> {
        SnapshotReader::open(dir)
    }

    fn id(&self) -> u64 {
        self.metadata.header.id
    }

    fn own_chunk(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        SnapshotReader::own_chunk(self, key)
    }

    fn own_delta(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        SnapshotReader::own_delta(self, key)
    }
}

impl Drop for SnapshotReader {
    fn drop(&mut self) {
        if let Some(handles) = self.handles.take() {
            if let Err(error) = close(&self.path, handles) {
                tracing::error!("{error}");
            }
        }
    }
}

impl fmt::Debug for SnapshotReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotReader")
            .field("path", &self.path)
            .field("job", &self.metadata.header.job)
            .field("id", &self.metadata.header.id)
            .finish_non_exhaustive()
    }
}

/// Whether `dir` holds a snapshot database (a sled `db` file); says nothing about whether
/// the snapshot is complete or intact.
pub fn is_snapshot_dir(dir: &Path) -> bool {
    dir.join("db").is_file()
}

/// Refuses, before sled runs, a path that is not a snapshot: opening it with sled would
/// create an empty database there.
fn check_snapshot_files(dir: &Path) -> Result<()> {
    let problem = |problem: &str| StateError::Checkpoint { path: dir.to_path_buf(), problem: problem.into() };
    if !dir.is_dir() {
        return Err(problem("it does not exist or is not a directory; pass a savepoint or checkpoint directory"));
    }
    let db = dir.join("db");
    match std::fs::metadata(&db) {
        Ok(meta) if meta.is_file() && meta.len() > 0 => Ok(()),
        Ok(meta) if meta.is_file() => Err(problem(
            "its database file 'db' is empty: the snapshot is incomplete or damaged; \
             use an older checkpoint or another savepoint",
        )),
        _ => Err(problem(
            "it holds no snapshot database (no sled 'db' file); pass a savepoint directory, \
             a checkpoint's chk-* directory, or a checkpoint directory",
        )),
    }
}

/// Reads and checks the metadata, then opens the entry trees.
fn read_metadata(path: &Path, db: &sled::Db) -> Result<(SnapshotMetadata, [Option<sled::Tree>; 3])> {
    let bytes = db
        .get(METADATA_KEY)
        .map_err(|e| sled_error(path, "reading the metadata", e))?
        .ok_or_else(|| StateError::IncompleteSnapshot { path: path.to_path_buf() })?;
    let metadata = SnapshotMetadata::decode(path, &bytes)?;
    let fingerprint = super::format::fingerprint(metadata.operators.iter().map(|op| op.uid.as_str()));
    if fingerprint != metadata.fingerprint {
        return Err(StateError::Checkpoint {
            path: path.to_path_buf(),
            problem: "its metadata's operator fingerprint does not match its operators; the metadata is damaged: \
                      use an older checkpoint or another savepoint"
                .into(),
        });
    }
    let names = db.tree_names();
    let required: &[&str] =
        if metadata.format_version >= 3 { &[KEYED_TREE, LISTS_TREE, DELTAS_TREE] } else { &[KEYED_TREE, LISTS_TREE] };
    for tree in required {
        // open_tree would quietly create a missing tree: a missing one means lost entries.
        if !names.iter().any(|name| name == tree.as_bytes()) {
            return Err(StateError::Checkpoint {
                path: path.to_path_buf(),
                problem: format!("its '{tree}' tree is missing; the snapshot is damaged: use an older checkpoint"),
            });
        }
    }
    let mut trees = [None, None, None];
    for (slot, tree) in trees.iter_mut().zip(required) {
        *slot = Some(db.open_tree(tree).map_err(|e| sled_error(path, "opening an entry tree", e))?);
    }
    Ok((metadata, trees))
}
