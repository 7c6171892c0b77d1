//! Writing a snapshot: its inputs checked, then every operator's entries in sorted chunks
//! ([`operator_write`](super::operator_write), or [`changelog`](super::changelog) for an
//! operator that hands over only its changes), then the metadata; an incremental checkpoint
//! writes only the chunks its base does not have.

use std::collections::HashSet;
use std::path::Path;

use super::deadline::{close, within, SYNC_LIMIT};
use super::format::{
    DELTAS_TREE, FORMAT_VERSION, KEYED_TREE, LISTS_TREE, MAGIC, MAX_FRAMED_LEN, MAX_NAME_LEN, METADATA_KEY,
};
use super::guard::{catch_panic, sled_error};
use super::metadata::SnapshotMetadata;
use super::open::open_waiting_for_lock;
use super::operator_write::{reusable_chunks, write_operator, SortedKeyed, Target, MAX_KEY_GROUPS};
use crate::changes::OperatorChanges;
use crate::error::{Result, StateError};
use crate::operator_snapshot::{KeyedEntries, OperatorSnapshot, SnapshotHeader, SnapshotKind};

/// Writes one snapshot (a checkpoint or a savepoint) into `dir`, which must not exist or be
/// empty, and returns its metadata.
///
/// All entries are written and flushed before the metadata, which is flushed last: a
/// snapshot whose writer stopped half way has no metadata, and readers refuse it as
/// incomplete. A write that fails (a full disk, say) removes what it wrote. Inputs that
/// contradict themselves (a key group outside
/// `header.max_parallelism`, a key twice in one state, two operators with one uid) are
/// refused with [`StateError::InvalidOperatorSnapshot`] before anything is written.
pub fn write_snapshot(dir: &Path, header: SnapshotHeader, operators: &[OperatorSnapshot]) -> Result<SnapshotMetadata> {
    write(dir, header, operators, None, &[])
}

/// Writes an incremental checkpoint into `dir`: like [`write_snapshot`], but a chunk of a
/// keyed part (one state's entries in one key group) that is exactly as one of the same
/// part in `base` is not written again: the new metadata references the checkpoint that
/// stores it. Returns the metadata.
///
/// `base` is the metadata of the previous checkpoint, whose directory is a sibling of `dir`
/// in the same [`CheckpointDirectory`](super::CheckpointDirectory): a reader finds a
/// referenced chunk in `<dir>/../chk-<id>`. A chunk stored more than
/// [`REWRITE_AFTER`](super::REWRITE_AFTER) ids before this checkpoint is written again, so
/// unchanged state does not keep an old checkpoint directory alive for ever. Savepoints are
/// always written in full ([`write_snapshot`]): `header` must be a checkpoint's, newer than
/// `base`, with the same number of key groups.
pub fn write_incremental(
    dir: &Path,
    header: SnapshotHeader,
    operators: &[OperatorSnapshot],
    base: &SnapshotMetadata,
) -> Result<SnapshotMetadata> {
    check_incremental(dir, &header, base)?;
    write(dir, header, operators, Some(base), &[])
}

/// Writes an incremental checkpoint from a changelog: the operators' keyed parts given in
/// full (`operators`) and the changes to the others since `base` (`changes`, at most one
/// per operator; an operator without is written as by [`write_incremental`]), as Flink's
/// changelog state backend does. Returns the metadata.
///
/// A changed part of `base` gets a *delta* (its changed entries and tombstones) on top of
/// the chunks and deltas it had, so the checkpoint writes about what changed, not the
/// state. Each part is *materialised* (read back, changed, written in full as chunks) once
/// every [`REWRITE_AFTER`](super::REWRITE_AFTER) ids, staggered by key group so that only
/// a share of the parts is rewritten at each checkpoint (Flink's periodic
/// materialization), and as soon as its deltas outgrow its chunks: a restore then never
/// reads more than `REWRITE_AFTER` deltas per part, and no part keeps a checkpoint more
/// than that many ids old alive. Materialising reads the part from the checkpoints that
/// store it, in `dir`'s parent directory.
pub fn write_changelog(
    dir: &Path,
    header: SnapshotHeader,
    operators: &[OperatorSnapshot],
    changes: &[OperatorChanges],
    base: &SnapshotMetadata,
) -> Result<SnapshotMetadata> {
    check_incremental(dir, &header, base)?;
    write(dir, header, operators, Some(base), changes)
}

/// Refuses an incremental checkpoint on a base it cannot build on.
fn check_incremental(dir: &Path, header: &SnapshotHeader, base: &SnapshotMetadata) -> Result<()> {
    let problem = |problem: String| Err(StateError::Checkpoint { path: dir.to_path_buf(), problem });
    if header.kind != SnapshotKind::Checkpoint || base.header.kind != SnapshotKind::Checkpoint {
        return problem(
            "only a checkpoint can be incremental, on top of a checkpoint; write savepoints in full".into(),
        );
    }
    if base.header.id >= header.id || base.header.max_parallelism != header.max_parallelism {
        return problem(format!(
            "checkpoint {} ({} key groups) cannot build on checkpoint {} ({} key groups): the base must be older, \
             with the same key groups",
            header.id, header.max_parallelism, base.header.id, base.header.max_parallelism
        ));
    }
    Ok(())
}

