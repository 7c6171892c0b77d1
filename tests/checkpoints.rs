//! Checkpoints end to end, as a user meets them: a job that keeps failing still produces
//! exactly the results of a failure-free run; a job stopped with a savepoint and restored at
//! other parallelisms produces the results of a run without stops; damaged checkpoints and
//! savepoints are skipped or refused with a clear message.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy::prelude::*;

/// Keys of the test events.
const KEYS: u64 = 7;
/// Event time advances this much per event index.
const STEP_MS: i64 = 10;
/// Window length.
const WINDOW_MS: i64 = 1_000;

/// Event `i`: key `i % KEYS` at time `i * STEP_MS`.
fn event(i: u64) -> (u64, i64) {
    (i % KEYS, i as i64 * STEP_MS)
}

/// What the job emits: window counts, each key's running count, and fired timers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Out {
    Window { key: u64, start: i64, count: u64 },
    Running { key: u64, count: u64 },
    Timer { key: u64, at: i64 },
}

/// Panics injected once each at chosen (operator, event index) points.
#[derive(Default)]
struct Faults {
    points: Vec<(&'static str, u64, AtomicBool)>,
}

impl Faults {
    fn new(points: &[(&'static str, u64)]) -> Arc<Self> {
        Arc::new(Faults { points: points.iter().map(|&(op, i)| (op, i, AtomicBool::new(false))).collect() })
    }

    fn maybe_fail(&self, operator: &str, index: u64) {
        for (op, at, fired) in &self.points {
            if *op == operator && *at == index && !fired.swap(true, Ordering::SeqCst) {
                panic!("injected failure in {operator} at event {index}");
            }
        }
    }

    fn all_fired(&self) -> bool {
        self.points.iter().all(|(.., fired)| fired.load(Ordering::SeqCst))
    }
}

/// The expected output, computed sequentially.
fn model(count: u64) -> Vec<Out> {
    let mut windows: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    let mut running: BTreeMap<u64, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for i in 0..count {
        let (key, ts) = event(i);
        *windows.entry((key, ts - ts % WINDOW_MS)).or_default() += 1;
        let n = running.entry(key).or_default();
        *n += 1;
        out.push(Out::Running { key, count: *n });
    }
    for (&(key, start), &count) in &windows {
        out.push(Out::Window { key, start, count });
        out.push(Out::Timer { key, at: start + WINDOW_MS });
    }
    out.sort();
    out
}

/// The job: a throttled generator (so checkpoints happen while it runs) → event time →
/// per key: a tumbling window count, and a process function with a running count in value
/// state and an event-time timer at the end of each record's second.
fn build(env: &StreamEnvironment, count: u64, faults: Arc<Faults>) -> Collected<Out> {
    let events = env
        .generate(Some(count), |i| {
            if i % 200 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            (i, event(i))
        })
        .uid("events")
        .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |e: &(u64, (u64, i64))| e.1 .1);
    let f = faults.clone();
    let checked = events.map(move |e| {
        f.maybe_fail("map", e.0);
        e
    });
    let f = faults.clone();
    let windows = checked
        .key_by(|e: &(u64, (u64, i64))| e.1 .0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(WINDOW_MS as u64)))
        .aggregate_with(Count, move |key, window, count| {
            f.maybe_fail("window", window.start as u64);
            Out::Window { key: *key, start: window.start, count }
        })
        .uid("windows");
    let processed = checked.key_by(|e: &(u64, (u64, i64))| e.1 .0).process(RunningCount { faults }).uid("running");
    windows.union(&[processed]).collect()
}

/// Asserts equal multisets, showing a few differences rather than both lists.
fn assert_same(got: &[Out], expected: &[Out], context: &str) {
    let mut counts: BTreeMap<&Out, i64> = BTreeMap::new();
    for o in got {
        *counts.entry(o).or_default() += 1;
    }
    for o in expected {
        *counts.entry(o).or_default() -= 1;
    }
    let extra: Vec<_> = counts.iter().filter(|(_, &n)| n > 0).take(5).collect();
    let missing: Vec<_> = counts.iter().filter(|(_, &n)| n < 0).take(5).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "{context}: got {} records, expected {}; extra (record, times): {extra:?}; missing: {missing:?}",
        got.len(),
        expected.len()
    );
}

/// Each key's running count in value state, and a timer at the end of each record's second.
#[derive(Clone)]
struct RunningCount {
    faults: Arc<Faults>,
}

