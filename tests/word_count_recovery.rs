//! The word_count example survives its process dying, as an operator would meet it: a run
//! killed with SIGKILL mid-way and started again with `--restore` from its checkpoints, or
//! stopped with SIGTERM into a savepoint and resumed from it, leaves exactly-once output that
//! holds every window count of the input once — nothing lost, nothing twice.

#[path = "../examples/word_count/generate.rs"]
mod generate;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Window length the job runs with (its default).
const WINDOW_MS: i64 = 5000;
/// How long any one run of the binary may take before the test gives up on it.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// The example binary, which a plain `cargo test` builds next to the tests (a target filter
/// such as `--test word_count_recovery` does not build it as a plain binary).
fn word_count_binary() -> PathBuf {
    let examples = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples");
    let binary = examples.join("word_count");
    assert!(binary.exists(), "{} is missing: run plain `cargo test`, which builds the examples", binary.display());
    binary
}

/// Counts per (window start, word) in the file at `input`, computed plainly: split on
/// anything that is not an ASCII letter, digit or `_`, lowercase, bucket by `ts - ts mod window`.
fn expected(input: &Path, window_ms: i64) -> BTreeMap<(i64, String), u64> {
    let mut counts = BTreeMap::new();
    for line in BufReader::new(File::open(input).unwrap()).lines() {
        let line = line.unwrap();
        let Some((ts, text)) = line.split_once('\t') else { continue };
        let Ok(ts) = ts.parse::<i64>() else { continue };
        let start = ts - ts.rem_euclid(window_ms);
        for token in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|t| !t.is_empty()) {
            *counts.entry((start, token.to_ascii_lowercase())).or_insert(0) += 1;
        }
    }
    counts
}

/// An input large enough that a run takes seconds, so that it can be interrupted after its
/// first checkpoint but long before its end (a release build reads it ~15 times faster).
fn generated_input(dir: &Path) -> (PathBuf, BTreeMap<(i64, String), u64>) {
    let path = dir.join("input.tsv");
    let target_bytes = if cfg!(debug_assertions) { 24 << 20 } else { 160 << 20 };
    let spec = generate::Spec { target_bytes, seed: 11, disorder_ms: 0, start_ms: 1_700_000_000_000 };
    generate::generate(&path, spec).unwrap();
    let want = expected(&path, WINDOW_MS);
    (path, want)
}

/// The visible (committed) part files of an exactly-once output directory, by name.
fn visible_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_str().unwrap().starts_with(['.', '_']))
        .collect();
    files.sort();
    files
}

/// Every `start,end,word,count` line of every visible file, checking that no (start, word)
/// appears twice, in one file or across files.
fn read_output(dir: &Path) -> BTreeMap<(i64, String), u64> {
    let mut counts = BTreeMap::new();
    for file in visible_files(dir) {
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 4, "bad output line {line:?} in {}", file.display());
            let (start, end): (i64, i64) = (fields[0].parse().unwrap(), fields[1].parse().unwrap());
            assert_eq!(end - start, WINDOW_MS, "window bounds in {line:?}");
            let previous = counts.insert((start, fields[2].to_string()), fields[3].parse().unwrap());
            assert!(previous.is_none(), "duplicate row {line:?} (again in {})", file.display());
        }
    }
    counts
}

