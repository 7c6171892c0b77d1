//! Exactly-once text files: part files that become visible only when their checkpoint completes.
//!
//! A part file lives in three states, each with its own name in the output directory:
//!
//! 1. in progress, `.part-<subtask>-<attempt>-<seq>.inprogress`: records of the open
//!    transaction, created on its first record;
//! 2. pending, `_part-<checkpoint:010>-<subtask>-<attempt>.pending`: pre-committed (flushed and
//!    fsynced), waiting for its checkpoint to complete;
//! 3. visible, `part-<checkpoint:010>-<subtask>-<attempt>`: committed and complete.
//!
//! Each step is one atomic rename, so a reader that skips names starting with `.` or `_` (as
//! Hadoop-style readers do) only ever sees committed, complete files, sorted by checkpoint.
//!
//! The visible names are also the sink's record of what it committed: each names the
//! checkpoint that pre-committed it (the end of a bounded input pre-commits with the final
//! barrier, `u64::MAX`). A job restored from checkpoint *n* produces again everything that
//! later checkpoints committed, so before it starts the [`FileCommitter`] finds the visible
//! files of checkpoints after *n* — except those *n* itself holds — and moves them into the
//! hidden folder `_rolled_back/`, where they stay for the operator to inspect or delete.

use std::collections::HashSet;
use std::fmt::{Display, Write as _};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Component, Path, PathBuf};

use eddy_core::{BoxError, Timestamp};
use serde::{Deserialize, Serialize};

use super::two_phase::{Committer, NewerCommits, TwoPhaseCommitSink};

/// The hidden folder of the output directory that a restore moves part files into when later
/// checkpoints than the restored one committed them.
pub const ROLLED_BACK_DIR: &str = "_rolled_back";
const IN_PROGRESS_PREFIX: &str = ".part-";
const IN_PROGRESS_SUFFIX: &str = ".inprogress";
const PENDING_PREFIX: &str = "_part-";
const PENDING_SUFFIX: &str = ".pending";
const VISIBLE_PREFIX: &str = "part-";
/// Keeps generated names well under the usual 255-byte file name limit.
const MAX_ATTEMPT_LEN: usize = 64;
const BUFFER_SIZE: usize = 1 << 20;

/// A pre-committed part file: what a checkpoint stores so that the [`FileCommitter`] can
/// commit or abort it later, possibly in another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTxn {
    /// The pending file's name, relative to the output directory.
    pub pending: String,
    /// The name the file gets when committed, relative to the output directory.
    pub final_name: String,
    /// The checkpoint that pre-committed the file.
    pub checkpoint: u64,
    /// The subtask that wrote the file.
    pub subtask: usize,
    /// How many records (lines) the file holds.
    pub records: u64,
    /// The file's length in bytes.
    pub bytes: u64,
}

impl FileTxn {
    /// Rejects transactions (read back from a checkpoint) whose names would make the committer
    /// touch anything but its own pending file and the visible file derived from it.
    fn validate(&self) -> Result<(), BoxError> {
        let valid = is_plain_name(&self.pending)
            && self.pending.starts_with(PENDING_PREFIX)
            && visible_name_of(&self.pending).is_some_and(|name| name == self.final_name);
        if valid {
            Ok(())
        } else {
            Err(format!("invalid file transaction: pending {:?}, final {:?}", self.pending, self.final_name).into())
        }
    }
}

/// The open transaction's in-progress file.
struct OpenPart {
    name: String,
    out: BufWriter<File>,
    records: u64,
    bytes: u64,
}

/// One subtask of an exactly-once file sink: writes each record as a line (its `Display`
/// form) into a hidden part file that becomes visible when the [`FileCommitter`] commits it.
///
/// A value whose `Display` form contains line breaks spans several lines.
pub struct ExactlyOnceFileSink<T> {
    dir: PathBuf,
    subtask: usize,
    attempt: String,
    /// Number of the next in-progress file, so that files of one attempt never collide.
    seq: u64,
    open: Option<OpenPart>,
    /// The checkpoint of the last transaction pre-committed: a later one must be greater, or
    /// its pending file would replace (or sort before) an earlier one.
    last_checkpoint: Option<u64>,
    /// Set when a write or pre-commit failed midway: the open file may hold a partial line and
    /// must never be committed.
    broken: bool,
    line: String,
    records: PhantomData<fn(T)>,
}