impl KeyedProcessFunction<u64, (u64, (u64, i64)), Out> for RunningCount {
    fn process_element(&mut self, e: &(u64, (u64, i64)), ctx: &mut KeyedContext<'_, u64, Out>) -> Result<(), BoxError> {
        self.faults.maybe_fail("process", e.0);
        let state = ctx.state().value_state(&ValueStateDescriptor::<u64>::new("running"))?;
        let n = state.value()?.unwrap_or(0) + 1;
        state.update(n)?;
        ctx.register_event_time_timer(e.1 .1 - e.1 .1 % WINDOW_MS + WINDOW_MS)?;
        ctx.collect(Out::Running { key: e.1 .0, count: n });
        Ok(())
    }

    fn on_timer(&mut self, at: i64, ctx: &mut KeyedContext<'_, u64, Out>) -> Result<(), BoxError> {
        let key = *ctx.current_key();
        ctx.collect(Out::Timer { key, at });
        Ok(())
    }
}

fn sorted(collected: &Collected<Out>) -> Vec<Out> {
    let mut out = collected.take();
    out.sort();
    out
}

#[test]
fn panics_in_random_operators_leave_the_results_of_a_failure_free_run() {
    let count = 12_000;
    let expected = model(count);
    let mut rng = fastrand::Rng::with_seed(7);
    for parallelism in 1..=4 {
        let points: Vec<(&str, u64)> = (0..3)
            .map(|_| match rng.u8(0..3) {
                0 => ("map", rng.u64(1_000..count)),
                1 => ("window", rng.u64(1..(count * STEP_MS as u64 / 1_000)) * 1_000),
                _ => ("process", rng.u64(1_000..count)),
            })
            .collect();
        let faults = Faults::new(&points);
        let env = StreamEnvironment::new();
        env.set_parallelism(parallelism);
        env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(15)));
        env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 10, delay: Duration::ZERO });
        let out = build(&env, count, faults.clone());
        let result = env.execute("faulty").unwrap().wait().unwrap();
        assert!(faults.all_fired(), "p={parallelism}: not every fault fired: {points:?}");
        // Faults in different threads may fire in the same attempt.
        assert!((1..=points.len()).contains(&result.restarts), "p={parallelism}: {} restarts", result.restarts);
        assert_same(&sorted(&out), &expected, &format!("p={parallelism}, faults {points:?}"));
    }
}

#[test]
fn with_incremental_checkpoints_window_contents_go_as_deltas_and_failures_change_nothing() {
    // Long enough for a few checkpoints between the restarts.
    let count = 30_000;
    let expected = model(count);
    let mut window_deltas = 0;
    for parallelism in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::new(&[("map", count * 3 / 4)]);
        let env = StreamEnvironment::new();
        env.set_parallelism(parallelism);
        let config = CheckpointConfig::every(Duration::from_millis(10)).dir(dir.path()).retain(100);
        env.enable_checkpointing(config.incremental(true));
        env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 10, delay: Duration::ZERO });
        let out = build(&env, count, faults.clone());
        env.execute("incremental windows").unwrap().wait().unwrap();
        assert!(faults.all_fired(), "p={parallelism}");
        assert_same(&sorted(&out), &expected, &format!("p={parallelism}"));
        // How many checkpoints handed the window operator's contents over as changes (a
        // delta in one of its parts). A restart's first checkpoint is full, and how many
        // come before the end depends on timing, so this counts over all three runs.
        let checkpoints = eddy_state::checkpoint::CheckpointDirectory::open(dir.path()).unwrap();
        for id in checkpoints.ids().unwrap() {
            let reader = eddy_state::checkpoint::SnapshotReader::open(checkpoints.path_for(id)).unwrap();
            reader.verify().unwrap();
            let mut windows = reader.metadata().operators.iter().filter(|op| op.uid == "windows");
            if windows.any(|op| op.parts.iter().any(|part| !part.deltas.is_empty())) {
                window_deltas += 1;
            }
        }
    }
    assert!(window_deltas > 0, "no checkpoint kept handed window contents over as deltas");
}

#[test]
fn without_restarts_a_failure_fails_the_job_with_its_cause() {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(10)));
    env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 1, delay: Duration::ZERO });
    let faults = Faults::new(&[("map", 3_000), ("map", 6_000)]);
    build(&env, 10_000, faults);
    let error = env.execute("fails twice").unwrap().wait().unwrap_err().to_string();
    assert!(error.contains("injected failure in map at event 6000"), "{error}");
}

