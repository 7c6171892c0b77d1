//! A checkpoint directory: numbered checkpoints, records of the job's savepoints, the newest
//! usable snapshot among them, and clean-up.

use std::ops::RangeBounds;
use std::path::{Path, PathBuf};

use super::reader::{is_snapshot_dir, SnapshotReader};
use crate::error::{Result, StateError};

/// The directory name prefix of a checkpoint: `chk-<id, 10 digits>`.
const PREFIX: &str = "chk-";

/// The file name prefix of a savepoint record: `savepoint-<id, 10 digits>`, holding the
/// savepoint's absolute path.
const SAVEPOINT_PREFIX: &str = "savepoint-";

/// Where snapshots of a history that a restore abandoned are moved.
pub const SUPERSEDED_DIR: &str = "superseded";

/// A directory holding a job's checkpoints, each a snapshot in `<dir>/chk-<id:010>`, and
/// records of the savepoints the job took, each a file `<dir>/savepoint-<id:010>` naming
/// where the savepoint is.
///
/// Checkpoints and savepoints share one sequence of ids, so the newest snapshot of a job is
/// the one with the highest id, whichever kind it is. A restore from the directory
/// ([`latest_valid`](Self::latest_valid)) considers both: after a stop-with-savepoint, whose
/// sinks committed output newer than every checkpoint, it resumes from the savepoint.
#[derive(Debug, Clone)]
pub struct CheckpointDirectory {
    path: PathBuf,
}

