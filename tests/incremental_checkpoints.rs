//! Incremental checkpoints end to end: a job whose state changes a little between
//! checkpoints writes checkpoints that take most of it over from earlier ones, and through
//! failures, kills and restores at other parallelisms (2 → 3 → 1) it ends with the state of
//! a run without any; its savepoints stay full.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy::prelude::*;
use eddy::runtime::metrics::names;
use eddy_state::checkpoint::{CheckpointDirectory, SnapshotReader};

/// The first events each bring a new key, over every key group; the rest only touch the
/// keys of one key group, so once they run every checkpoint after the next one takes the
/// other key groups' chunks over from earlier checkpoints.
const NEW_KEYS: u64 = 3_000;
/// Events per job.
const EVENTS: u64 = 60_000;

/// The keys of key group 0 (of the default 128) among `0..NEW_KEYS`.
fn hot_keys() -> &'static [u64] {
    static HOT: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
    HOT.get_or_init(|| {
        let mut hasher = eddy::core::key::KeyHasher::default();
        (0..NEW_KEYS).filter(|k| eddy::core::key::key_group(hasher.hash(k).unwrap(), 128) == 0).collect()
    })
}

/// Event `i`'s key.
fn key(i: u64) -> u64 {
    match i.checked_sub(NEW_KEYS) {
        None => i,
        Some(j) => hot_keys()[(j / 10) as usize % hot_keys().len()],
    }
}

/// Event `i`'s key when the changes after the first keys are spread over every key
/// group: 300 keys of the 3000, one in ten.
fn spread_key(i: u64) -> u64 {
    match i.checked_sub(NEW_KEYS) {
        None => i,
        Some(j) => (j * 37) % 300 * 10,
    }
}

/// Every key's count after all events, computed sequentially.
fn model() -> BTreeMap<u64, u64> {
    model_of(key)
}

/// Every key's count after all events with keys `key`, computed sequentially.
fn model_of(key: fn(u64) -> u64) -> BTreeMap<u64, u64> {
    let mut counts = BTreeMap::new();
    for i in 0..EVENTS {
        *counts.entry(key(i)).or_default() += 1;
    }
    counts
}

/// The job: a throttled generator (so checkpoints happen while it runs) → per key a running
/// count in value state, emitted at each event; `fail_at` panics once in the map at that event.
fn build(env: &StreamEnvironment, fail_at: Option<u64>) -> Collected<(u64, u64)> {
    build_paced(env, fail_at, 100)
}

/// The job, its generator pausing 1 ms every `pace` events.
fn build_paced(env: &StreamEnvironment, fail_at: Option<u64>, pace: u64) -> Collected<(u64, u64)> {
    build_keyed(env, fail_at, pace, key)
}

/// The job with keys `key`.
fn build_keyed(env: &StreamEnvironment, fail_at: Option<u64>, pace: u64, key: fn(u64) -> u64) -> Collected<(u64, u64)> {
    let failed = Arc::new(AtomicBool::new(false));
    env.generate(Some(EVENTS), move |i| {
        if i % pace == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        i
    })
    .uid("events")
    .map(move |i| {
        if fail_at == Some(i) && !failed.swap(true, Ordering::SeqCst) {
            panic!("injected failure at event {i}");
        }
        i
    })
    .key_by(move |i: &u64| key(*i))
    .process(Counter(key))
    .uid("counts")
    .collect()
}

/// Each key's running count in value state (the events' keys are its function's).
#[derive(Clone)]
struct Counter(fn(u64) -> u64);

impl KeyedProcessFunction<u64, u64, (u64, u64)> for Counter {
    fn process_element(&mut self, i: &u64, ctx: &mut KeyedContext<'_, u64, (u64, u64)>) -> Result<(), BoxError> {
        let state = ctx.state().value_state(&ValueStateDescriptor::<u64>::new("count"))?;
        let n = state.value()?.unwrap_or(0) + 1;
        state.update(n)?;
        ctx.collect(((self.0)(*i), n));
        Ok(())
    }
}

/// The highest count emitted per key (output may repeat after a restore; state may not).
fn final_counts(out: Vec<(u64, u64)>) -> BTreeMap<u64, u64> {
    let mut last = BTreeMap::new();
    for (key, n) in out {
        let at = last.entry(key).or_insert(0);
        *at = n.max(*at);
    }
    last
}

/// Incremental checkpoints every 20 ms into `dir`.
fn incremental(dir: &Path) -> CheckpointConfig {
    CheckpointConfig::every(Duration::from_millis(20)).dir(dir).retain(2).incremental(true)
}

/// How many checkpoints in `dir` are incremental, and how many there are.
fn incremental_checkpoints(dir: &Path) -> (usize, usize) {
    let checkpoints = CheckpointDirectory::open(dir).unwrap();
    let ids = checkpoints.ids().unwrap();
    let incremental = ids
        .iter()
        .filter_map(|id| SnapshotReader::open(checkpoints.path_for(*id)).ok())
        .filter(|reader| reader.metadata().is_incremental())
        .count();
    (incremental, ids.len())
}

/// Whether the snapshot a restore from `dir` would use is an incremental checkpoint.
fn restores_incremental(dir: &Path) -> bool {
    let (reader, _) = CheckpointDirectory::open(dir).unwrap().latest_valid().unwrap().expect("a checkpoint");
    reader.metadata().is_incremental()
}