impl<T> ExactlyOnceFileSink<T> {
    /// Opens subtask `subtask`'s sink writing into `dir` (created if missing). `attempt` is a
    /// token unique to this run attempt (e.g. start time and a random number; ASCII letters,
    /// digits, `-` and `_`), so that files of different attempts never collide.
    pub fn open(dir: &Path, subtask: usize, attempt: &str) -> Result<Self, BoxError> {
        validate_attempt(attempt)?;
        fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
        Ok(ExactlyOnceFileSink {
            dir: dir.to_path_buf(),
            subtask,
            attempt: attempt.to_string(),
            seq: 0,
            open: None,
            last_checkpoint: None,
            broken: false,
            line: String::new(),
            records: PhantomData,
        })
    }

    fn check_usable(&self) -> Result<(), BoxError> {
        if self.broken {
            return Err(format!("file sink of subtask {} failed earlier and cannot go on", self.subtask).into());
        }
        Ok(())
    }

    /// Opens the transaction's in-progress file unless it is open already.
    fn ensure_open(&mut self) -> Result<(), BoxError> {
        if self.open.is_some() {
            return Ok(());
        }
        let name = format!("{IN_PROGRESS_PREFIX}{}-{}-{}{IN_PROGRESS_SUFFIX}", self.subtask, self.attempt, self.seq);
        let path = self.dir.join(&name);
        // `create_new`: an existing file belongs to someone else (or a reused attempt token).
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_error("cannot create", &path, e))?;
        self.seq += 1;
        self.open = Some(OpenPart { name, out: BufWriter::with_capacity(BUFFER_SIZE, file), records: 0, bytes: 0 });
        Ok(())
    }

    /// Makes the open part durable and renames it to its pending name.
    fn seal(&self, part: OpenPart, checkpoint: u64) -> Result<FileTxn, BoxError> {
        let from = self.dir.join(&part.name);
        let file = part.out.into_inner().map_err(|e| io_error("cannot write", &from, e.into_error()))?;
        file.sync_all().map_err(|e| io_error("cannot sync", &from, e))?;
        drop(file);
        let pending = format!("{PENDING_PREFIX}{checkpoint:010}-{}-{}{PENDING_SUFFIX}", self.subtask, self.attempt);
        let to = self.dir.join(&pending);
        fs::rename(&from, &to).map_err(|e| io_error(&format!("cannot rename {} to", from.display()), &to, e))?;
        // The rename must survive a crash before the checkpoint that records it completes.
        sync_dir(&self.dir)?;
        let final_name = visible_name_of(&pending).ok_or("internal error: bad pending name")?.to_string();
        Ok(FileTxn { pending, final_name, checkpoint, subtask: self.subtask, records: part.records, bytes: part.bytes })
    }
}

impl<T: Display> TwoPhaseCommitSink<T> for ExactlyOnceFileSink<T> {
    type Txn = FileTxn;

    fn write(&mut self, value: T, _: Timestamp) -> Result<(), BoxError> {
        self.check_usable()?;
        // Formatting first keeps a failing `Display` from leaving half a line in the file.
        self.line.clear();
        writeln!(self.line, "{value}").map_err(|_| format!("cannot format a record of subtask {}", self.subtask))?;
        self.ensure_open()?;
        let Some(part) = self.open.as_mut() else { return Err("internal error: no open part file".into()) };
        if let Err(e) = part.out.write_all(self.line.as_bytes()) {
            // Part of the line may be in the file: it must never be committed.
            self.broken = true;
            return Err(format!("cannot write {}: {e}", part.name).into());
        }
        part.records += 1;
        part.bytes += self.line.len() as u64;
        Ok(())
    }

    fn pre_commit(&mut self, checkpoint: u64) -> Result<Option<FileTxn>, BoxError> {
        self.check_usable()?;
        let last = self.last_checkpoint.filter(|&last| checkpoint <= last);
        if let (Some(last), Some(_)) = (last, &self.open) {
            return Err(format!("checkpoint {checkpoint} after checkpoint {last}: checkpoint ids must grow").into());
        }
        let Some(part) = self.open.take() else { return Ok(None) };
        let sealed = self.seal(part, checkpoint);
        // What is left of a failed seal is for `clean_up`; this sink has lost its transaction.
        self.broken = sealed.is_err();
        let txn = sealed?;
        self.last_checkpoint = Some(checkpoint);
        Ok(Some(txn))
    }
}

/// Commits, aborts and cleans up the part files of every subtask of an
/// [`ExactlyOnceFileSink`] writing into one directory.
#[derive(Debug, Clone)]
pub struct FileCommitter {
    dir: PathBuf,
}