/// Writes a full snapshot, or an incremental checkpoint on top of `base`.
fn write(
    dir: &Path,
    header: SnapshotHeader,
    operators: &[OperatorSnapshot],
    base: Option<&SnapshotMetadata>,
    changes: &[OperatorChanges],
) -> Result<SnapshotMetadata> {
    check_header(dir, &header)?;
    let sorted = check_operators(&header, operators)?;
    super::changelog::check_changes(&header, operators, changes)?;
    let created = prepare_dir(dir)?;
    let config = sled::Config::new().path(dir).mode(sled::Mode::HighThroughput).flush_every_ms(None);
    let written = open_waiting_for_lock(dir, &config).and_then(|db| {
        let written =
            catch_panic(dir, "writing the snapshot", || write_all(dir, &db, header, operators, &sorted, base, changes));
        let closed = close(dir, db);
        // Once the metadata is flushed the snapshot is complete, even if closing stalls.
        if let (Ok(_), Err(error)) = (&written, closed) {
            tracing::error!("{error}");
        }
        written
    });
    if written.is_err() {
        discard(dir, created);
    }
    written
}

/// Removes what a failed write left in `dir` (and `dir` itself if the write created it): a
/// metadata write that failed may still reach the disk while sled closes, and a snapshot
/// reported as failed must never turn up complete later.
fn discard(dir: &Path, created: bool) {
    let removed = if created {
        std::fs::remove_dir_all(dir)
    } else {
        std::fs::read_dir(dir).and_then(|entries| {
            entries.map(|entry| entry.map(|e| e.path())).try_for_each(|path| {
                let path = path?;
                if path.is_dir() {
                    std::fs::remove_dir_all(path)
                } else {
                    std::fs::remove_file(path)
                }
            })
        })
    };
    if let Err(e) = removed {
        tracing::error!("cannot remove the failed snapshot at {}: {e}; delete it by hand", dir.display());
    }
}

/// Refuses a number of key groups the key layout cannot hold.
fn check_header(dir: &Path, header: &SnapshotHeader) -> Result<()> {
    if (1..=MAX_KEY_GROUPS).contains(&header.max_parallelism) {
        return Ok(());
    }
    Err(StateError::Checkpoint {
        path: dir.to_path_buf(),
        problem: format!(
            "the header's max_parallelism {} is not supported; use 1..={MAX_KEY_GROUPS} key groups",
            header.max_parallelism
        ),
    })
}

/// Checks every operator before anything is written, so bad input leaves no directory
/// behind, and returns each operator's keyed entries in the order they are written.
fn check_operators<'a>(header: &SnapshotHeader, operators: &'a [OperatorSnapshot]) -> Result<Vec<SortedKeyed<'a>>> {
    let mut uids = HashSet::new();
    let mut sorted = Vec::with_capacity(operators.len());
    for op in operators {
        if !uids.insert(op.uid.as_str()) {
            return Err(invalid(op, "two operators have this uid; give every operator a unique uid".into()));
        }
        sorted.push(check_operator(header, op)?);
    }
    Ok(sorted)
}

/// Checks one operator's names, key groups, keys and list sizes, and sorts its keyed
/// entries: the sort that orders them for writing also finds a key given twice.
fn check_operator<'a>(header: &SnapshotHeader, op: &'a OperatorSnapshot) -> Result<SortedKeyed<'a>> {
    check_name(op, "its uid", &op.uid)?;
    check_unique_names(op, "keyed state", op.keyed.iter().map(|k| k.state.as_str()))?;
    check_unique_names(op, "list", op.lists.iter().map(|l| l.name.as_str()))?;
    for keyed in &op.keyed {
        check_name(op, "a keyed state name", &keyed.state)?;
        check_keyed_entries(header, op, keyed)?;
    }
    for list in &op.lists {
        check_name(op, "a list name", &list.name)?;
        let too_long = u32::try_from(list.items.len()).is_err()
            || list.items.iter().any(|items| u32::try_from(items.len()).is_err());
        if too_long {
            return Err(invalid(op, format!("list '{}' has more than {} subtasks or items", list.name, u32::MAX)));
        }
    }
    let sorted = SortedKeyed::new(op);
    for (key_group, entries) in sorted.key_groups() {
        if let Some(pair) = entries.windows(2).find(|pair| pair[0].storage_order(&pair[1]).is_eq()) {
            let state = &sorted.states[pair[0].state].state;
            return Err(invalid(op, format!("state '{state}' has the same key twice in key group {key_group}")));
        }
    }
    Ok(sorted)
}

