//! A checkpoint directory: numbered checkpoints, the newest usable one, and clean-up.

use std::path::{Path, PathBuf};

use super::reader::{is_snapshot_dir, SnapshotReader};
use crate::error::{Result, StateError};

/// The directory name prefix of a checkpoint: `chk-<id, 10 digits>`.
const PREFIX: &str = "chk-";

/// A directory holding a job's checkpoints, each a snapshot in `<dir>/chk-<id:010>`.
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
        let unreadable = |e: std::io::Error| StateError::Checkpoint {
            path: self.path.clone(),
            problem: format!("cannot list the checkpoint directory ({e}); check that it exists and is readable"),
        };
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.path).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            let id = entry.file_name().to_str().and_then(parse_id);
            if let Some(id) = id.filter(|_| entry.path().is_dir()) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// The newest checkpoint that opens and [verifies](SnapshotReader::verify), with one
    /// warning (also logged) for each newer checkpoint skipped, naming it and its problem.
    ///
    /// `Ok(None)` when there are no checkpoints; an error naming every problem when there
    /// are some but none is usable (restoring nothing then would silently lose state).
    pub fn latest_valid(&self) -> Result<Option<(SnapshotReader, Vec<String>)>> {
        let ids = self.ids()?;
        if ids.is_empty() {
            return Ok(None);
        }
        let mut warnings = Vec::new();
        for id in ids.iter().rev() {
            let path = self.path_for(*id);
            match open_verified(&path) {
                Ok(reader) => return Ok(Some((reader, warnings))),
                Err(error) => {
                    let warning = format!("skipped checkpoint {}: {}", path.display(), problem_of(&error));
                    tracing::warn!("{warning}");
                    warnings.push(warning);
                }
            }
        }
        Err(StateError::Checkpoint {
            path: self.path.clone(),
            problem: format!(
                "none of its {} checkpoints can be used: {}; restore from a savepoint, or start the job \
                 without state",
                ids.len(),
                warnings.join("; ")
            ),
        })
    }

    /// Deletes all but the newest `keep` complete checkpoints, and incomplete ones older than
    /// the newest complete one; never the newest complete one (even with `keep == 0`), and
    /// never one newer than it (it may still be being written) or one open elsewhere.
    ///
    /// "Complete" means its metadata opens; entries are not verified here.
    pub fn retain(&self, keep: usize) -> Result<()> {
        let keep = keep.max(1);
        let mut complete = 0;
        for id in self.ids()?.into_iter().rev() {
            let path = self.path_for(id);
            let delete = complete >= keep
                || match SnapshotReader::open(&path) {
                    Ok(_) => {
                        complete += 1;
                        false
                    }
                    Err(StateError::SnapshotLocked { .. }) => false,
                    Err(_) => complete > 0,
                };
            if delete {
                remove_unless_open(&path)?;
            }
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

/// An error's problem without the path the warning already names.
fn problem_of(error: &StateError) -> String {
    match error {
        StateError::Checkpoint { problem, .. } => problem.clone(),
        StateError::IncompleteSnapshot { .. } => {
            "incomplete snapshot: it has no metadata (writing it never finished, or its files are damaged)".into()
        }
        StateError::SnapshotLocked { .. } => "it is open elsewhere (its sled lock is held)".into(),
        other => other.to_string(),
    }
}

/// The id of a checkpoint directory name, if it is exactly `chk-<id:010>`.
fn parse_id(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?;
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
    let lock = match std::fs::OpenOptions::new().read(true).write(true).open(path.join("db")) {
        Ok(file) if fs2::FileExt::try_lock_exclusive(&file).is_err() => return Ok(()),
        Ok(file) => Some(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(cannot(e)),
    };
    std::fs::remove_dir_all(path).map_err(cannot)?;
    drop(lock);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_id;

    #[test]
    fn only_canonical_names_are_checkpoints() {
        assert_eq!(parse_id("chk-0000000042"), Some(42));
        assert_eq!(parse_id("chk-12345678901"), Some(12_345_678_901));
        assert_eq!(parse_id("chk-42"), None);
        assert_eq!(parse_id("chk-00000000x2"), None);
        assert_eq!(parse_id("chk-+000000042"), None);
        assert_eq!(parse_id("savepoint-0000000042"), None);
    }
}
