//! Exactly-once output through what operators actually do to a job: a failure after the sink
//! opened its files restarts in-process with exact output; a restore that has to skip damaged
//! newer checkpoints rolls back the output those checkpoints committed; a restore from the
//! checkpoint directory after a stop-with-savepoint resumes from the savepoint; a sink that
//! cannot roll back makes such a restore refuse to start unless duplicates are allowed; a
//! sink whose disk is full for a moment recovers once it has room again.

#[path = "common/tiny_disk.rs"]
mod tiny_disk;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eddy::prelude::*;
use eddy::runtime::metrics::names;
use eddy::sink::{Committer, NewerCommits, TwoPhaseCommitSink, ROLLED_BACK_DIR};
use serde::{Deserialize, Serialize};
use tiny_disk::{TinyDisk, TinyDiskRun};

/// Keys of the test events.
const KEYS: u64 = 7;
/// Event time advances this much per event index.
const STEP_MS: i64 = 10;
/// Window length.
const WINDOW_MS: i64 = 1_000;
/// Longer than any of these jobs takes, even in a debug build on a busy machine.
const LIMIT: Duration = Duration::from_secs(120);

/// Event `i`: key `i % KEYS` at time `i * STEP_MS`.
fn event(i: u64) -> (u64, i64) {
    (i % KEYS, i as i64 * STEP_MS)
}

/// Window counts `(start, key) -> count` of the first `count` events, computed plainly.
fn expected(count: u64) -> BTreeMap<(i64, u64), u64> {
    let mut counts = BTreeMap::new();
    for i in 0..count {
        let (key, ts) = event(i);
        *counts.entry((ts - ts % WINDOW_MS, key)).or_insert(0) += 1;
    }
    counts
}

/// Called for each event before it is counted: may fail the job once.
type Hook = Arc<dyn Fn(u64) + Send + Sync>;

/// Throttled events (so checkpoints happen while the job runs) → event time → per key, a
/// tumbling window count as `start,key,count` lines.
fn windows(env: &StreamEnvironment, count: u64, hook: Hook) -> DataStream<String> {
    env.generate(Some(count), |i| {
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        (i, event(i))
    })
    .uid("events")
    .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |e: &(u64, (u64, i64))| e.1 .1)
    .map(move |e| {
        hook(e.0);
        e
    })
    .key_by(|e: &(u64, (u64, i64))| e.1 .0)
    .window(TumblingEventTimeWindows::of(Duration::from_millis(WINDOW_MS as u64)))
    .aggregate_with(Count, |key, window, n| format!("{},{key},{n}", window.start))
    .uid("windows")
}

/// The job, writing exactly-once files into `out`.
fn file_job(env: &StreamEnvironment, count: u64, out: &Path, hook: Hook) {
    windows(env, count, hook).write_exactly_once(out).uid("out");
}

fn no_hook() -> Hook {
    Arc::new(|_| {})
}

/// The names in `dir`, sorted (none if it does not exist).
fn names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = entries.map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

/// The committed part files: names a reader does not skip.
fn visible(dir: &Path) -> Vec<String> {
    names(dir).into_iter().filter(|n| !n.starts_with(['.', '_'])).collect()
}

/// The checkpoint ids that committed visible files (`part-<checkpoint>-…`).
fn committed_checkpoints(dir: &Path) -> BTreeSet<u64> {
    visible(dir).iter().filter_map(|n| n.strip_prefix("part-")?.split('-').next()?.parse().ok()).collect()
}

/// Every `start,key,count` line of every visible file, checking that none appears twice.
fn read_output(dir: &Path) -> BTreeMap<(i64, u64), u64> {
    let mut counts = BTreeMap::new();
    for name in visible(dir) {
        for line in std::fs::read_to_string(dir.join(&name)).unwrap().lines() {
            let fields: Vec<&str> = line.split(',').collect();
            let key = (fields[0].parse().unwrap(), fields[1].parse().unwrap());
            let previous = counts.insert(key, fields[2].parse().unwrap());
            assert!(previous.is_none(), "duplicate row {line:?} (again in {name})");
        }
    }
    counts
}

/// Asserts equal counts, describing a difference briefly.
fn assert_same(got: &BTreeMap<(i64, u64), u64>, want: &BTreeMap<(i64, u64), u64>) {
    let missing = want.keys().filter(|k| !got.contains_key(*k)).count();
    let wrong: Vec<_> = got.iter().filter(|(k, n)| want.get(*k) != Some(*n)).take(3).collect();
    assert!(missing == 0 && wrong.is_empty(), "{missing} of {} rows missing; wrong or extra: {wrong:?}", want.len());
}