/// Runs the job `job` builds at each parallelism in turn, stopping all but the last with a
/// savepoint after `stop_after` and restoring the next from it; returns everything the runs
/// collected, sorted, and how many stops took a savepoint.
fn run_with_stops<T: Data + Ord>(
    parallelisms: &[usize],
    stop_after: Duration,
    dir: &Path,
    job: impl Fn(&StreamEnvironment) -> Collected<T>,
) -> (Vec<T>, usize) {
    let mut all = Vec::new();
    let mut restore = None;
    let mut stops = 0;
    for (run, &parallelism) in parallelisms.iter().enumerate() {
        let env = StreamEnvironment::new();
        env.set_parallelism(parallelism);
        env.enable_checkpointing(CheckpointConfig::on_request());
        if let Some(path) = &restore {
            env.restore_from(path);
        }
        let out = job(&env);
        let handle = env.execute("rescaled").unwrap();
        let last = run + 1 == parallelisms.len();
        if !last {
            std::thread::sleep(stop_after);
            let target = dir.join(format!("savepoint-{run}"));
            match handle.stop_with_savepoint(&target, false) {
                Ok(path) => {
                    stops += 1;
                    restore = Some(path);
                }
                // The input ran out first: nothing left to restore.
                Err(e) => assert!(e.to_string().contains("ended"), "{e}"),
            }
        }
        let result = handle.wait().unwrap();
        all.extend(out.take());
        if result.savepoint.is_none() {
            break;
        }
    }
    all.sort();
    (all, stops)
}

#[test]
fn stop_with_savepoint_and_restore_at_3_then_1_then_4_gives_the_results_of_one_run() {
    let count = 40_000;
    let dir = tempfile::tempdir().unwrap();
    let job = |env: &StreamEnvironment| build(env, count, Faults::new(&[]));
    let (got, stops) = run_with_stops(&[2, 3, 1, 4], Duration::from_millis(60), dir.path(), job);
    assert!(stops >= 2, "the job should have been stopped mid-way at least twice, was {stops} times");
    assert_same(&got, &model(count), "stopped and restored at 2, 3, 1, 4");
}

#[test]
fn a_savepoint_while_running_changes_nothing_and_restores_elsewhere() {
    let count = 80_000;
    let dir = tempfile::tempdir().unwrap();
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::on_request());
    let out = build(&env, count, Faults::new(&[]));
    let handle = env.execute("savepointed").unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let savepoint = handle.savepoint(dir.path().join("sp")).unwrap();
    handle.wait().unwrap();
    assert_same(&sorted(&out), &model(count), "with a savepoint");
    // The savepoint is a valid start: the restored job produces what came after it.
    let env = StreamEnvironment::new();
    env.set_parallelism(3);
    env.enable_checkpointing(CheckpointConfig::on_request());
    env.restore_from(&savepoint);
    let rest = build(&env, count, Faults::new(&[]));
    env.execute("from savepoint").unwrap().wait().unwrap();
    let (rest, all) = (sorted(&rest), model(count));
    assert!(!rest.is_empty() && rest.len() < all.len());
    let all: std::collections::BTreeSet<Out> = all.into_iter().collect();
    assert!(rest.iter().all(|o| all.contains(o)));
}

/// Every key's last running count: the same however often records were replayed.
fn final_counts(out: &[Out]) -> BTreeMap<u64, u64> {
    let mut last = BTreeMap::new();
    for o in out {
        if let Out::Running { key, count } = o {
            let n = last.entry(*key).or_insert(0);
            *n = (*n).max(*count);
        }
    }
    last
}

#[test]
fn a_damaged_newest_checkpoint_is_skipped_for_the_previous_one() {
    let count = 150_000;
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("checkpoints");
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)).dir(&checkpoints).retain(5));
    build(&env, count, Faults::new(&[]));
    let handle = env.execute("to be killed").unwrap();
    let started = Instant::now();
    while complete_checkpoints(&checkpoints) < 2 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Cancelled mid-way, or finished with a final checkpoint: either way the newest is damaged.
    handle.cancel();
    let _ = handle.wait();
    let newest = newest_checkpoint(&checkpoints);
    std::fs::write(newest.join("db"), b"garbage").unwrap();
    // A restore takes the previous checkpoint and finishes the job.
    let env = StreamEnvironment::new();
    env.set_parallelism(3);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)));
    env.restore_from(&checkpoints);
    let out = build(&env, count, Faults::new(&[]));
    env.execute("restored").unwrap().wait().unwrap();
    let expected = final_counts(&model(count));
    assert_eq!(final_counts(&sorted(&out)), expected);
}