#[test]
fn failures_with_incremental_checkpoints_leave_the_state_of_a_failure_free_run() {
    for parallelism in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        let env = StreamEnvironment::new();
        env.set_parallelism(parallelism);
        env.enable_checkpointing(incremental(dir.path()));
        env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 3, delay: Duration::ZERO });
        let out = build(&env, Some(EVENTS * 2 / 3));
        let result = env.execute("incremental").unwrap().wait().unwrap();
        assert_eq!(result.restarts, 1, "p={parallelism}");
        // Most checkpoints wrote only the hot key group's chunks: far less than full ones.
        let counter = |name| result.metrics.total(names::CHECKPOINTS, name);
        let (written, last) = (counter(names::WRITTEN_STATE_BYTES), counter(names::LAST_CHECKPOINT_BYTES));
        let completed = counter(names::CHECKPOINTS_COMPLETED);
        assert!(
            written > 0 && written < completed * last / 2,
            "p={parallelism}: {written} B in {completed} of {last} B"
        );
        assert_eq!(final_counts(out.take()), model(), "p={parallelism}");
        let (incremental, all) = incremental_checkpoints(dir.path());
        assert!(incremental > 0, "p={parallelism}: none of {all} checkpoints kept is incremental");
    }
}

#[test]
fn changes_spread_over_every_key_group_are_written_as_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(incremental(dir.path()));
    env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 3, delay: Duration::ZERO });
    let out = build_keyed(&env, Some(EVENTS / 2), 100, spread_key);
    let result = env.execute("spread").unwrap().wait().unwrap();
    assert_eq!(result.restarts, 1);
    assert_eq!(final_counts(out.take()), model_of(spread_key));
    // At most one key in ten changes between checkpoints, in every key group: chunks would
    // all be rewritten, deltas are not. (A restart's first checkpoint is full.)
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    let with_deltas = checkpoints.ids().unwrap().into_iter().any(|id| {
        let reader = SnapshotReader::open(checkpoints.path_for(id)).unwrap();
        reader.verify().unwrap();
        let metadata = reader.metadata();
        let deltas = metadata.operators.iter().flat_map(|op| &op.parts).any(|part| !part.deltas.is_empty());
        deltas && metadata.added_bytes() < metadata.bytes() / 3
    });
    assert!(with_deltas, "no checkpoint kept has deltas adding less than a third of its state");
}

/// Runs the job at `parallelism` from `restore` until the newest checkpoint in `dir` is
/// incremental, then kills it; returns what it emitted.
fn run_and_kill(parallelism: usize, dir: &Path, restore: Option<&Path>) -> Vec<(u64, u64)> {
    let env = StreamEnvironment::new();
    env.set_parallelism(parallelism);
    env.enable_checkpointing(incremental(dir));
    if let Some(path) = restore {
        env.restore_from(path);
    }
    let out = build(&env, None);
    let handle = env.execute("killed").unwrap();
    let started = Instant::now();
    let directory = CheckpointDirectory::open(dir).unwrap();
    let first = directory.newest_id().unwrap();
    let newest_is_incremental = || {
        let newest = directory.newest_id().unwrap();
        newest > first
            && SnapshotReader::open(directory.path_for(newest)).is_ok_and(|reader| reader.metadata().is_incremental())
    };
    while !newest_is_incremental() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(2));
    }
    handle.cancel();
    let _ = handle.wait();
    out.take()
}

#[test]
fn killed_and_restored_from_incremental_checkpoints_at_2_then_3_then_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = run_and_kill(2, dir.path(), None);
    assert!(restores_incremental(dir.path()), "the p=2 run left no incremental checkpoint to restore");
    out.extend(run_and_kill(3, dir.path(), Some(dir.path())));
    assert!(restores_incremental(dir.path()), "the p=3 run left no incremental checkpoint to restore");
    // The last run restores the newest checkpoint of the p=3 run and finishes.
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    env.enable_checkpointing(incremental(dir.path()));
    env.restore_from(dir.path());
    let last = build(&env, None);
    env.execute("finish").unwrap().wait().unwrap();
    out.extend(last.take());
    assert_eq!(final_counts(out), model());
}

#[test]
fn savepoints_of_a_job_with_incremental_checkpoints_are_full() {
    let dir = tempfile::tempdir().unwrap();
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(incremental(&dir.path().join("chk")));
    // Paced for at least 1.2 s, so the savepoint comes before the end.
    let out = build_paced(&env, None, 50);
    let handle = env.execute("savepoints").unwrap();
    let directory = CheckpointDirectory::open(dir.path().join("chk")).unwrap();
    let started = Instant::now();
    while directory.newest_id().unwrap() < 3 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let savepoint = handle.stop_with_savepoint(dir.path().join("savepoint"), false).unwrap();
    handle.wait().unwrap();
    let reader = SnapshotReader::open(&savepoint).unwrap();
    reader.verify().unwrap();
    assert!(!reader.metadata().is_incremental());
    assert_eq!(reader.metadata().added_bytes(), reader.metadata().bytes());
    drop(reader);
    // Self-contained: the savepoint restores with the checkpoint directory gone.
    std::fs::remove_dir_all(dir.path().join("chk")).unwrap();
    let env = StreamEnvironment::new();
    env.set_parallelism(3);
    env.restore_from(&savepoint);
    let rest = build(&env, None);
    env.execute("restored").unwrap().wait().unwrap();
    let mut all = out.take();
    all.extend(rest.take());
    assert_eq!(final_counts(all), model());
}