/// Runs `job` (which builds, executes and waits) on its own thread, failing the test if it
/// has not finished within [`LIMIT`].
fn within_limit<R: Send + 'static>(job: impl FnOnce() -> R + Send + 'static) -> R {
    let started = Instant::now();
    let thread = std::thread::spawn(job);
    while !thread.is_finished() {
        assert!(started.elapsed() < LIMIT, "the job still runs after {LIMIT:?}: it hangs");
        std::thread::sleep(Duration::from_millis(20));
    }
    thread.join().unwrap()
}

/// Polls `ready` until it holds, failing the test after [`LIMIT`].
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < LIMIT, "no {what} after {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------------------
// In-process restarts
// ---------------------------------------------------------------------------------------

#[test]
fn a_failure_after_the_sink_opened_its_files_restarts_in_process_with_exact_output() {
    let count = 40_000;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // Fails once, after a checkpoint committed output and while a sink subtask has an
    // in-progress file open, which the restarted attempt must neither trip over nor keep.
    let (failed, watched) = (Arc::new(AtomicBool::new(false)), out.clone());
    let hook: Hook = Arc::new(move |i| {
        let ready = || {
            let names = names(&watched);
            names.iter().any(|n| n.starts_with("part-")) && names.iter().any(|n| n.ends_with(".inprogress"))
        };
        // From half way on at the first such moment; at three quarters in any case.
        let due = (i >= count / 2 && i % 100 == 0 && ready()) || i == count * 3 / 4;
        if due && !failed.swap(true, Ordering::SeqCst) {
            panic!("injected failure at event {i}");
        }
    });
    let job_out = out.clone();
    let (result, warnings) = within_limit(move || {
        let env = StreamEnvironment::new();
        env.set_parallelism(2);
        env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)));
        env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 2, delay: Duration::from_millis(10) });
        file_job(&env, count, &job_out, hook);
        let handle = env.execute("fails once").unwrap();
        let warnings = handle.warnings();
        (handle.wait(), warnings)
    });
    let result = result.unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(result.restarts, 1);
    assert!(result.warnings.iter().any(|w| w.contains("injected failure")), "{:?}", result.warnings);
    assert_same(&read_output(&out), &expected(count));
    // The failed attempt's in-progress and pending files are gone, and the two attempts'
    // files have different names (`part-<checkpoint>-<subtask>-<run>-<attempt>`).
    assert_eq!(names(&out), visible(&out), "leftovers of the failed attempt");
    let attempts: BTreeSet<String> = visible(&out).iter().map(|n| n.rsplit('-').next().unwrap().to_string()).collect();
    assert_eq!(attempts.into_iter().collect::<Vec<_>>(), vec!["0", "1"]);
}

#[test]
fn when_the_restarts_run_out_the_first_failure_is_reported_and_the_last_noted() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = failures.clone();
    let hook: Hook = Arc::new(move |i| {
        if i == 1_000 {
            match counted.fetch_add(1, Ordering::SeqCst) {
                0 => panic!("the disk is full"),
                _ => panic!("a consequence"),
            }
        }
    });
    let result = within_limit(move || {
        let env = StreamEnvironment::new();
        env.set_parallelism(1);
        env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)));
        env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 2, delay: Duration::ZERO });
        file_job(&env, 5_000, &out, hook);
        env.execute("keeps failing").unwrap().wait()
    });
    let error = result.unwrap_err().to_string();
    assert_eq!(failures.load(Ordering::SeqCst), 3);
    assert!(error.contains("panicked: the disk is full"), "{error}");
    assert!(error.contains("after 2 restarts the job failed with") && error.contains("a consequence"), "{error}");
    assert!(error.find("the disk is full") < error.find("a consequence"), "{error}");
}

// ---------------------------------------------------------------------------------------
// Restores that skip damaged newer checkpoints
// ---------------------------------------------------------------------------------------

/// What is done to the checkpoints an operator's restore must skip.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// sled's `db` file cut to half its length.
    TruncatedDb,
    /// The `db` file deleted.
    DeletedDb,
    /// Bytes in the middle of the `db` file overwritten.
    GarbledDb,
    /// The checkpoint directory made unreadable (as root, which reads anything: its `db`
    /// replaced by a directory, which cannot be read as a file either).
    Unreadable,
}