fn checkpoint_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("chk-")));
    dirs.sort();
    dirs
}

fn complete_checkpoints(dir: &Path) -> usize {
    checkpoint_dirs(dir).len().saturating_sub(1)
}

fn newest_checkpoint(dir: &Path) -> std::path::PathBuf {
    checkpoint_dirs(dir).pop().expect("a checkpoint")
}

#[test]
fn a_garbled_savepoint_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::on_request());
    let out = build(&env, 5_000, Faults::new(&[]));
    let handle = env.execute("savepointed").unwrap();
    let savepoint = handle.savepoint(dir.path().join("sp")).unwrap();
    handle.wait().unwrap();
    drop(out);
    let db = savepoint.join("db");
    let mut bytes = std::fs::read(&db).unwrap();
    let (middle, len) = (bytes.len() / 2, bytes.len());
    for b in &mut bytes[middle..(middle + 64).min(len)] {
        *b ^= 0x5a;
    }
    std::fs::write(&db, &bytes).unwrap();
    let env = StreamEnvironment::new();
    env.enable_checkpointing(CheckpointConfig::on_request());
    env.restore_from(&savepoint);
    build(&env, 5_000, Faults::new(&[]));
    let error = env.execute("from garbage").err().expect("a garbled savepoint must be refused").to_string();
    assert!(error.contains(&savepoint.display().to_string()), "{error}");
}

#[test]
fn stateful_operators_without_uid_are_rejected_by_name() {
    let env = StreamEnvironment::new();
    env.enable_checkpointing(CheckpointConfig::on_request());
    env.generate(Some(10), |i| i).uid("numbers").key_by(|n| n % 2).sum(|n| n).name("Totals").collect();
    let error = env.execute("no uid").err().unwrap().to_string();
    assert!(error.contains("'Totals'") && error.contains("uid"), "{error}");
}

#[test]
fn a_restore_must_match_max_parallelism_and_claim_all_state() {
    let dir = tempfile::tempdir().unwrap();
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::on_request());
    build(&env, 5_000, Faults::new(&[]));
    let handle = env.execute("savepointed").unwrap();
    let savepoint = handle.savepoint(dir.path().join("sp")).unwrap();
    handle.wait().unwrap();

    let env = StreamEnvironment::new();
    env.set_max_parallelism(64);
    env.enable_checkpointing(CheckpointConfig::on_request());
    env.restore_from(&savepoint);
    build(&env, 5_000, Faults::new(&[]));
    let error = env.execute("other max").err().unwrap().to_string();
    assert!(error.contains("max_parallelism 128") && error.contains("64"), "{error}");

    // A job without the "windows" operator: its state is unclaimed.
    let job_without_windows = |allow: bool| {
        let env = StreamEnvironment::new();
        env.enable_checkpointing(CheckpointConfig::on_request());
        env.restore_from(&savepoint);
        if allow {
            env.allow_non_restored_state();
        }
        env.generate(Some(5_000), |i| (i, event(i))).uid("events").map(|e| e.0).collect();
        env.execute("fewer operators")
    };
    let error = job_without_windows(false).err().unwrap().to_string();
    assert!(error.contains("windows") && error.contains("allow_non_restored_state"), "{error}");
    job_without_windows(true).unwrap().wait().unwrap();
}

#[test]
fn at_least_once_loses_nothing_under_failures() {
    let count = 12_000;
    let expected = model(count);
    let env = StreamEnvironment::new();
    env.set_parallelism(3);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(15)).mode(CheckpointingMode::AtLeastOnce));
    env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 5, delay: Duration::ZERO });
    let out = build(&env, count, Faults::new(&[("map", 4_000), ("process", 9_000)]));
    let result = env.execute("at least once").unwrap().wait().unwrap();
    assert!(result.restarts >= 1);
    // Unaligned barriers may put a record in a snapshot that is also replayed: every result
    // is there, some perhaps twice (or counted once more).
    let got: std::collections::BTreeSet<Out> = sorted(&out).into_iter().collect();
    let missing: Vec<_> =
        expected.iter().filter(|o| matches!(o, Out::Running { .. } | Out::Timer { .. }) && !got.contains(o)).collect();
    assert!(missing.is_empty(), "missing {} results, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
}

