//! The word_count example survives its process dying, as an operator would meet it: a run
//! killed with SIGKILL mid-way and started again with `--restore` from its checkpoints (also
//! again and again, at other parallelisms), or stopped with SIGTERM into a savepoint and
//! resumed from it — also from its checkpoint directory — leaves exactly-once output that
//! holds every window count of the input once: nothing lost, nothing twice. A full disk
//! under its checkpoints or its output ends a run in bounded time with the cause named, and
//! the `eddy` CLI still answers about that checkpoint directory.

#[path = "common/tiny_disk.rs"]
mod tiny_disk;

#[path = "common/example_binary.rs"]
mod example_binary;

#[path = "../examples/word_count/generate.rs"]
mod generate;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tiny_disk::{TinyDisk, TinyDiskRun};

/// Window length the job runs with (its default).
const WINDOW_MS: i64 = 5000;
/// How long any one run of the binary may take before the test gives up on it.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// The example binary, which a plain `cargo test` builds next to the tests (a target filter
/// such as `--test word_count_recovery` does not build it as a plain binary).
fn word_count_binary() -> PathBuf {
    example_binary::path("word_count")
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
        Run::spawn(dir, name, Command::new(word_count_binary()).args(args))
    }

    /// Starts the binary with every file it writes limited to `bytes` (`ulimit -f`, with
    /// SIGXFSZ ignored, so that a write past the limit fails with EFBIG as on a full disk).
    fn start_with_file_size_limit(dir: &Path, name: &str, bytes: u64, args: &[&str]) -> Run {
        // dash counts 512-byte blocks, bash 1024: either way writes past ~`bytes` fail.
        let script = format!("ulimit -f {}; trap '' XFSZ; exec \"$0\" \"$@\"", bytes / 512);
        Run::spawn(dir, name, Command::new("sh").arg("-c").arg(script).arg(word_count_binary()).args(args))
    }

    fn spawn(dir: &Path, name: &str, command: &mut Command) -> Run {
        let (stdout, stderr) = (dir.join(format!("{name}.stdout")), dir.join(format!("{name}.stderr")));
        let child = command
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
        self.wait_at_most(RUN_TIMEOUT)
    }

    /// Waits for the process to exit within `limit`; fails (a hang) if it does not.
    fn wait_at_most(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("word_count still ran after {limit:?}: it hangs; stderr:\n{}", self.stderr());
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

/// The arguments of a run over `input` with checkpoints in `checkpoints` every 200 ms and
/// exactly-once output into `output`, at `parallelism`.
fn checkpointed_args(input: &Path, checkpoints: &Path, output: &Path, parallelism: usize) -> Vec<String> {
    let args = ["--input", input.to_str().unwrap(), "--timestamped", "--checkpoint-interval-ms", "200"];
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.extend(["--checkpoint-dir".into(), checkpoints.to_str().unwrap().into()]);
    args.extend(["--exactly-once-output".into(), output.to_str().unwrap().into()]);
    args.extend(["--parallelism".into(), parallelism.to_string()]);
    args
}

/// `args` plus `--restore checkpoints` when a checkpoint has committed output (a run killed
/// before any did is started afresh, as the example's docs say).
fn restoring(mut args: Vec<String>, checkpoints: &Path, output: &Path) -> Vec<String> {
    if !visible_files(output).is_empty() {
        args.extend(["--restore".into(), checkpoints.to_str().unwrap().into()]);
    }
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn repeated_sigkills_at_random_moments_restoring_at_changing_parallelism_count_every_word_once() {
    // EDDY_KILL_SEED replays a failing sequence of kill moments.
    let seed = std::env::var("EDDY_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    eprintln!("kill moments from EDDY_KILL_SEED={seed}");
    let mut random = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().unwrap();
    let (input, want) = generated_input(dir.path());
    let (checkpoints, output) = (dir.path().join("checkpoints"), dir.path().join("output"));
    // A debug build reads the input in a few seconds, a release build in well under one.
    let longest_ms = if cfg!(debug_assertions) { 2_500 } else { 1_500 };
    let mut kills = 0;
    for (round, parallelism) in [2, 1, 3, 2].into_iter().enumerate() {
        let args = restoring(checkpointed_args(&input, &checkpoints, &output, parallelism), &checkpoints, &output);
        let mut run = Run::start(dir.path(), &format!("run-{round}"), &strs(&args));
        std::thread::sleep(Duration::from_millis(random.u64(200..longest_ms)));
        if run.child.try_wait().unwrap().is_some() {
            break; // it got to the end first
        }
        run.child.kill().unwrap(); // SIGKILL, at whatever it was doing
        run.wait();
        kills += 1;
        // Whatever is committed is correct and there once (read_output checks).
        for (key, count) in &read_output(&output) {
            assert_eq!(want.get(key), Some(count), "committed count for {key:?} after kill {kills}");
        }
    }
    let args = restoring(checkpointed_args(&input, &checkpoints, &output, 2), &checkpoints, &output);
    let mut last = Run::start(dir.path(), "last", &strs(&args));
    let status = last.wait();
    assert!(status.success(), "the last run failed ({status}):\n{}", last.stderr());
    eprintln!("{kills} kills");
    assert_same_counts(&read_output(&output), &want);
}

#[test]
fn a_restore_from_the_checkpoint_directory_after_a_sigterm_savepoint_resumes_from_the_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let (input, want) = generated_input(dir.path());
    let (checkpoints, savepoints, output) =
        (dir.path().join("checkpoints"), dir.path().join("savepoints"), dir.path().join("output"));
    let mut args = checkpointed_args(&input, &checkpoints, &output, 2);
    args.extend(["--savepoint-dir".into(), savepoints.to_str().unwrap().into()]);
    let mut first = Run::start(dir.path(), "first", &strs(&args));
    first.wait_until("a committed part file", || !visible_files(&output).is_empty());
    let term = Command::new("kill").args(["-TERM", &first.child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let status = first.wait();
    assert!(status.success(), "SIGTERM should stop with a savepoint ({status}):\n{}", first.stderr());

    // A service that always restarts with `--restore <checkpoint dir>`.
    let args = [
        checkpointed_args(&input, &checkpoints, &output, 3),
        vec!["--restore".into(), checkpoints.to_str().unwrap().into()],
    ];
    let mut second = Run::start(dir.path(), "second", &strs(&args.concat()));
    let status = second.wait();
    let stderr = second.stderr();
    assert!(status.success(), "resumed run failed ({status}):\n{stderr}");
    assert!(!stderr.contains("warning"), "it resumed from the savepoint, skipping nothing:\n{stderr}");
    assert_same_counts(&read_output(&output), &want);
}

#[test]
fn a_restore_past_a_damaged_newest_checkpoint_says_so_on_stderr_and_counts_every_word_once() {
    let dir = tempfile::tempdir().unwrap();
    let (input, want) = generated_input(dir.path());
    let (checkpoints, output) = (dir.path().join("checkpoints"), dir.path().join("output"));
    let args = checkpointed_args(&input, &checkpoints, &output, 2);
    let mut first = Run::start(dir.path(), "first", &strs(&args));
    // Two checkpoints committed output: the newest can go, an older one stays.
    first.wait_until("two committed part files", || visible_files(&output).len() >= 2);
    first.child.kill().unwrap();
    first.wait();
    // Delete the database of every checkpoint from the one that committed the newest output on.
    let newest_part = visible_files(&output).pop().unwrap();
    let name = newest_part.file_name().unwrap().to_str().unwrap().to_string();
    let newest_commit: u64 = name.split('-').nth(1).unwrap().parse().unwrap();
    let mut damaged = Vec::new();
    for entry in std::fs::read_dir(&checkpoints).unwrap() {
        let path = entry.unwrap().path();
        let id = path.file_name().unwrap().to_str().unwrap().strip_prefix("chk-").and_then(|id| id.parse::<u64>().ok());
        if id.is_some_and(|id| id >= newest_commit) {
            std::fs::remove_file(path.join("db")).unwrap();
            damaged.push(path);
        }
    }

    let args = [
        checkpointed_args(&input, &checkpoints, &output, 1),
        vec!["--restore".into(), checkpoints.to_str().unwrap().into()],
    ];
    let mut second = Run::start(dir.path(), "second", &strs(&args.concat()));
    let status = second.wait();
    let stderr = second.stderr();
    assert!(status.success(), "restored run failed ({status}):\n{stderr}");
    for path in &damaged {
        let skipped =
            stderr.lines().any(|l| l.contains("warning: restore: skipped") && l.contains(path.to_str().unwrap()));
        assert!(skipped, "no warning about {} on stderr:\n{stderr}", path.display());
    }
    let rolled_back = stderr.contains("rolled back output committed after checkpoint");
    assert!(rolled_back && output.join("_rolled_back").join(&name).exists(), "{name}: {stderr}");
    assert_same_counts(&read_output(&output), &want);
}

/// How long a run on a full disk may take to fail (or finish): a debug build reads the
/// whole input in a few seconds, so this only trips on a hang.
const FULL_DISK_LIMIT: Duration = Duration::from_secs(120);

/// The `eddy` CLI, which a plain `cargo test` builds too.
fn eddy_binary() -> PathBuf {
    let binary = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("eddy");
    assert!(binary.exists(), "{} is missing: run plain `cargo test`, which builds the CLI", binary.display());
    binary
}

/// Runs the CLI on `args`, failing if it takes longer than [`FULL_DISK_LIMIT`]; returns its
/// exit status and output.
fn eddy_answers(dir: &Path, name: &str, args: &[&str]) -> (ExitStatus, String) {
    let mut run = Run::spawn(dir, name, Command::new(eddy_binary()).args(args));
    let status = run.wait_at_most(FULL_DISK_LIMIT);
    (status, run.stdout() + &run.stderr())
}

#[test]
fn a_full_checkpoint_disk_fails_the_run_in_bounded_time_and_a_later_restore_counts_every_word_once() {
    let dir = tempfile::tempdir().unwrap();
    let (input, want) = generated_input(dir.path());
    let output = dir.path().join("output");
    // On a tmpfs with 1.5 MiB free where this process may mount one; else with every file the
    // run writes limited to 1.5 MiB (sled's files outgrow it, the part files do not).
    let test = "a_full_checkpoint_disk_fails_the_run_in_bounded_time_and_a_later_restore_counts_every_word_once";
    let disk = match TinyDisk::for_test(test, "64m") {
        TinyDiskRun::Here(disk) => Some(disk),
        TinyDiskRun::RanInNamespace => return,
        TinyDiskRun::Unavailable => None,
    };
    let (checkpoints, balloon) = match &disk {
        Some(disk) => (disk.path.join("checkpoints"), Some(disk.fill_leaving(3 << 19))),
        None => {
            eprintln!("no tmpfs: filling the disk with a file size limit instead");
            (dir.path().join("checkpoints"), None)
        }
    };
    let args = checkpointed_args(&input, &checkpoints, &output, 2);
    let mut full = match balloon {
        Some(_) => Run::start(dir.path(), "full", &strs(&args)),
        None => Run::start_with_file_size_limit(dir.path(), "full", 3 << 19, &strs(&args)),
    };
    let status = full.wait_at_most(FULL_DISK_LIMIT);
    let stderr = full.stderr();
    assert!(!status.success(), "the disk filled up, yet the run succeeded:\n{stderr}");
    let named = ["No space left on device", "File too large"].iter().any(|cause| stderr.contains(cause));
    assert!(named, "the cause is not named:\n{stderr}");
    for (key, count) in &read_output(&output) {
        assert_eq!(want.get(key), Some(count), "committed count for {key:?}");
    }

    // The CLI answers about the full directory (whatever its verdict on each checkpoint).
    let (_, listed) = eddy_answers(dir.path(), "list", &["checkpoints", "list", checkpoints.to_str().unwrap()]);
    assert!(listed.contains("chk-") || listed.contains("ID") || listed.contains("no checkpoints"), "{listed}");
    eddy_answers(dir.path(), "validate", &["savepoint", "validate", checkpoints.to_str().unwrap()]);
    eddy_answers(dir.path(), "info", &["savepoint", "info", checkpoints.to_str().unwrap()]);

    // With room again, a restore finishes the job exactly.
    if let Some(balloon) = balloon {
        std::fs::remove_file(balloon).unwrap();
    }
    let args = restoring(checkpointed_args(&input, &checkpoints, &output, 3), &checkpoints, &output);
    let mut restored = Run::start(dir.path(), "restored", &strs(&args));
    let status = restored.wait();
    assert!(status.success(), "restored run failed ({status}):\n{}", restored.stderr());
    assert_same_counts(&read_output(&output), &want);
}

#[test]
fn a_full_output_disk_fails_the_run_in_bounded_time_and_a_later_restore_counts_every_word_once() {
    let test = "a_full_output_disk_fails_the_run_in_bounded_time_and_a_later_restore_counts_every_word_once";
    let disk = match TinyDisk::for_test(test, "16m") {
        TinyDiskRun::Here(disk) => disk,
        TinyDiskRun::RanInNamespace | TinyDiskRun::Unavailable => return,
    };
    let dir = tempfile::tempdir().unwrap();
    let (input, want) = generated_input(dir.path());
    let (checkpoints, output) = (dir.path().join("checkpoints"), disk.path.join("output"));
    let balloon = disk.fill_leaving(256 << 10);
    let args = checkpointed_args(&input, &checkpoints, &output, 2);
    let mut full = Run::start(dir.path(), "full", &strs(&args));
    let status = full.wait_at_most(FULL_DISK_LIMIT);
    let stderr = full.stderr();
    assert!(!status.success(), "the disk filled up, yet the run succeeded:\n{stderr}");
    assert!(stderr.contains("No space left on device"), "the cause is not named:\n{stderr}");
    assert!(!stderr.contains("File exists"), "a restart tripped over a failed attempt's files:\n{stderr}");

    std::fs::remove_file(balloon).unwrap();
    let args = restoring(checkpointed_args(&input, &checkpoints, &output, 1), &checkpoints, &output);
    let mut restored = Run::start(dir.path(), "restored", &strs(&args));
    let status = restored.wait();
    assert!(status.success(), "restored run failed ({status}):\n{}", restored.stderr());
    assert_same_counts(&read_output(&output), &want);
}