impl FileCommitter {
    /// A committer for the sink writing into `dir`.
    pub fn new(dir: &Path) -> Self {
        FileCommitter { dir: dir.to_path_buf() }
    }
}

impl Committer<FileTxn> for FileCommitter {
    fn commit(&self, txn: &FileTxn) -> Result<(), BoxError> {
        txn.validate()?;
        let pending = self.dir.join(&txn.pending);
        let visible = self.dir.join(&txn.final_name);
        match fs::metadata(&pending) {
            Ok(meta) if meta.len() != txn.bytes => {
                let len = meta.len();
                return Err(format!("cannot commit {}: {len} bytes, expected {}", pending.display(), txn.bytes).into());
            }
            Ok(_) => match fs::rename(&pending, &visible) {
                Ok(()) => {}
                // Committed by someone else between the two calls.
                Err(e) if e.kind() == io::ErrorKind::NotFound => check_committed(txn, &visible)?,
                Err(e) => return Err(io_error(&format!("cannot rename {} to", pending.display()), &visible, e)),
            },
            // Committed before (this is a replay after a restore), or lost.
            Err(e) if e.kind() == io::ErrorKind::NotFound => check_committed(txn, &visible)?,
            Err(e) => return Err(io_error("cannot read", &pending, e)),
        }
        // Also after a replay: the first commit may have crashed before its directory sync.
        sync_dir(&self.dir)
    }

    fn abort(&self, txn: &FileTxn) -> Result<(), BoxError> {
        txn.validate()?;
        remove_if_exists(&self.dir.join(&txn.pending))
    }

    fn clean_up(&self, restored: &[FileTxn]) -> Result<(), BoxError> {
        fs::create_dir_all(&self.dir).map_err(|e| io_error("cannot create", &self.dir, e))?;
        let keep: HashSet<&str> = restored.iter().map(|txn| txn.pending.as_str()).collect();
        let entries = fs::read_dir(&self.dir).map_err(|e| io_error("cannot list", &self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("cannot list", &self.dir, e))?;
            let path = entry.path();
            let is_file = entry.file_type().map_err(|e| io_error("cannot inspect", &path, e))?.is_file();
            // Names that are not UTF-8 are not ours.
            let leftover = entry.file_name().to_str().is_some_and(|name| is_leftover(name) && !keep.contains(name));
            if is_file && leftover {
                remove_if_exists(&path)?;
            }
        }
        Ok(())
    }

    /// The visible files that checkpoints after `checkpoint` committed, other than those the
    /// checkpoint itself holds.
    fn newer_commits(&self, checkpoint: u64, restored: &[FileTxn]) -> Result<NewerCommits, BoxError> {
        let newer = self.newer(checkpoint, restored)?;
        if newer.is_empty() {
            return Ok(NewerCommits::Nothing);
        }
        let description = format!("{} in {}", part_files_of(&newer), self.dir.display());
        Ok(NewerCommits::Revocable { commits: newer.len(), description })
    }

    /// Moves those files into [`ROLLED_BACK_DIR`].
    fn roll_back(&self, checkpoint: u64, restored: &[FileTxn]) -> Result<String, BoxError> {
        let newer = self.newer(checkpoint, restored)?;
        let aside = self.move_aside(&newer)?;
        Ok(format!("moved {} from {} to {}", part_files_of(&newer), self.dir.display(), aside.display()))
    }
}

impl FileCommitter {
    /// The visible files of checkpoints after `checkpoint` that `restored` does not hold.
    fn newer(&self, checkpoint: u64, restored: &[FileTxn]) -> Result<Vec<(u64, String)>, BoxError> {
        let covered: HashSet<&str> = restored.iter().map(|txn| txn.final_name.as_str()).collect();
        let visible = self.visible()?.into_iter();
        Ok(visible.filter(|(id, name)| *id > checkpoint && !covered.contains(name.as_str())).collect())
    }