impl CheckpointDirectory {
    /// Opens the checkpoint directory `dir`, creating it if it does not exist.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let path = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&path).map_err(|e| StateError::Checkpoint {
            path: path.clone(),
            problem: format!("cannot create the checkpoint directory ({e}); check the path and its permissions"),
        })?;
        Ok(CheckpointDirectory { path })
    }

    /// The checkpoint directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where checkpoint `id` lives (or will): `<dir>/chk-<id:010>`.
    pub fn path_for(&self, id: u64) -> PathBuf {
        self.path.join(format!("{PREFIX}{id:010}"))
    }

    /// The ids of every checkpoint directory present (complete or not), ascending. Only
    /// names exactly as [`path_for`](Self::path_for) makes them count.
    pub fn ids(&self) -> Result<Vec<u64>> {
        let mut ids: Vec<u64> =
            self.entries(PREFIX)?.into_iter().filter(|(_, path)| path.is_dir()).map(|e| e.0).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// The highest id of any checkpoint or recorded savepoint (0 when there is none): a job
    /// writing here numbers its snapshots after it.
    pub fn newest_id(&self) -> Result<u64> {
        let savepoints = self.savepoints()?.into_iter().map(|(id, _)| id);
        Ok(self.ids()?.into_iter().chain(savepoints).max().unwrap_or(0))
    }

    /// Records that the job wrote savepoint `id` to `savepoint`, so that a restore from this
    /// directory considers it (see [`latest_valid`](Self::latest_valid)). The record is a
    /// small file written atomically (a temporary file, then a rename).
    pub fn record_savepoint(&self, id: u64, savepoint: &Path) -> Result<()> {
        let problem = |problem: String| StateError::Storage { path: self.path.clone(), problem };
        let absolute = std::fs::canonicalize(savepoint)
            .map_err(|e| problem(format!("cannot resolve the savepoint path {} ({e})", savepoint.display())))?;
        let text = absolute.to_str().ok_or_else(|| {
            problem(format!("the savepoint path {} is not UTF-8; it cannot be recorded", absolute.display()))
        })?;
        let record = self.savepoint_record(id);
        let temporary = record.with_extension("tmp");
        std::fs::write(&temporary, format!("{text}\n")).and_then(|()| std::fs::rename(&temporary, &record)).map_err(
            |e| {
                let _ = std::fs::remove_file(&temporary);
                problem(format!("cannot record savepoint {id} as {} ({e}); check free space", record.display()))
            },
        )
    }

    /// The savepoints recorded here, `(id, path)`, ascending by id. A record that cannot be
    /// read names an empty path, which then fails to open.
    pub fn savepoints(&self) -> Result<Vec<(u64, PathBuf)>> {
        let mut records: Vec<(u64, PathBuf)> = self
            .entries(SAVEPOINT_PREFIX)?
            .into_iter()
            .filter(|(_, path)| path.is_file())
            .map(|(id, record)| {
                let text = std::fs::read_to_string(record).unwrap_or_default();
                (id, PathBuf::from(text.trim_end_matches('\n')))
            })
            .collect();
        records.sort_unstable_by_key(|(id, _)| *id);
        Ok(records)
    }

    /// The entries named `<prefix><id:010>`, with their ids.
    fn entries(&self, prefix: &str) -> Result<Vec<(u64, PathBuf)>> {
        let unreadable = |e: std::io::Error| StateError::Checkpoint {
            path: self.path.clone(),
            problem: format!("cannot list the checkpoint directory ({e}); check that it exists and is readable"),
        };
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.path).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            if let Some(id) = entry.file_name().to_str().and_then(|name| parse_id(name, prefix)) {
                found.push((id, entry.path()));
            }
        }
        Ok(found)
    }

    /// Where the record of savepoint `id` lives: `<dir>/savepoint-<id:010>`.
    fn savepoint_record(&self, id: u64) -> PathBuf {
        self.path.join(format!("{SAVEPOINT_PREFIX}{id:010}"))
    }

    /// The newest snapshot — checkpoint or recorded savepoint — that opens and
    /// [verifies](SnapshotReader::verify), with one warning for each newer one skipped,
    /// naming it and its problem (a recorded savepoint that was moved or deleted is one).
    ///
    /// `Ok(None)` when there are no snapshots; an error naming every problem when there are
    /// some but none is usable (restoring nothing then would silently lose state).
    pub fn latest_valid(&self) -> Result<Option<(SnapshotReader, Vec<String>)>> {
        let (found, warnings) = self.latest_valid_in(..)?;
        match found {
            Some(reader) => Ok(Some((reader, warnings))),
            None if warnings.is_empty() => Ok(None),
            None => Err(StateError::Checkpoint {
                path: self.path.clone(),
                problem: format!(
                    "none of its {} snapshots (checkpoints and recorded savepoints) can be used: {}; restore from \
                     a savepoint, or start the job \
                     without state",
                    warnings.len(),
                    warnings.join("; ")
                ),
            }),
        }
    }

    /// The newest snapshot with an id in `ids` that opens and verifies (`None` if none
    /// does), and a warning for each newer one in `ids` skipped.
    pub fn latest_valid_in(&self, ids: impl RangeBounds<u64>) -> Result<(Option<SnapshotReader>, Vec<String>)> {
        let checkpoints = self.ids()?.into_iter().map(|id| (id, self.path_for(id), "checkpoint"));
        let savepoints = self.savepoints()?.into_iter().map(|(id, path)| (id, path, "savepoint"));
        let mut candidates: Vec<(u64, PathBuf, &str)> =
            checkpoints.chain(savepoints).filter(|(id, _, _)| ids.contains(id)).collect();
        candidates.sort_by_key(|(id, _, _)| std::cmp::Reverse(*id));
        let mut warnings = Vec::new();
        for (id, path, kind) in candidates {
            match open_verified(&path).and_then(|reader| check_id(reader, id)) {
                Ok(reader) => return Ok((Some(reader), warnings)),
                Err(error) => {
                    warnings.push(format!("skipped {kind} {id} at {}: {}", path.display(), problem_of(&error)))
                }
            }
        }
        Ok((None, warnings))
    }

    /// Sets aside every snapshot newer than `id`, which a job was just restored from: they
    /// belong to a history the restore abandoned (sinks rolled back their output), so a later
    /// restore must never pick them. Checkpoints that hold a snapshot database and savepoint
    /// records move into [`SUPERSEDED_DIR`] (for the operator to inspect or delete); incomplete
    /// checkpoints without one are deleted. Returns the paths set aside or deleted.
    pub fn supersede_after(&self, id: u64) -> Result<Vec<PathBuf>> {
        let aside = self.path.join(SUPERSEDED_DIR);
        let mut moved = Vec::new();
        let checkpoints = self.ids()?.into_iter().filter(|&n| n > id).map(|n| self.path_for(n));
        let records = self.savepoints()?.into_iter().filter(|(n, _)| *n > id).map(|(n, _)| self.savepoint_record(n));
        for path in checkpoints.chain(records) {
            if path.is_dir() && !is_snapshot_dir(&path) {
                remove_unless_open(&path)?;
            } else {
                std::fs::create_dir_all(&aside).map_err(|e| self.cannot_supersede(&aside, e))?;
                let name = path.file_name().expect("a chk-* or savepoint-* name");
                let mut to = aside.join(name);
                if to.exists() {
                    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                    to = aside.join(format!("{}-{}", name.to_string_lossy(), millis.map_or(0, |d| d.as_millis())));
                }
                std::fs::rename(&path, &to).map_err(|e| self.cannot_supersede(&path, e))?;
            }
            moved.push(path);
        }
        Ok(moved)
    }

    /// The error for a snapshot that cannot be set aside.
    fn cannot_supersede(&self, path: &Path, e: std::io::Error) -> StateError {
        StateError::Storage {
            path: path.to_path_buf(),
            problem: format!(
                "cannot set it aside into {} ({e}); a later restore could pick it: move it out of {} by hand",
                self.path.join(SUPERSEDED_DIR).display(),
                self.path.display()
            ),
        }
    }

    /// Deletes all but the newest `keep` complete checkpoints, and incomplete ones older than
    /// the newest complete one; never the newest complete one (even with `keep == 0`), never
    /// one newer than it (it may still be being written) or one open elsewhere, and never
    /// one that stores chunks a kept incremental checkpoint takes over (Flink's shared state
    /// registry: a chunk lives as long as a kept checkpoint refers to it).
    ///
    /// "Complete" means its metadata opens; entries are not verified here.
    pub fn retain(&self, keep: usize) -> Result<()> {
        let keep = keep.max(1);
        let mut complete = 0;
        let mut doomed = Vec::new();
        let mut referenced = std::collections::BTreeSet::new();
        // A kept checkpoint open elsewhere may take chunks from any older one.
        let mut unknown_references = false;
        for id in self.ids()?.into_iter().rev() {
            let delete = complete >= keep
                || match SnapshotReader::open(self.path_for(id)) {
                    Ok(reader) => {
                        complete += 1;
                        referenced.extend(reader.metadata().references());
                        false
                    }
                    Err(StateError::SnapshotLocked { .. }) => {
                        unknown_references = true;
                        false
                    }
                    Err(_) => complete > 0,
                };
            if delete && !unknown_references {
                doomed.push(id);
            }
        }
        for id in doomed.into_iter().filter(|id| !referenced.contains(id)) {
            remove_unless_open(&self.path_for(id))?;
        }
        // A savepoint older than every checkpoint kept is never the one to restore.
        let oldest = self.ids()?.first().copied().unwrap_or(0);
        for (id, _) in self.savepoints()?.into_iter().filter(|(id, _)| *id < oldest) {
            let record = self.savepoint_record(id);
            std::fs::remove_file(&record).map_err(|e| StateError::Storage {
                path: record.clone(),
                problem: format!("cannot delete this old savepoint record ({e}); check the directory's permissions"),
            })?;
        }
        Ok(())
    }
}