fn damage(checkpoint: &Path, how: Damage) {
    let db = checkpoint.join("db");
    // sled's file is longer than what it wrote (it allocates ahead): damage what it wrote.
    let used = || std::fs::read(&db).unwrap().iter().rposition(|b| *b != 0).map_or(0, |last| last + 1);
    match how {
        Damage::TruncatedDb => {
            let half = used() as u64 / 2;
            std::fs::OpenOptions::new().write(true).open(&db).unwrap().set_len(half).unwrap();
        }
        Damage::DeletedDb => std::fs::remove_file(&db).unwrap(),
        Damage::GarbledDb => {
            let used = used();
            let mut bytes = std::fs::read(&db).unwrap();
            bytes[used / 4..used * 3 / 4].iter_mut().for_each(|b| *b = !*b);
            std::fs::write(&db, bytes).unwrap();
        }
        Damage::Unreadable => {
            let status = Command::new("chmod").arg("000").arg(checkpoint).status().unwrap();
            assert!(status.success());
            if std::fs::read_dir(checkpoint).is_ok() {
                Command::new("chmod").arg("755").arg(checkpoint).status().unwrap();
                std::fs::remove_file(&db).unwrap();
                std::fs::create_dir(&db).unwrap();
            }
        }
    }
}

/// The `chk-*` directories of a checkpoint directory, with their ids.
fn checkpoint_dirs(dir: &Path) -> Vec<(u64, PathBuf)> {
    names(dir).iter().filter_map(|n| Some((n.strip_prefix("chk-")?.parse().ok()?, dir.join(n)))).collect()
}

/// Runs the job into `out` with checkpoints in `checkpoints` until three checkpoints have
/// committed output, then cancels it (or lets it finish, if it got there first).
fn run_until_three_commits(count: u64, checkpoints: &Path, out: &Path) {
    let (checkpoints, out) = (checkpoints.to_path_buf(), out.to_path_buf());
    within_limit(move || {
        let env = StreamEnvironment::new();
        env.set_parallelism(2);
        env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)).dir(&checkpoints).retain(10));
        file_job(&env, count, &out, no_hook());
        let handle = env.execute("interrupted").unwrap();
        wait_until("three committed checkpoints", || committed_checkpoints(&out).len() >= 3 || handle.is_finished());
        handle.cancel();
        let _ = handle.wait();
    });
}

/// Damages every checkpoint from the newest one whose output is visible on, so that a
/// restore must go back to one before it; returns the ids damaged.
fn damage_from_newest_commit(checkpoints: &Path, out: &Path, how: Damage) -> Vec<u64> {
    let committed = committed_checkpoints(out);
    let newest_commit = committed.iter().rev().find(|&&id| id != u64::MAX).copied().unwrap();
    let mut damaged = Vec::new();
    for (id, path) in checkpoint_dirs(checkpoints).into_iter().filter(|(id, _)| *id >= newest_commit) {
        damage(&path, how);
        damaged.push(id);
    }
    damaged
}

/// Kills a job mid-way, damages its newest checkpoints `how`, restores from the checkpoint
/// directory at another parallelism, and checks that the output is exact and that the
/// restore said what it skipped and rolled back.
fn restore_past_damaged_checkpoints(how: Damage) {
    let count = 40_000;
    let dir = tempfile::tempdir().unwrap();
    let (checkpoints, out) = (dir.path().join("checkpoints"), dir.path().join("out"));
    run_until_three_commits(count, &checkpoints, &out);
    let damaged = damage_from_newest_commit(&checkpoints, &out, how);

    let (job_checkpoints, job_out) = (checkpoints.clone(), out.clone());
    let (result, warnings) = within_limit(move || {
        let env = StreamEnvironment::new();
        env.set_parallelism(3);
        env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)).dir(&job_checkpoints));
        env.restore_from(&job_checkpoints);
        file_job(&env, count, &job_out, no_hook());
        let handle = env.execute("restored").unwrap();
        let warnings = handle.warnings();
        (handle.wait(), warnings)
    });
    let result = result.unwrap();
    assert_same(&read_output(&out), &expected(count));
    // Loud: a warning per skipped checkpoint, naming it, and one for the rolled-back output.
    for id in &damaged {
        let name = format!("chk-{id:010}");
        assert!(warnings.iter().any(|w| w.contains("skipped") && w.contains(&name)), "{name}: {warnings:?}");
    }
    assert!(warnings.iter().any(|w| w.contains("rolled back") && w.contains(ROLLED_BACK_DIR)), "{warnings:?}");
    assert!(!names(&out.join(ROLLED_BACK_DIR)).is_empty());
    // The abandoned checkpoints are set aside: a later restore cannot go back to them.
    assert!(warnings.iter().any(|w| w.contains("set aside the snapshots newer than")), "{warnings:?}");
    let superseded = names(&checkpoints.join("superseded"));
    for id in &damaged {
        let name = format!("chk-{id:010}");
        assert!(!checkpoints.join(&name).exists() || superseded.contains(&name), "{name} is still restorable");
    }
    let metrics = &result.metrics;
    assert_eq!(metrics.total(names::CHECKPOINTS, names::RESTORE_SKIPPED), damaged.len() as u64);
    assert!(metrics.total(names::CHECKPOINTS, names::ROLLED_BACK_COMMITS) > 0);
}