    /// The visible files in the directory, each with the checkpoint that pre-committed it.
    fn visible(&self) -> Result<Vec<(u64, String)>, BoxError> {
        let entries = match fs::read_dir(&self.dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            entries => entries.map_err(|e| io_error("cannot list", &self.dir, e))?,
        };
        let mut visible = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error("cannot list", &self.dir, e))?;
            let is_file = entry.file_type().map_err(|e| io_error("cannot inspect", &entry.path(), e))?.is_file();
            let name = entry.file_name().into_string().ok();
            if let Some((checkpoint, name)) = name.and_then(|n| Some((committed_by(&n)?, n))).filter(|_| is_file) {
                visible.push((checkpoint, name));
            }
        }
        visible.sort();
        Ok(visible)
    }

    /// Moves the visible files `newer` into [`ROLLED_BACK_DIR`], never over another file.
    fn move_aside(&self, newer: &[(u64, String)]) -> Result<PathBuf, BoxError> {
        let aside = self.dir.join(ROLLED_BACK_DIR);
        fs::create_dir_all(&aside).map_err(|e| io_error("cannot create", &aside, e))?;
        for (_, name) in newer {
            let (from, to) = (self.dir.join(name), aside.join(name));
            if to.exists() {
                return Err(
                    format!("cannot roll back {}: {} exists; move it away", from.display(), to.display()).into()
                );
            }
            fs::rename(&from, &to).map_err(|e| io_error(&format!("cannot move {} to", from.display()), &to, e))?;
        }
        sync_dir(&aside)?;
        sync_dir(&self.dir)?;
        Ok(aside)
    }
}

/// The checkpoint that pre-committed a visible part file, from its name
/// `part-<checkpoint>-<subtask>-<attempt>`; `None` for any other name.
fn committed_by(name: &str) -> Option<u64> {
    let rest = name.strip_prefix(VISIBLE_PREFIX)?;
    let digits = &rest[..rest.find('-')?];
    digits.bytes().all(|b| b.is_ascii_digit()).then(|| digits.parse().ok())?
}

/// `3 part files of checkpoints 7 and 8`, for people.
fn part_files_of(files: &[(u64, String)]) -> String {
    let plural = if files.len() == 1 { "" } else { "s" };
    format!("{} part file{plural} of {}", files.len(), checkpoints_of(files))
}

/// The checkpoints of `files`, for people: `checkpoint 7`, `the final checkpoint`,
/// `checkpoints 7, 8 and the final checkpoint`.
fn checkpoints_of(files: &[(u64, String)]) -> String {
    let mut ids: Vec<u64> = files.iter().map(|(id, _)| *id).collect();
    ids.dedup();
    let name = |id: u64| if id == u64::MAX { "the final checkpoint".to_string() } else { id.to_string() };
    match ids.as_slice() {
        [u64::MAX] => name(u64::MAX),
        [id] => format!("checkpoint {id}"),
        [rest @ .., last] => {
            let rest: Vec<String> = rest.iter().map(|&id| name(id)).collect();
            format!("checkpoints {} and {}", rest.join(", "), name(*last))
        }
        [] => String::new(),
    }
}

/// Whether `name` is an in-progress or pending file this sink writes (and so may delete).
fn is_leftover(name: &str) -> bool {
    let in_progress = name.starts_with(IN_PROGRESS_PREFIX) && name.ends_with(IN_PROGRESS_SUFFIX);
    let pending = name.starts_with(PENDING_PREFIX) && name.ends_with(PENDING_SUFFIX);
    in_progress || pending
}

/// The visible name a pending file is committed to: the name without its `_` and `.pending`.
fn visible_name_of(pending: &str) -> Option<&str> {
    let name = pending.strip_prefix('_')?.strip_suffix(PENDING_SUFFIX)?;
    name.starts_with(VISIBLE_PREFIX).then_some(name)
}

/// A single file name: no directory parts, no `.` or `..`.
fn is_plain_name(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!((components.next(), components.next()), (Some(Component::Normal(c)), None) if c == name)
}

fn validate_attempt(attempt: &str) -> Result<(), BoxError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if attempt.is_empty() || attempt.len() > MAX_ATTEMPT_LEN || !attempt.chars().all(allowed) {
        return Err(format!(
            "invalid attempt token {attempt:?}: 1 to {MAX_ATTEMPT_LEN} ASCII letters, digits, '-' or '_'"
        )
        .into());
    }
    Ok(())
}

/// The pending file of `txn` is gone: fine when it was committed, data loss otherwise.
fn check_committed(txn: &FileTxn, visible: &Path) -> Result<(), BoxError> {
    match visible.try_exists() {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "cannot commit checkpoint {} of subtask {}: neither {} nor {} exists, its {} records are lost",
            txn.checkpoint,
            txn.subtask,
            txn.pending,
            visible.display(),
            txn.records
        )
        .into()),
        Err(e) => Err(io_error("cannot inspect", visible, e)),
    }
}