/// Opens the snapshot or checkpoints to restore from at `path`, with warnings about
/// checkpoints skipped.
///
/// If `path` is itself a snapshot (a savepoint, or one `chk-*` checkpoint), it is opened
/// and verified; otherwise it is taken as a checkpoint directory and its
/// [newest valid checkpoint](CheckpointDirectory::latest_valid) is used. Anything else,
/// including an empty checkpoint directory, is an error.
pub fn open_restore_path(path: impl AsRef<Path>) -> Result<(SnapshotReader, Vec<String>)> {
    let path = path.as_ref();
    if is_snapshot_dir(path) {
        return Ok((open_verified(path)?, Vec::new()));
    }
    if !path.is_dir() {
        return Err(StateError::Checkpoint {
            path: path.to_path_buf(),
            problem: "it does not exist or is not a directory; pass a savepoint or checkpoint directory".into(),
        });
    }
    let directory = CheckpointDirectory { path: path.to_path_buf() };
    directory.latest_valid()?.ok_or_else(|| StateError::Checkpoint {
        path: path.to_path_buf(),
        problem: "it is neither a snapshot nor a checkpoint directory with chk-* checkpoints; pass a \
                  savepoint directory or a job's checkpoint directory"
            .into(),
    })
}

/// Opens and verifies one snapshot.
fn open_verified(path: &Path) -> Result<SnapshotReader> {
    let reader = SnapshotReader::open(path)?;
    reader.verify()?;
    Ok(reader)
}