#[test]
fn a_restore_past_a_truncated_newest_checkpoint_rolls_back_its_output() {
    restore_past_damaged_checkpoints(Damage::TruncatedDb);
}

#[test]
fn a_restore_past_a_deleted_database_rolls_back_its_output() {
    restore_past_damaged_checkpoints(Damage::DeletedDb);
}

#[test]
fn a_restore_past_garbled_checkpoint_files_rolls_back_their_output() {
    restore_past_damaged_checkpoints(Damage::GarbledDb);
}

#[test]
fn a_restore_past_an_unreadable_checkpoint_rolls_back_its_output() {
    restore_past_damaged_checkpoints(Damage::Unreadable);
}

// ---------------------------------------------------------------------------------------
// Stop with a savepoint, then restore from the checkpoint directory
// ---------------------------------------------------------------------------------------

/// Runs the job with checkpoints in `checkpoints` until output is committed, then stops it
/// with a savepoint in `savepoint`.
fn run_and_stop_with_savepoint(count: u64, checkpoints: &Path, out: &Path, savepoint: &Path) {
    let (checkpoints, out, savepoint) = (checkpoints.to_path_buf(), out.to_path_buf(), savepoint.to_path_buf());
    within_limit(move || {
        let env = StreamEnvironment::new();
        env.set_parallelism(2);
        env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(50)).dir(&checkpoints));
        file_job(&env, count, &out, no_hook());
        let handle = env.execute("stopped").unwrap();
        let started = Instant::now();
        wait_until("committed output", || committed_checkpoints(&out).len() >= 2);
        let waited = started.elapsed();
        let stopped = handle.stop_with_savepoint(&savepoint, false);
        assert!(stopped.is_ok(), "{stopped:?} after {waited:?}, {:?}", started.elapsed());
        assert_eq!(handle.wait().unwrap().savepoint.as_deref(), Some(savepoint.as_path()));
    });
}

/// Restores from the checkpoint directory and runs to the end; returns the restore's warnings.
fn restore_from_directory(count: u64, checkpoints: &Path, out: &Path) -> Vec<String> {
    let (checkpoints, out) = (checkpoints.to_path_buf(), out.to_path_buf());
    within_limit(move || {
        let env = StreamEnvironment::new();
        env.set_parallelism(1);
        env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(50)).dir(&checkpoints));
        env.restore_from(&checkpoints);
        file_job(&env, count, &out, no_hook());
        let handle = env.execute("resumed").unwrap();
        let warnings = handle.warnings();
        handle.wait().unwrap();
        warnings
    })
}

#[test]
fn after_a_stop_with_savepoint_a_restore_from_the_checkpoint_directory_resumes_from_the_savepoint() {
    let count = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let (checkpoints, out) = (dir.path().join("checkpoints"), dir.path().join("out"));
    run_and_stop_with_savepoint(count, &checkpoints, &out, &dir.path().join("savepoint"));
    let warnings = restore_from_directory(count, &checkpoints, &out);
    // Nothing skipped, nothing to roll back: the savepoint covers all committed output.
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(!out.join(ROLLED_BACK_DIR).exists());
    assert_same(&read_output(&out), &expected(count));
}

#[test]
fn when_the_savepoint_is_gone_the_restore_says_so_and_rolls_back_what_it_committed() {
    let count = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let (checkpoints, out, savepoint) = (dir.path().join("checkpoints"), dir.path().join("out"), dir.path().join("sp"));
    run_and_stop_with_savepoint(count, &checkpoints, &out, &savepoint);
    std::fs::remove_dir_all(&savepoint).unwrap();
    // The savepoint's own commit has output unless no window fired since the last checkpoint.
    let newest_checkpoint = checkpoint_dirs(&checkpoints).last().unwrap().0;
    let savepoint_committed = committed_checkpoints(&out).last().is_some_and(|&id| id > newest_checkpoint);
    let warnings = restore_from_directory(count, &checkpoints, &out);
    assert!(warnings.iter().any(|w| w.contains("skipped savepoint")), "{warnings:?}");
    if savepoint_committed {
        assert!(warnings.iter().any(|w| w.contains("rolled back")), "{warnings:?}");
    }
    assert_same(&read_output(&out), &expected(count));
}