#[test]
fn at_least_once_without_failures_is_exact() {
    let count = 12_000;
    let env = StreamEnvironment::new();
    env.set_parallelism(3);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(10)).mode(CheckpointingMode::AtLeastOnce));
    let out = build(&env, count, Faults::new(&[]));
    let result = env.execute("at least once").unwrap().wait().unwrap();
    assert!(result.checkpoints >= 2, "{} checkpoints", result.checkpoints);
    assert_same(&sorted(&out), &model(count), "at-least-once, no failures");
}

#[test]
fn stop_with_drain_fires_every_window_before_the_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::on_request());
    let out = build(&env, 200_000, Faults::new(&[]));
    let handle = env.execute("drained").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    handle.stop_with_savepoint(dir.path().join("sp"), true).unwrap();
    let result = handle.wait().unwrap();
    assert!(result.savepoint.is_some());
    let out = sorted(&out);
    let processed = out.iter().filter(|o| matches!(o, Out::Running { .. })).count() as u64;
    let windowed: u64 = out.iter().map(|o| if let Out::Window { count, .. } = o { *count } else { 0 }).sum();
    assert!(processed > 0 && processed < 200_000, "stopped mid-way: {processed} events");
    // Every event the job took in was counted in a window that fired before the stop.
    assert_eq!(windowed, processed);
}

/// Passes events whose value is above the newest broadcast threshold; says when a rule came.
#[derive(Clone)]
struct AboveThreshold {
    rule_seen: Arc<AtomicBool>,
}

impl KeyedBroadcastProcessFunction<u64, (u64, u64), u64, Option<u64>, (u64, u64)> for AboveThreshold {
    fn process_element(
        &mut self,
        e: &(u64, u64),
        threshold: &Option<u64>,
        ctx: &mut KeyedContext<'_, u64, (u64, u64)>,
    ) -> Result<(), BoxError> {
        if threshold.is_some_and(|t| e.1 > t) {
            ctx.collect(*e);
        }
        Ok(())
    }