/// Refuses a recorded savepoint whose path now holds another snapshot.
fn check_id(reader: SnapshotReader, id: u64) -> Result<SnapshotReader> {
    let found = reader.metadata().header.id;
    if found == id {
        return Ok(reader);
    }
    Err(StateError::Checkpoint {
        path: reader.path().to_path_buf(),
        problem: format!("it holds snapshot {found}, not savepoint {id}; the savepoint was replaced"),
    })
}

/// An error's problem without the path the warning already names.
fn problem_of(error: &StateError) -> String {
    match error {
        StateError::Checkpoint { problem, .. } | StateError::Storage { problem, .. } => problem.clone(),
        StateError::IncompleteSnapshot { .. } => {
            "incomplete snapshot: it has no metadata (writing it never finished, or its files are damaged)".into()
        }
        StateError::SnapshotLocked { .. } => "it is open elsewhere (its sled lock is held)".into(),
        other => other.to_string(),
    }
}

/// The id in a name that is exactly `<prefix><id:010>` (`chk-…`, `savepoint-…`).
fn parse_id(name: &str, prefix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: u64 = digits.parse().ok()?;
    (format!("{id:010}") == digits).then_some(id)
}

/// Deletes one checkpoint's directory, unless a reader or writer has it open (holds sled's
/// lock on its `db` file): a restore may still be reading an old checkpoint.
fn remove_unless_open(path: &Path) -> Result<()> {
    let cannot = |e: std::io::Error| StateError::Checkpoint {
        path: path.to_path_buf(),
        problem: format!("cannot delete this old checkpoint ({e}); check the directory's permissions"),
    };
    // Held until the directory is gone, so nobody opens it in between.
    let db = path.join("db");
    let lock = match std::fs::OpenOptions::new().read(true).write(true).open(&db) {
        Ok(file) if fs2::FileExt::try_lock_exclusive(&file).is_err() => return Ok(()),
        Ok(file) => Some(file),
        // No database file, so nobody can have it open.
        Err(_) if !db.is_file() => None,
        Err(e) => return Err(cannot(e)),
    };
    std::fs::remove_dir_all(path).map_err(cannot)?;
    drop(lock);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{parse_id, PREFIX, SAVEPOINT_PREFIX};

    #[test]
    fn only_canonical_names_are_checkpoints() {
        let parse_id = |name| parse_id(name, PREFIX);
        assert_eq!(parse_id("chk-0000000042"), Some(42));
        assert_eq!(parse_id("chk-12345678901"), Some(12_345_678_901));
        assert_eq!(parse_id("chk-42"), None);
        assert_eq!(parse_id("chk-00000000x2"), None);
        assert_eq!(parse_id("chk-+000000042"), None);
        assert_eq!(parse_id("savepoint-0000000042"), None);
    }

    #[test]
    fn savepoint_records_have_their_own_prefix() {
        assert_eq!(parse_id("savepoint-0000000042", SAVEPOINT_PREFIX), Some(42));
        assert_eq!(parse_id("savepoint-0000000042.tmp", SAVEPOINT_PREFIX), None);
        assert_eq!(parse_id("chk-0000000042", SAVEPOINT_PREFIX), None);
    }
}