// ---------------------------------------------------------------------------------------
// A sink that cannot roll back
// ---------------------------------------------------------------------------------------

/// An append-only store outside the job (as a Kafka topic is): committed lines stay.
#[derive(Default)]
struct AppendLog {
    /// `(checkpoint, subtask, line)`, in commit order.
    lines: Mutex<Vec<(u64, usize, String)>>,
}

/// One subtask's open transaction.
struct LogSink {
    subtask: usize,
    open: Vec<String>,
}

#[derive(Clone, Serialize, Deserialize)]
struct LogTxn {
    checkpoint: u64,
    subtask: usize,
    lines: Vec<String>,
}

impl TwoPhaseCommitSink<String> for LogSink {
    type Txn = LogTxn;

    fn write(&mut self, value: String, _: Timestamp) -> std::result::Result<(), BoxError> {
        self.open.push(value);
        Ok(())
    }

    fn pre_commit(&mut self, checkpoint: u64) -> std::result::Result<Option<LogTxn>, BoxError> {
        let lines = std::mem::take(&mut self.open);
        Ok((!lines.is_empty()).then_some(LogTxn { checkpoint, subtask: self.subtask, lines }))
    }
}

/// Commits by appending (once per transaction); finds but cannot undo newer commits.
struct LogCommitter(Arc<AppendLog>);

impl Committer<LogTxn> for LogCommitter {
    fn commit(&self, txn: &LogTxn) -> std::result::Result<(), BoxError> {
        let mut lines = self.0.lines.lock().unwrap();
        if !lines.iter().any(|(c, s, _)| (*c, *s) == (txn.checkpoint, txn.subtask)) {
            lines.extend(txn.lines.iter().map(|line| (txn.checkpoint, txn.subtask, line.clone())));
        }
        Ok(())
    }

    fn abort(&self, _: &LogTxn) -> std::result::Result<(), BoxError> {
        Ok(())
    }

    fn clean_up(&self, _: &[LogTxn]) -> std::result::Result<(), BoxError> {
        Ok(())
    }

    fn newer_commits(&self, checkpoint: u64, restored: &[LogTxn]) -> std::result::Result<NewerCommits, BoxError> {
        let covered: BTreeSet<(u64, usize)> = restored.iter().map(|t| (t.checkpoint, t.subtask)).collect();
        let lines = self.0.lines.lock().unwrap();
        let newer: BTreeSet<(u64, usize)> =
            lines.iter().map(|(c, s, _)| (*c, *s)).filter(|k| k.0 > checkpoint && !covered.contains(k)).collect();
        if newer.is_empty() {
            return Ok(NewerCommits::Nothing);
        }
        let ids: BTreeSet<u64> = newer.iter().map(|k| k.0).collect();
        Ok(NewerCommits::Irrevocable {
            commits: newer.len(),
            description: format!("transactions of checkpoints {ids:?}"),
        })
    }
}

/// The job, appending to `log` and writing exactly-once files into `out`.
fn log_job(env: &StreamEnvironment, count: u64, log: &Arc<AppendLog>, out: &Path) {
    let log = log.clone();
    let counts = windows(env, count, no_hook());
    // The file sink first: asked first, it must still roll back nothing when the log refuses.
    counts.write_exactly_once(out).uid("out");
    counts
        .add_two_phase_sink("AppendLog", |subtask, _| Ok(LogSink { subtask, open: Vec::new() }), LogCommitter(log))
        .uid("log");
}