/// Refuses key groups the job does not have, and keys and values too long to frame.
fn check_keyed_entries(header: &SnapshotHeader, op: &OperatorSnapshot, keyed: &KeyedEntries) -> Result<()> {
    if keyed.entries.iter().any(|(_, key, value)| key.len() > MAX_FRAMED_LEN || value.len() > MAX_FRAMED_LEN) {
        let state = &keyed.state;
        return Err(invalid(op, format!("state '{state}' has a key or value over {MAX_FRAMED_LEN} bytes")));
    }
    if let Some((key_group, _, _)) = keyed.entries.iter().find(|e| usize::from(e.0) >= header.max_parallelism) {
        return Err(invalid(
            op,
            format!(
                "state '{}' has an entry in key group {key_group}, but the job has only {} key groups",
                keyed.state, header.max_parallelism
            ),
        ));
    }
    Ok(())
}

/// Refuses a name longer than its u16 length prefix can say.
fn check_name(op: &OperatorSnapshot, what: &str, name: &str) -> Result<()> {
    if name.len() <= MAX_NAME_LEN {
        return Ok(());
    }
    Err(invalid(op, format!("{what} is {} bytes long; the limit is {MAX_NAME_LEN} bytes", name.len())))
}

/// Refuses two states (or two lists) of one operator with the same name: they would share keys.
fn check_unique_names<'a>(op: &OperatorSnapshot, what: &str, names: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(invalid(op, format!("two {what}s are named '{name}'; merge them or rename one")));
        }
    }
    Ok(())
}

/// An [`StateError::InvalidOperatorSnapshot`] for `op`.
fn invalid(op: &OperatorSnapshot, problem: String) -> StateError {
    StateError::InvalidOperatorSnapshot { uid: op.uid.clone(), problem }
}

/// Creates `dir`, refusing one that already holds files: a snapshot is never overwritten.
/// Returns whether it created the directory.
fn prepare_dir(dir: &Path) -> Result<bool> {
    let problem = |problem: String| StateError::Checkpoint { path: dir.to_path_buf(), problem };
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(|e| {
            problem(format!("cannot read the directory ({e}); pass a new or empty directory for the snapshot"))
        })?;
        if entries.next().is_some() {
            return Err(problem(
                "the directory is not empty; snapshots are never overwritten: pass a new or empty directory".into(),
            ));
        }
        return Ok(false);
    }
    std::fs::create_dir_all(dir)
        .map(|()| true)
        .map_err(|e| problem(format!("cannot create the directory ({e}); check the path and its permissions")))
}

/// Writes every operator, flushes, then writes and flushes the metadata.
fn write_all(
    dir: &Path,
    db: &sled::Db,
    header: SnapshotHeader,
    operators: &[OperatorSnapshot],
    sorted: &[SortedKeyed<'_>],
    base: Option<&SnapshotMetadata>,
    changes: &[OperatorChanges],
) -> Result<SnapshotMetadata> {
    let keyed = db.open_tree(KEYED_TREE).map_err(|e| sled_error(dir, "creating the keyed tree", e))?;
    let lists = db.open_tree(LISTS_TREE).map_err(|e| sled_error(dir, "creating the lists tree", e))?;
    let deltas = db.open_tree(DELTAS_TREE).map_err(|e| sled_error(dir, "creating the deltas tree", e))?;
    let mut operator_metadata = Vec::with_capacity(operators.len());
    let mut base_reader = super::changelog::BaseReader::new(dir, base);
    for (op, sorted) in operators.iter().zip(sorted) {
        let reusable = base.map(|base| reusable_chunks(base, &op.uid, header.id)).unwrap_or_default();
        let target = Target { dir, keyed: &keyed, id: header.id, reusable };
        let metadata = match changes.iter().find(|c| c.uid == op.uid) {
            Some(changes) => {
                let base_op = base.and_then(|base| base.operator(&op.uid));
                let trees = super::changelog::Trees { lists: &lists, deltas: &deltas };
                super::changelog::write_operator(&target, trees, op, sorted, changes, base_op, &mut base_reader)?
            }
            None => write_operator(&target, &lists, op, sorted)?,
        };
        operator_metadata.push(metadata);
    }
    drop(base_reader);
    flush(dir, db, "flushing the entries")?;
    let metadata = SnapshotMetadata {
        magic: MAGIC.to_string(),
        format_version: FORMAT_VERSION,
        header,
        fingerprint: super::format::fingerprint(operators.iter().map(|op| op.uid.as_str())),
        operators: operator_metadata,
    };
    // Written last: its presence is what makes the snapshot complete.
    db.insert(METADATA_KEY, metadata.encode()?).map_err(|e| sled_error(dir, "writing the metadata", e))?;
    flush(dir, db, "flushing the metadata")?;
    Ok(metadata)
}

/// Flushes the database within [`SYNC_LIMIT`]: a full or failing disk can block a flush for good.
fn flush(dir: &Path, db: &sled::Db, doing: &'static str) -> Result<()> {
    let (db, owned) = (db.clone(), dir.to_path_buf());
    within(dir, doing, SYNC_LIMIT, move || db.flush().map(drop).map_err(|e| sled_error(&owned, doing, e)))
}