fn remove_if_exists(path: &Path) -> Result<(), BoxError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error("cannot delete", path, e)),
        _ => Ok(()),
    }
}

/// Makes renames in `dir` durable (a file's own fsync does not cover its directory entry).
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), BoxError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error("cannot sync", dir, e))
}

/// Other platforms cannot open a directory to sync it; their renames are as durable as it gets.
#[cfg(not(unix))]
fn sync_dir(_: &Path) -> Result<(), BoxError> {
    Ok(())
}

fn io_error(what: &str, path: &Path, e: io::Error) -> BoxError {
    format!("{what} {}: {e}", path.display()).into()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use tempfile::TempDir;

    use super::*;

    fn sink(dir: &Path, subtask: usize, attempt: &str) -> ExactlyOnceFileSink<String> {
        ExactlyOnceFileSink::open(dir, subtask, attempt).unwrap()
    }

    fn write_all(sink: &mut ExactlyOnceFileSink<String>, lines: &[&str]) {
        for line in lines {
            sink.write(line.to_string(), 0).unwrap();
        }
    }

    /// Every file in `dir`, sorted by name.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    /// What a reader sees: every visible file with its lines.
    fn visible(dir: &Path) -> BTreeMap<String, Vec<String>> {
        let visible = names(dir).into_iter().filter(|n| !n.starts_with('.') && !n.starts_with('_'));
        visible
            .map(|n| (n.clone(), fs::read_to_string(dir.join(&n)).unwrap().lines().map(String::from).collect()))
            .collect()
    }

    #[test]
    fn commit_makes_pre_committed_lines_visible() {
        let dir = TempDir::new().unwrap();
        let mut sink = sink(dir.path(), 3, "a1");
        write_all(&mut sink, &["one", "two"]);
        assert!(visible(dir.path()).is_empty());
        let txn = sink.pre_commit(7).unwrap().unwrap();
        assert_eq!(txn.pending, "_part-0000000007-3-a1.pending");
        assert_eq!(txn.final_name, "part-0000000007-3-a1");
        assert_eq!((txn.checkpoint, txn.subtask, txn.records, txn.bytes), (7, 3, 2, 8));
        assert_eq!(names(dir.path()), vec![txn.pending.clone()]);
        FileCommitter::new(dir.path()).commit(&txn).unwrap();
        let expected = BTreeMap::from([(txn.final_name.clone(), vec!["one".to_string(), "two".to_string()])]);
        assert_eq!(visible(dir.path()), expected);
        assert_eq!(names(dir.path()), vec![txn.final_name]);
    }

    #[test]
    fn pre_commit_without_records_gives_no_txn_and_no_file() {
        let dir = TempDir::new().unwrap();
        let mut sink = sink(dir.path(), 0, "a1");
        assert_eq!(sink.pre_commit(1).unwrap(), None);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn in_progress_file_is_hidden() {
        let dir = TempDir::new().unwrap();
        let mut sink = sink(dir.path(), 2, "a1");
        write_all(&mut sink, &["x"]);
        assert_eq!(names(dir.path()), vec![".part-2-a1-0.inprogress"]);
    }

    #[test]
    fn commit_twice_is_ok() {
        let dir = TempDir::new().unwrap();
        let mut sink = sink(dir.path(), 0, "a1");
        write_all(&mut sink, &["x"]);
        let txn = sink.pre_commit(1).unwrap().unwrap();
        let committer = FileCommitter::new(dir.path());
        committer.commit(&txn).unwrap();
        committer.commit(&txn).unwrap();
        assert_eq!(visible(dir.path()).len(), 1);
    }

    #[test]
    fn commit_of_lost_file_names_it() {
        let dir = TempDir::new().unwrap();
        let mut sink = sink(dir.path(), 0, "a1");
        write_all(&mut sink, &["x"]);
        let txn = sink.pre_commit(1).unwrap().unwrap();
        fs::remove_file(dir.path().join(&txn.pending)).unwrap();
        let err = FileCommitter::new(dir.path()).commit(&txn).unwrap_err().to_string();
        assert!(err.contains(&txn.pending) && err.contains(&txn.final_name), "{err}");
    }

    #[test]
    fn commit_of_truncated_file_fails() {
        let dir = TempDir::new().unwrap();
        let mut sink = sink(dir.path(), 0, "a1");
        write_all(&mut sink, &["xyz"]);
        let txn = sink.pre_commit(1).unwrap().unwrap();
        fs::write(dir.path().join(&txn.pending), "x").unwrap();
        assert!(FileCommitter::new(dir.path()).commit(&txn).is_err());
        assert!(visible(dir.path()).is_empty());
    }

    #[test]
    fn abort_removes_pending_file() {
        let dir = TempDir::new().unwrap();
        let mut sink = sink(dir.path(), 0, "a1");
        write_all(&mut sink, &["x"]);
        let txn = sink.pre_commit(1).unwrap().unwrap();
        let committer = FileCommitter::new(dir.path());
        committer.abort(&txn).unwrap();
        assert!(names(dir.path()).is_empty());
        committer.abort(&txn).unwrap();
    }

    #[test]
    fn clean_up_keeps_restored_and_foreign_files() {
        let dir = TempDir::new().unwrap();
        let committer = FileCommitter::new(dir.path());
        let mut old = sink(dir.path(), 0, "a1");
        write_all(&mut old, &["committed"]);
        let committed = old.pre_commit(1).unwrap().unwrap();
        committer.commit(&committed).unwrap();
        write_all(&mut old, &["restored"]);
        let restored = old.pre_commit(2).unwrap().unwrap();
        write_all(&mut old, &["never checkpointed"]);
        let lost = old.pre_commit(3).unwrap().unwrap();
        write_all(&mut old, &["open"]);
        drop(old);
        for foreign in ["notes.txt", ".hidden", "_SUCCESS", "_part-x.pendingnot"] {
            fs::write(dir.path().join(foreign), "keep").unwrap();
        }
        fs::create_dir(dir.path().join(".part-dir.inprogress")).unwrap();

        committer.clean_up(std::slice::from_ref(&restored)).unwrap();

        let mut expected = vec![
            ".hidden",
            ".part-dir.inprogress",
            "_SUCCESS",
            "_part-x.pendingnot",
            "notes.txt",
            &committed.final_name,
            &restored.pending,
        ];
        expected.sort();
        assert_eq!(names(dir.path()), expected);
        assert!(!names(dir.path()).contains(&lost.pending));
    }

    #[test]
    fn newer_commits_are_found_then_moved_aside() {
        let dir = TempDir::new().unwrap();
        let committer = FileCommitter::new(dir.path());
        let mut sink = sink(dir.path(), 0, "a1");
        let mut txns = Vec::new();
        for (checkpoint, line) in [(3, "three"), (5, "five"), (8, "eight"), (u64::MAX, "final")] {
            write_all(&mut sink, &[line]);
            let txn = sink.pre_commit(checkpoint).unwrap().unwrap();
            committer.commit(&txn).unwrap();
            txns.push(txn);
        }
        fs::write(dir.path().join("part-notes"), "not ours").unwrap();
        // Checkpoint 5 holds the transaction of checkpoint 5 (not yet committed when it was taken).
        let found = committer.newer_commits(5, &txns[1..2]).unwrap();
        let NewerCommits::Revocable { commits, description } = found else { panic!("{found:?}") };
        assert_eq!(commits, 2);
        assert!(description.contains("2 part files of checkpoints 8 and the final checkpoint"), "{description}");
        assert_eq!(visible(dir.path()).len(), 5, "finding them changes nothing");
        let done = committer.roll_back(5, &txns[1..2]).unwrap();
        assert!(done.contains(ROLLED_BACK_DIR), "{done}");
        let expected = vec![txns[0].final_name.clone(), txns[1].final_name.clone(), "part-notes".into()];
        assert_eq!(visible(dir.path()).into_keys().collect::<Vec<_>>(), expected);
        let aside = dir.path().join(ROLLED_BACK_DIR);
        assert_eq!(names(&aside), vec![txns[2].final_name.clone(), txns[3].final_name.clone()]);
        assert_eq!(fs::read_to_string(aside.join(&txns[3].final_name)).unwrap(), "final\n");
        // Nothing newer is left; clean-up leaves the rolled-back files alone.
        assert_eq!(committer.newer_commits(5, &txns[1..2]).unwrap(), NewerCommits::Nothing);
        committer.clean_up(&[]).unwrap();
        assert_eq!(names(&aside).len(), 2);
    }

    #[test]
    fn the_restored_checkpoints_own_final_files_are_not_newer() {
        let dir = TempDir::new().unwrap();
        let committer = FileCommitter::new(dir.path());
        let mut sink = sink(dir.path(), 1, "a1");
        write_all(&mut sink, &["last"]);
        let last = sink.pre_commit(u64::MAX).unwrap().unwrap();
        committer.commit(&last).unwrap();
        // The final checkpoint (id 9) holds the final transaction: restoring it rolls back nothing.
        assert_eq!(committer.newer_commits(9, std::slice::from_ref(&last)).unwrap(), NewerCommits::Nothing);
        assert_eq!(visible(dir.path()).len(), 1);
    }

    #[test]
    fn a_missing_directory_has_nothing_newer() {
        let dir = TempDir::new().unwrap();
        let committer = FileCommitter::new(&dir.path().join("never-written"));
        assert_eq!(committer.newer_commits(1, &[]).unwrap(), NewerCommits::Nothing);
    }

    #[test]
    fn committed_by_reads_the_checkpoint_of_visible_names_only() {
        assert_eq!(committed_by("part-0000000007-1-a1"), Some(7));
        assert_eq!(committed_by("part-18446744073709551615-0-a1"), Some(u64::MAX));
        assert_eq!(committed_by("part-notes"), None);
        assert_eq!(committed_by("part--1-a1"), None);
        assert_eq!(committed_by("_part-0000000007-1-a1.pending"), None);
    }

    #[test]
    fn clean_up_creates_missing_dir() {
        let dir = TempDir::new().unwrap();
        let out = dir.path().join("a/b");
        FileCommitter::new(&out).clean_up(&[]).unwrap();
        assert!(out.is_dir());
    }

    #[test]
    fn bad_attempt_tokens_are_errors() {
        let dir = TempDir::new().unwrap();
        for attempt in ["", "a/b", "..", "a.b", "a b", &"x".repeat(MAX_ATTEMPT_LEN + 1)] {
            assert!(ExactlyOnceFileSink::<String>::open(dir.path(), 0, attempt).is_err(), "{attempt:?}");
        }
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn forged_txns_are_errors() {
        let dir = TempDir::new().unwrap();
        fs::write(dir.path().join("victim"), "keep").unwrap();
        let committer = FileCommitter::new(dir.path());
        let forged = |pending: &str, final_name: &str| FileTxn {
            pending: pending.into(),
            final_name: final_name.into(),
            checkpoint: 1,
            subtask: 0,
            records: 0,
            bytes: 4,
        };
        for txn in [
            forged("victim", "part-1"),
            forged("_part-1.pending", "victim"),
            forged("../_part-1.pending", "../part-1"),
            forged("_part-1/../../x.pending", "part-1/../../x"),
        ] {
            assert!(committer.commit(&txn).is_err(), "{txn:?}");
            assert!(committer.abort(&txn).is_err(), "{txn:?}");
        }
        assert_eq!(names(dir.path()), vec!["victim"]);
    }

    #[test]
    fn checkpoint_ids_must_grow() {
        let dir = TempDir::new().unwrap();
        let mut sink = sink(dir.path(), 0, "a1");
        write_all(&mut sink, &["x"]);
        sink.pre_commit(5).unwrap().unwrap();
        write_all(&mut sink, &["y"]);
        assert!(sink.pre_commit(5).is_err());
        // The open transaction survives the refused pre-commit.
        assert_eq!(sink.pre_commit(6).unwrap().unwrap().records, 1);
    }

    /// One step of a job with two sink subtasks.
    #[derive(Debug, Clone)]
    enum Op {
        /// Subtask writes this many records.
        Write(usize, u8),
        /// A checkpoint barrier: every subtask pre-commits; its txns wait for completion.
        Barrier,
        /// The last barrier's checkpoint completes: its txns go into the restorable state.
        Complete,
        /// The job commits every completed txn not yet committed.
        Commit,
        /// The job dies (sinks dropped mid-transaction) and restarts from its last completed
        /// checkpoint: commits its txns again, then cleans up.
        Crash,
        /// The job dies and is restored from an older completed checkpoint (the newer ones were
        /// damaged): reconciles, commits that checkpoint's txns again, then cleans up.
        RestoreOlder,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..2usize, 1..4u8).prop_map(|(subtask, n)| Op::Write(subtask, n)),
            2 => Just(Op::Barrier),
            2 => Just(Op::Complete),
            2 => Just(Op::Commit),
            1 => Just(Op::Crash),
            1 => Just(Op::RestoreOlder),
        ]
    }

    /// The job as the model sees it; `committed` is what a reader must see.
    struct Job {
        dir: TempDir,
        committer: FileCommitter,
        attempt: usize,
        sinks: Vec<ExactlyOnceFileSink<String>>,
        open: Vec<Vec<String>>,
        checkpoint: u64,
        in_flight: Vec<(FileTxn, Vec<String>)>,
        /// Every txn of a completed checkpoint: what a restore hands the committer.
        completed: Vec<(FileTxn, Vec<String>)>,
        committed: BTreeMap<String, Vec<String>>,
        next_record: usize,
    }

    impl Job {
        fn new() -> Self {
            let dir = TempDir::new().unwrap();
            let committer = FileCommitter::new(dir.path());
            committer.clean_up(&[]).unwrap();
            let mut job = Job {
                dir,
                committer,
                attempt: 0,
                sinks: Vec::new(),
                open: Vec::new(),
                checkpoint: 0,
                in_flight: Vec::new(),
                completed: Vec::new(),
                committed: BTreeMap::new(),
                next_record: 0,
            };
            job.start();
            job
        }

        fn start(&mut self) {
            self.attempt += 1;
            let attempt = format!("t{}-r{}", self.attempt, self.attempt * 7);
            self.sinks = (0..2).map(|subtask| sink(self.dir.path(), subtask, &attempt)).collect();
            self.open = vec![Vec::new(); 2];
        }

        fn apply(&mut self, op: &Op) {
            match *op {
                Op::Write(subtask, n) => self.write(subtask, n),
                Op::Barrier => self.barrier(),
                Op::Complete => self.completed.append(&mut self.in_flight),
                Op::Commit => self.commit_completed(),
                Op::Crash => self.crash(),
                Op::RestoreOlder => self.restore_older(),
            }
        }

        fn write(&mut self, subtask: usize, n: u8) {
            for _ in 0..n {
                let record = format!("r{}", self.next_record);
                self.next_record += 1;
                self.sinks[subtask].write(record.clone(), 0).unwrap();
                self.open[subtask].push(record);
            }
        }

        fn barrier(&mut self) {
            self.checkpoint += 1;
            for (sink, open) in self.sinks.iter_mut().zip(&mut self.open) {
                match sink.pre_commit(self.checkpoint).unwrap() {
                    Some(txn) => self.in_flight.push((txn, std::mem::take(open))),
                    None => assert!(open.is_empty()),
                }
            }
        }

        fn commit_completed(&mut self) {
            for (txn, lines) in &self.completed {
                self.committer.commit(txn).unwrap();
                self.committed.insert(txn.final_name.clone(), lines.clone());
            }
        }

        fn crash(&mut self) {
            self.sinks.clear();
            self.in_flight.clear();
            self.commit_completed();
            let restored: Vec<FileTxn> = self.completed.iter().map(|(txn, _)| txn.clone()).collect();
            self.committer.clean_up(&restored).unwrap();
            self.assert_only_committed_files();
            self.start();
        }

        /// Restores the completed checkpoint in the middle of those completed so far.
        fn restore_older(&mut self) {
            let mut checkpoints: Vec<u64> = self.completed.iter().map(|(txn, _)| txn.checkpoint).collect();
            checkpoints.dedup();
            let Some(&restored_id) = checkpoints.get(checkpoints.len() / 2) else { return self.crash() };
            self.sinks.clear();
            self.in_flight.clear();
            // The checkpoint holds the txns up to it; whatever later checkpoints did is undone.
            self.completed.retain(|(txn, _)| txn.checkpoint <= restored_id);
            let restored: Vec<FileTxn> = self.completed.iter().map(|(txn, _)| txn.clone()).collect();
            if let NewerCommits::Revocable { .. } = self.committer.newer_commits(restored_id, &restored).unwrap() {
                self.committer.roll_back(restored_id, &restored).unwrap();
            }
            self.committed.retain(|name, _| committed_by(name).is_some_and(|id| id <= restored_id));
            self.commit_completed();
            self.committer.clean_up(&restored).unwrap();
            self.assert_only_committed_files();
            self.start();
        }

        /// After a restore only committed files are left (and those rolled back, aside).
        fn assert_only_committed_files(&self) {
            let mut left = names(self.dir.path());
            left.retain(|name| name != ROLLED_BACK_DIR);
            assert_eq!(left, self.committed.keys().cloned().collect::<Vec<_>>());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn readers_see_exactly_the_committed_lines(ops in prop::collection::vec(op(), 0..40)) {
            let mut job = Job::new();
            for op in &ops {
                job.apply(op);
                prop_assert_eq!(visible(job.dir.path()), job.committed.clone());
            }
            job.crash();
            prop_assert_eq!(visible(job.dir.path()), job.committed.clone());
        }
    }
}