#[test]
fn a_sink_that_cannot_roll_back_refuses_the_restore_unless_duplicates_are_allowed() {
    let count = 40_000;
    let dir = tempfile::tempdir().unwrap();
    let (checkpoints, out) = (dir.path().join("checkpoints"), dir.path().join("out"));
    let log = Arc::new(AppendLog::default());
    let committed = |log: &AppendLog| log.lines.lock().unwrap().iter().map(|l| l.0).collect::<BTreeSet<u64>>();
    {
        let env = StreamEnvironment::new();
        env.set_parallelism(2);
        env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)).dir(&checkpoints).retain(10));
        log_job(&env, count, &log, &out);
        let handle = env.execute("appending").unwrap();
        wait_until("three commits", || committed(&log).len() >= 3 || handle.is_finished());
        handle.cancel();
        let _ = handle.wait();
    }
    let newest_commit = committed(&log).into_iter().rev().find(|&id| id != u64::MAX).unwrap();
    for (_, path) in checkpoint_dirs(&checkpoints).into_iter().filter(|(id, _)| *id >= newest_commit) {
        damage(&path, Damage::DeletedDb);
    }
    let restored = checkpoint_dirs(&checkpoints).into_iter().map(|c| c.0).filter(|&id| id < newest_commit).max();
    let restored = restored.expect("an older checkpoint");

    let env = StreamEnvironment::new();
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)).dir(&checkpoints));
    env.restore_from(&checkpoints);
    log_job(&env, count, &log, &out);
    let error = env.execute("refused").err().expect("the restore is refused").to_string();
    for needed in
        [&format!("checkpoint {restored}"), "sink 'log'", &newest_commit.to_string(), "allow_duplicate_output"]
    {
        assert!(error.contains(needed), "{needed:?} in {error}");
    }
    // Refused before anything changed: the file sink rolled nothing back, nothing was set aside.
    assert!(!out.join(ROLLED_BACK_DIR).exists() && !checkpoints.join("superseded").exists());
    let before = log.lines.lock().unwrap().len();

    let env = StreamEnvironment::new();
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)).dir(&checkpoints));
    env.restore_from(&checkpoints);
    env.allow_duplicate_output();
    log_job(&env, count, &log, &out);
    let handle = env.execute("allowed").unwrap();
    let warnings = handle.warnings();
    let result = handle.wait().unwrap();
    assert!(warnings.iter().any(|w| w.contains("duplicates allowed")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("sink 'out' rolled back")), "{warnings:?}");
    assert_same(&read_output(&out), &expected(count));
    assert!(result.metrics.total(names::CHECKPOINTS, names::DUPLICATE_COMMITS) > 0);
    // As warned: the restored job appended again what the later checkpoints had committed.
    let mut lines: Vec<String> = log.lines.lock().unwrap().iter().map(|l| l.2.clone()).collect();
    assert!(lines.len() > before);
    lines.sort();
    lines.dedup();
    let distinct: BTreeMap<(i64, u64), u64> = lines
        .iter()
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            ((f[0].parse().unwrap(), f[1].parse().unwrap()), f[2].parse().unwrap())
        })
        .collect();
    assert_same(&distinct, &expected(count));
}

// ---------------------------------------------------------------------------------------
// A disk that is full for a moment
// ---------------------------------------------------------------------------------------

#[test]
fn a_sink_whose_disk_is_full_for_a_moment_restarts_with_exact_output() {
    let disk = match TinyDisk::for_test("a_sink_whose_disk_is_full_for_a_moment_restarts_with_exact_output", "4m") {
        TinyDiskRun::Here(disk) => disk,
        TinyDiskRun::RanInNamespace | TinyDiskRun::Unavailable => return,
    };
    let count = 30_000;
    let out = disk.path.join("out");
    let balloon = disk.fill_leaving(16 << 10);
    let job_out = out.clone();
    let started = Instant::now();
    let env_thread = std::thread::spawn(move || {
        let env = StreamEnvironment::new();
        env.set_parallelism(2);
        env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)));
        env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 5, delay: Duration::from_millis(200) });
        file_job(&env, count, &job_out, no_hook());
        let handle = env.execute("full disk").unwrap();
        // Room again once the job has failed for it.
        let mut freed = false;
        while !handle.is_finished() {
            if !freed && handle.warnings().iter().any(|w| w.contains("restart")) {
                std::fs::remove_file(&balloon).unwrap();
                freed = true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        handle.wait()
    });
    while !env_thread.is_finished() {
        assert!(started.elapsed() < LIMIT, "the job still runs after {LIMIT:?}: it hangs");
        std::thread::sleep(Duration::from_millis(20));
    }
    let result = env_thread.join().unwrap().unwrap();
    assert!(result.restarts >= 1);
    let first = &result.warnings[0];
    assert!(first.contains("No space left on device"), "the real cause comes first: {:?}", result.warnings);
    assert!(!result.warnings.iter().any(|w| w.contains("File exists")), "{:?}", result.warnings);
    assert_same(&read_output(&out), &expected(count));
    assert_eq!(names(&out), visible(&out), "leftovers of the failed attempts");
}