/// A run of the binary in the background; stdout and stderr go to files, which never fill
/// up and block it the way an unread pipe would.
struct Run {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Run {
    fn start(dir: &Path, name: &str, args: &[&str]) -> Run {
        let (stdout, stderr) = (dir.join(format!("{name}.stdout")), dir.join(format!("{name}.stderr")));
        let child = Command::new(word_count_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .expect("start word_count");
        Run { child, stdout, stderr }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap()
    }

    /// Waits for the process to exit; kills it and fails after `RUN_TIMEOUT`.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("word_count ran longer than {RUN_TIMEOUT:?}; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `ready()` holds while the process still runs; fails if it exits first.
    fn wait_until(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + RUN_TIMEOUT;
        while !ready() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("word_count exited ({status}) before {what}; stderr:\n{}", self.stderr());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("no {what} after {RUN_TIMEOUT:?}; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Run {
    /// A failing test leaves no process behind.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Asserts `got == want`, describing a difference briefly (the maps hold ~10^5 rows).
fn assert_same_counts(got: &BTreeMap<(i64, String), u64>, want: &BTreeMap<(i64, String), u64>) {
    let missing: Vec<_> = want.iter().filter(|(k, _)| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.iter().filter(|(k, _)| !want.contains_key(*k)).collect();
    let wrong: Vec<_> = got.iter().filter_map(|(k, n)| want.get(k).filter(|m| *m != n).map(|m| (k, n, m))).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && wrong.is_empty(),
        "{} of {} expected rows missing (first {:?}), {} unexpected (first {:?}), {} with a wrong count \
         (first (key, got, want) {:?})",
        missing.len(),
        want.len(),
        missing.first(),
        extra.len(),
        extra.first(),
        wrong.len(),
        wrong.first(),
    );
}

/// Checks that an interrupted run committed part of the results, and only correct ones.
fn assert_partial(got: &BTreeMap<(i64, String), u64>, want: &BTreeMap<(i64, String), u64>) {
    assert!(!got.is_empty(), "the interrupted run committed nothing");
    assert!(got.len() < want.len(), "the interrupted run committed everything: it was not stopped mid-way");
    for (key, count) in got {
        assert_eq!(want.get(key), Some(count), "committed count for {key:?}");
    }
}

#[test]
fn killed_run_restored_from_its_checkpoints_counts_every_word_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (input, want) = generated_input(dir.path());
    let (checkpoints, output) = (dir.path().join("checkpoints"), dir.path().join("output"));
    let args = [
        "--input",
        input.to_str().unwrap(),
        "--timestamped",
        "--checkpoint-dir",
        checkpoints.to_str().unwrap(),
        "--checkpoint-interval-ms",
        "200",
        "--exactly-once-output",
        output.to_str().unwrap(),
        "--parallelism",
        "2",
    ];

    let started = Instant::now();
    let mut first = Run::start(dir.path(), "first", &args);
    // A visible part file exists only once its checkpoint is complete.
    first.wait_until("a committed part file", || !visible_files(&output).is_empty());
    first.child.kill().unwrap(); // SIGKILL: no chance to clean up or commit anything more
    first.wait();
    let killed_after = started.elapsed();
    let mut checkpoint_dirs = std::fs::read_dir(&checkpoints).unwrap().map(|e| e.unwrap().file_name());
    assert!(checkpoint_dirs.any(|name| name.to_string_lossy().starts_with("chk-")));
    assert_partial(&read_output(&output), &want);

    let restarted = Instant::now();
    let mut second =
        Run::start(dir.path(), "second", &[&args[..], &["--restore", checkpoints.to_str().unwrap()]].concat());
    let status = second.wait();
    assert!(status.success(), "restored run failed ({status}):\n{}", second.stderr());
    eprintln!("killed after {killed_after:?}; the restored run took {:?}", restarted.elapsed());
    assert_same_counts(&read_output(&output), &want);
}

#[test]
fn sigterm_stops_with_a_savepoint_that_a_new_run_resumes_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (input, want) = generated_input(dir.path());
    let (savepoints, output) = (dir.path().join("savepoints"), dir.path().join("output"));
    let common = ["--input", input.to_str().unwrap(), "--timestamped", "--parallelism", "2"];
    let out = ["--exactly-once-output", output.to_str().unwrap()];
    let args =
        [&common[..], &out, &["--checkpoint-interval-ms", "200", "--savepoint-dir", savepoints.to_str().unwrap()]];

    let started = Instant::now();
    let mut first = Run::start(dir.path(), "first", &args.concat());
    // The in-memory checkpoints commit part files too: progress, well before the end.
    first.wait_until("a committed part file", || !visible_files(&output).is_empty());
    let term = Command::new("kill").args(["-TERM", &first.child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let status = first.wait();
    let stopped_after = started.elapsed();
    assert!(status.success(), "SIGTERM should stop with a savepoint and exit 0 ({status}):\n{}", first.stderr());
    let stdout = first.stdout();
    let savepoint = stdout
        .lines()
        .find_map(|line| line.strip_prefix("savepoint: "))
        .unwrap_or_else(|| panic!("no `savepoint: <path>` line in {stdout:?}"));
    assert!(Path::new(savepoint).starts_with(&savepoints) && Path::new(savepoint).is_dir(), "{savepoint}");
    assert_partial(&read_output(&output), &want);

    let resumed = Instant::now();
    let mut second = Run::start(dir.path(), "second", &[&common[..], &out, &["--restore", savepoint]].concat());
    let status = second.wait();
    assert!(status.success(), "resumed run failed ({status}):\n{}", second.stderr());
    eprintln!("stopped after {stopped_after:?}; the resumed run took {:?}", resumed.elapsed());
    assert_same_counts(&read_output(&output), &want);
}