    fn process_broadcast_element(&mut self, t: &u64, threshold: &mut Option<u64>) -> Result<(), BoxError> {
        *threshold = Some(*t);
        self.rule_seen.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn broadcast_state_survives_a_stop_and_a_restore_at_another_parallelism() {
    let count = 60_000;
    // The only rule arrives before the first event (the generator waits for it) and long
    // before the stop: after the restore it exists only in the restored broadcast state.
    let events = |env: &StreamEnvironment| {
        let rule_seen = Arc::new(AtomicBool::new(false));
        let seen = rule_seen.clone();
        let events = env
            .generate(Some(count), move |i| {
                let waited = Instant::now();
                while i < 2 && !seen.load(Ordering::SeqCst) && waited.elapsed() < Duration::from_secs(5) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                if i % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                (i % KEYS, i % 100)
            })
            .uid("events");
        let rules = env.from_collection(vec![90u64]).uid("rules");
        let function = AboveThreshold { rule_seen };
        events.key_by(|e: &(u64, u64)| e.0).connect_broadcast(&rules).process(function).uid("alerts").collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::on_request());
    let first = events(&env);
    let handle = env.execute("alerts").unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let savepoint = handle.stop_with_savepoint(dir.path().join("sp"), false).unwrap();
    handle.wait().unwrap();
    let env = StreamEnvironment::new();
    env.set_parallelism(3);
    env.enable_checkpointing(CheckpointConfig::on_request());
    env.restore_from(&savepoint);
    let second = events(&env);
    env.execute("alerts, restored").unwrap().wait().unwrap();
    let (first, second) = (first.take(), second.take());
    assert!(!first.is_empty() && !second.is_empty(), "{} then {} alerts", first.len(), second.len());
    let mut got: Vec<(u64, u64)> = first.into_iter().chain(second).collect();
    got.sort();
    let mut expected: Vec<(u64, u64)> = (0..count).map(|i| (i % KEYS, i % 100)).filter(|e| e.1 > 90).collect();
    expected.sort();
    assert_eq!(got, expected);
}

/// Session event `i`: key `i % 3`, time `i * 10` plus 2 s after every 150 events, so each key
/// has one session of 50 events per block.
fn session_event(i: u64) -> (u64, i64) {
    (i % 3, i as i64 * 10 + (i / 150) as i64 * 2_000)
}

/// `(key, session start, session end, events)` of the first `count` events, gap 100 ms.
fn session_model(count: u64) -> Vec<(u64, i64, i64, u64)> {
    let mut sessions: BTreeMap<(u64, u64), (i64, i64, u64)> = BTreeMap::new();
    for i in 0..count {
        let (key, ts) = session_event(i);
        let s = sessions.entry((key, i / 150)).or_insert((ts, ts, 0));
        s.1 = ts;
        s.2 += 1;
    }
    let mut out: Vec<_> =
        sessions.into_iter().map(|((key, _), (first, last, n))| (key, first, last + 100, n)).collect();
    out.sort();
    out
}

#[test]
fn session_windows_survive_stops_and_restores_at_other_parallelisms() {
    let count = 60_000;
    let dir = tempfile::tempdir().unwrap();
    let job = |env: &StreamEnvironment| {
        env.generate(Some(count), |i| {
            if i % 100 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            session_event(i)
        })
        .uid("events")
        .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |e: &(u64, i64)| e.1)
        .key_by(|e: &(u64, i64)| e.0)
        .window(EventTimeSessionWindows::with_gap(Duration::from_millis(100)))
        .aggregate_with(Count, |key, window, n| (*key, window.start, window.end, n))
        .uid("sessions")
        .collect()
    };
    let (all, stops) = run_with_stops(&[2, 3, 1], Duration::from_millis(80), dir.path(), job);
    assert_eq!(stops, 2);
    assert_eq!(all.len(), session_model(count).len());
    assert_eq!(all, session_model(count));
}

#[test]
fn count_triggered_windows_survive_stops_and_restores() {
    let count = 60_000u64;
    let dir = tempfile::tempdir().unwrap();
    let job = |env: &StreamEnvironment| {
        env.generate(Some(count), |i| {
            if i % 100 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            i % 3
        })
        .uid("events")
        .key_by(|k: &u64| *k)
        .window(GlobalWindows::create())
        .trigger(CountTrigger::of(7))
        .aggregate_with(Count, |key, _, n| (*key, n))
        .uid("counted")
        .collect()
    };
    let (all, stops) = run_with_stops(&[2, 3, 1], Duration::from_millis(80), dir.path(), job);
    assert_eq!(stops, 2);
    // Each key's window fires at every 7th record with its running count (the trigger's count
    // and the window's contents both survive the stops).
    let per_key = count / 3;
    let expected: Vec<(u64, u64)> =
        (0..3).flat_map(|key| (1..=per_key / 7).map(move |firing| (key, firing * 7))).collect();
    assert_eq!(all, expected);
}

#[test]
fn a_checkpoint_that_takes_too_long_is_abandoned_and_the_job_goes_on() {
    let count = 20_000;
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(10)).timeout(Duration::from_millis(50)));
    // One record holds its subtask up for longer than the timeout, with barriers behind it.
    let out = env
        .generate(Some(count), |i| (i % 5, i))
        .uid("numbers")
        .map(|e| {
            if e.1 == 5_000 {
                std::thread::sleep(Duration::from_millis(300));
            }
            e
        })
        .key_by(|e: &(u64, u64)| e.0)
        .sum(|e| &mut e.1)
        .uid("sums")
        .collect();
    let result = env.execute("slow").unwrap().wait().unwrap();
    let abandoned = result.metrics.total(eddy::runtime::metrics::names::CHECKPOINTS, "abandoned");
    assert!(abandoned >= 1, "{abandoned} checkpoints abandoned");
    let sums = final_sums(out.take());
    let expected: BTreeMap<u64, u64> = (0..5).map(|k| (k, (0..count).filter(|i| i % 5 == k).sum())).collect();
    assert_eq!(sums, expected);
}

/// Every key's largest running sum: its total.
fn final_sums(out: Vec<(u64, u64)>) -> BTreeMap<u64, u64> {
    let mut sums = BTreeMap::new();
    for (key, sum) in out {
        let s = sums.entry(key).or_insert(0);
        *s = (*s).max(sum);
    }
    sums
}
