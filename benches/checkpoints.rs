//! Checkpoint costs: snapshot duration and size for keyed state of 1 M and 10 M keys, restore
//! time, and the pause of a stop-with-savepoint plus a restore at another parallelism; then
//! what an incremental checkpoint writes when 1 % of the keys changed since the last one.
//! (Throughput with 1 s checkpoints against none is in `benches/word_count.rs`.)
//!
//! ```text
//! cargo bench --bench checkpoints                    # 1 M and 10 M keys
//! CK_KEYS=1e5,1e6 cargo bench --bench checkpoints    # other state sizes
//! CK_KEYS= CK_INCREMENTAL=1e6 cargo bench --bench checkpoints   # only the incremental part
//! ```
//!
//! The job keeps a running sum per key (`key_by(k).sum`) over an unbounded generator that
//! cycles through the keys, so the state holds every key once the first cycle is done.
//!
//! The incremental part (`CK_INCREMENTAL`, default 1e6,1e7 keys) writes checkpoints with
//! the checkpoint storage directly: a full one, then three intervals in which 1 % of the
//! keys change, each written both incrementally on top of the previous checkpoint and in
//! full, timed (best of three; writing only: the subtasks' copy of their state is the same
//! for both). The
//! changed keys are either spread over every key group (`spread`: keys `k` with
//! `k % 100 == t`) or in one key group (`one key group`: about 1/128 of the keys).
//!
//! The changelog part (`CK_CHANGELOG`, default the `CK_INCREMENTAL` sizes) measures what a
//! task and the writer do with change tracking: a keyed state store on the heap backend
//! with a `u64` value state per key and change tracking on, a full checkpoint, then
//! `REWRITE_AFTER` (8) intervals in which 1 % of the keys change (spread: `k % 100 == t`). Per
//! interval it times the task's copy at the barrier (`snapshot_changes`) and the writer
//! (`write_changelog`), against the task's full copy (`snapshot_key_groups`) and a full
//! write of the same state (measured at the first interval), and prints the bytes each adds.
//! Each interval also shows the parts materialised (staggered by key group, about
//! 1/`MATERIALIZE_AFTER` of them per checkpoint) besides the deltas.
//!
//! The window part (`CK_WINDOWS`, default the `CK_CHANGELOG` sizes) does the same for a
//! window operator's contents (a namespaced state, which the heap keeps as live values): one
//! long window holding a count per key, then `REWRITE_AFTER` intervals in which 1 % of the
//! keys change. It times the writes with change tracking on and off (two stores, same
//! updates) and, per interval, the task's copy at the barrier of the changed entries against
//! the copy of every entry (`snapshot_key_groups`).

#[path = "common/machine.rs"]
mod machine;
use std::path::Path;
use std::time::{Duration, Instant};

use eddy::prelude::*;

#[path = "../examples/common/allocator.rs"]
mod allocator;

fn main() {
    allocator::return_freed_memory_promptly();
    let sizes = std::env::var("CK_KEYS").unwrap_or_else(|_| "1e6,1e7".into());
    let dir = tempfile::tempdir().expect("temp dir");
    println!("# checkpoints, {}", machine::machine());
    if !sizes.trim().is_empty() {
        println!("| keys | state loaded s | savepoint s | size MB | stop-with-savepoint s | restore (p2→p1) s | pause until records flow again s |");
        println!("|---|---|---|---|---|---|---|");
        for keys in counts(&sizes, "CK_KEYS") {
            measure(keys, &dir.path().join(format!("k{keys}")));
        }
    }
    let incremental = std::env::var("CK_INCREMENTAL").unwrap_or_else(|_| "1e6,1e7".into());
    if !incremental.trim().is_empty() {
        println!();
        println!("| keys | changed keys | interval | full write s | full MB on disk | incremental write s | incremental MB on disk | state bytes added MB of |");
        println!("|---|---|---|---|---|---|---|---|");
        for keys in counts(&incremental, "CK_INCREMENTAL") {
            for spread in [true, false] {
                incremental::measure(keys, spread, &dir.path().join(format!("incremental-{keys}-{spread}")));
            }
        }
    }
    let changelog = std::env::var("CK_CHANGELOG").unwrap_or(incremental);
    if !changelog.trim().is_empty() {
        println!();
        println!("| keys | changed keys | interval | task copy ms | write s | MB on disk | MB added (deltas + materialised) | full: task copy s, write s, MB on disk |");
        println!("|---|---|---|---|---|---|---|---|");
        for keys in counts(&changelog, "CK_CHANGELOG") {
            changelog::measure(keys, &dir.path().join(format!("changelog-{keys}")));
        }
    }
    let windows = std::env::var("CK_WINDOWS").unwrap_or(changelog);
    if !windows.trim().is_empty() {
        println!();
        println!("| window entries | changed | interval | writes ns each, tracking off / on | task copy of the changes ms (entries) | full task copy ms (entries) |");
        println!("|---|---|---|---|---|---|");
        for keys in counts(&windows, "CK_WINDOWS") {
            window_changes::measure(keys);
        }
    }
}

/// A window operator's contents at a barrier: the changed entries against all of them.
mod window_changes {
    use std::time::Instant;

    use eddy_state::checkpoint::REWRITE_AFTER;
    use eddy_state::{HeapBackend, KeyedStateStore, NamespacedState, NamespacedStateDescriptor};

    /// The one window every key's count is in.
    const WINDOW: i64 = 0;

    /// A store and its window state: a count per (window, key).
    type Counts = (KeyedStateStore<HeapBackend>, NamespacedState<i64, u64, u64>);

    /// Adds one to the count of each key `keys` gives, in both stores; the ns per write
    /// with tracking off and on.
    fn count(stores: &[Counts; 2], keys: impl Iterator<Item = u64> + Clone) -> [f64; 2] {
        stores.each_ref().map(|(store, counts)| {
            let started = Instant::now();
            let mut writes = 0;
            for key in keys.clone() {
                counts.update(store, &WINDOW, &key, || 0, |n, _| *n += 1).expect("update");
                writes += 1;
            }
            started.elapsed().as_secs_f64() * 1e9 / writes.max(1) as f64
        })
    }

    pub fn measure(keys: u64) {
        let stores = [false, true].map(|tracked| {
            let store = KeyedStateStore::new(HeapBackend::new(128).expect("backend"));
            if tracked {
                assert!(store.track_changes().expect("tracking"));
            }
            let counts = store.namespaced_state(&NamespacedStateDescriptor::new("counts")).expect("state");
            (store, counts)
        });
        let [off, on] = count(&stores, 0..keys);
        let tracked = &stores[1].0;
        assert!(tracked.snapshot_changes(1, None).expect("cut").is_none(), "the first checkpoint is full");
        println!("| {keys} | {keys} (fill) | 0 | {off:.0} / {on:.0} | full | |");
        for interval in 1..=REWRITE_AFTER {
            let id = interval + 1;
            let changed = (0..keys).filter(|key| key % 100 == interval);
            let [off, on] = count(&stores, changed.clone());
            let started = Instant::now();
            let changes = tracked.snapshot_changes(id, Some(id - 1)).expect("changes").expect("a delta");
            let copy_ms = started.elapsed().as_secs_f64() * 1e3;
            let started = Instant::now();
            let all: usize = tracked.snapshot_key_groups().expect("full").iter().map(|g| g.entries.len()).sum();
            let full_ms = started.elapsed().as_secs_f64() * 1e3;
            println!(
                "| {keys} | {} | {interval} | {off:.0} / {on:.0} | {copy_ms:.1} ({}) | {full_ms:.0} ({all}) |",
                changed.count(),
                changes.changes.len()
            );
        }
    }
}

/// The numbers in a comma-separated list like `1e6,1e7`.
fn counts(list: &str, name: &str) -> Vec<u64> {
    list.split(',')
        .map(|n| n.trim().parse::<f64>().unwrap_or_else(|_| panic!("{name}: numbers like 1e6")) as u64)
        .collect()
}

/// The job: running sums over `keys` keys, at `parallelism`, restoring from `restore`.
fn job(keys: u64, parallelism: usize, restore: Option<&Path>) -> (JobHandle, Duration) {
    let env = StreamEnvironment::new();
    env.set_parallelism(parallelism);
    env.enable_checkpointing(CheckpointConfig::on_request().timeout(Duration::from_secs(3600)));
    if let Some(path) = restore {
        env.restore_from(path);
    }
    env.generate(None, move |i| (i % keys, 1u64))
        .uid("keys")
        .key_by(|e: &(u64, u64)| e.0)
        .sum(|e| &mut e.1)
        .uid("sums")
        .filter(|_| false)
        .map(|e| e.0)
        .print();
    let started = Instant::now();
    let handle = env.execute("checkpoint bench").expect("start");
    (handle, started.elapsed())
}

/// Waits until the task named `task` has taken in `records` records.
fn wait_for(handle: &JobHandle, task: &str, records: u64) {
    while handle.metrics().total(task, "records_in") < records {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn measure(keys: u64, dir: &Path) {
    let started = Instant::now();
    let (handle, _) = job(keys, 2, None);
    // At parallelism 2 the sums run in their own task, fed by a channel.
    wait_for(&handle, "Reduce", keys + keys / 10);
    let loaded = started.elapsed();
    let started = Instant::now();
    let savepoint = handle.savepoint(dir.join("savepoint")).expect("savepoint");
    let savepoint_s = started.elapsed();
    let size = dir_size(&savepoint);
    let stop_started = Instant::now();
    let stopped = handle.stop_with_savepoint(dir.join("stop"), false).expect("stop with savepoint");
    handle.wait().expect("stopped job");
    let stop_s = stop_started.elapsed();
    let (restored, restore_s) = job(keys, 1, Some(&stopped));
    // At parallelism 1 they are chained to the source.
    wait_for(&restored, "Source: Generator", 1);
    let pause = stop_started.elapsed();
    restored.cancel();
    let _ = restored.wait();
    println!(
        "| {keys} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} |",
        loaded.as_secs_f64(),
        savepoint_s.as_secs_f64(),
        size as f64 / 1e6,
        stop_s.as_secs_f64(),
        restore_s.as_secs_f64(),
        pause.as_secs_f64()
    );
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Incremental checkpoints written with the checkpoint storage directly.
mod incremental {
    use std::path::Path;
    use std::time::Instant;

    use eddy_state::checkpoint::{write_incremental, write_snapshot, CheckpointDirectory, SnapshotMetadata};
    use eddy_state::{KeyedEntries, OperatorSnapshot, SnapshotHeader, SnapshotKind};

    /// Key groups, as a job's default max parallelism.
    const KEY_GROUPS: u64 = 128;

    /// A key's key group: a multiplicative hash, spreading consecutive keys like xxh3 does.
    fn key_group(key: u64) -> u16 {
        ((key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % KEY_GROUPS) as u16
    }

    /// One operator holding a sum per key.
    fn operator(sums: &[u64]) -> OperatorSnapshot {
        let entries = sums
            .iter()
            .enumerate()
            .map(|(key, sum)| (key_group(key as u64), (key as u64).to_be_bytes().to_vec(), sum.to_le_bytes().to_vec()))
            .collect();
        OperatorSnapshot {
            uid: "sums".into(),
            name: "Sums".into(),
            parallelism: 2,
            keyed: vec![KeyedEntries { state: "sum".into(), entries }],
            lists: vec![],
        }
    }

    fn header(id: u64) -> SnapshotHeader {
        SnapshotHeader {
            job: "incremental bench".into(),
            id,
            kind: SnapshotKind::Checkpoint,
            created_ms: 0,
            max_parallelism: KEY_GROUPS as usize,
            finished: false,
        }
    }

    /// A full checkpoint, then three intervals of 1 % changed keys, each written
    /// incrementally and in full; prints a row per interval.
    pub fn measure(keys: u64, spread: bool, dir: &Path) {
        let checkpoints = CheckpointDirectory::open(dir.join("incremental")).expect("checkpoint dir");
        let mut sums = vec![1u64; keys as usize];
        let mut base: SnapshotMetadata =
            write_snapshot(&checkpoints.path_for(1), header(1), &[operator(&sums)]).expect("first checkpoint");
        for interval in 1..=3u64 {
            let id = interval + 1;
            let mut changed = 0;
            for (key, sum) in sums.iter_mut().enumerate() {
                let key = key as u64;
                let hit = if spread { key % 100 == interval } else { u64::from(key_group(key)) == interval };
                if hit {
                    *sum += 1;
                    changed += 1;
                }
            }
            let op = [operator(&sums)];
            // Best of three: the machine is shared. The last incremental write is the one kept.
            let mut incremental_s = f64::MAX;
            let mut written = None;
            for attempt in 0..3 {
                let path = checkpoints.path_for(id);
                if attempt > 0 {
                    std::fs::remove_dir_all(&path).expect("remove the previous attempt");
                }
                let started = Instant::now();
                written = Some(write_incremental(&path, header(id), &op, &base).expect("incremental"));
                incremental_s = incremental_s.min(started.elapsed().as_secs_f64());
            }
            let written = written.expect("written");
            let incremental_mb = super::dir_size(&checkpoints.path_for(id)) as f64 / 1e6;
            let (mut full_s, mut full_mb) = (f64::MAX, 0.0);
            for _ in 0..3 {
                let full_dir = dir.join(format!("full-{id}"));
                let started = Instant::now();
                write_snapshot(&full_dir, header(id), &op).expect("full");
                full_s = full_s.min(started.elapsed().as_secs_f64());
                full_mb = super::dir_size(&full_dir) as f64 / 1e6;
                std::fs::remove_dir_all(&full_dir).expect("remove the full copy");
            }
            checkpoints.retain(1).expect("retain");
            let pattern = if spread { "spread" } else { "one key group" };
            println!(
                "| {keys} | {changed} ({pattern}) | {interval} | {full_s:.2} | {full_mb:.1} | {incremental_s:.2} | {incremental_mb:.1} | {:.2} of {:.1} |",
                written.added_bytes() as f64 / 1e6,
                written.bytes() as f64 / 1e6
            );
            base = written;
        }
    }
}

/// Incremental checkpoints from a changelog: the task's copy at the barrier and the writer.
mod changelog {
    use std::path::Path;
    use std::time::Instant;

    use eddy_state::checkpoint::{write_changelog, write_snapshot, CheckpointDirectory, REWRITE_AFTER};
    use eddy_state::{
        HeapBackend, KeyedChange, KeyedEntries, KeyedStateStore, OperatorChanges, OperatorSnapshot, SnapshotHeader,
        SnapshotKind, StateChanges, ValueStateDescriptor,
    };

    /// Key groups, as a job's default max parallelism.
    const KEY_GROUPS: usize = 128;

    fn header(id: u64) -> SnapshotHeader {
        SnapshotHeader {
            job: "changelog bench".into(),
            id,
            kind: SnapshotKind::Checkpoint,
            created_ms: 0,
            max_parallelism: KEY_GROUPS,
            finished: false,
        }
    }

    fn operator(keyed: Vec<KeyedEntries>) -> OperatorSnapshot {
        OperatorSnapshot { uid: "sums".into(), name: "Sums".into(), parallelism: 1, keyed, lists: vec![] }
    }

    /// The store's whole state as the keyed shell hands it over.
    fn full(store: &KeyedStateStore<HeapBackend>) -> Vec<KeyedEntries> {
        let groups = store.snapshot_key_groups().expect("snapshot");
        let entries =
            groups.into_iter().flat_map(|g| g.entries.into_iter().map(move |(k, v)| (g.key_group as u16, k, v)));
        vec![KeyedEntries { state: "sum".into(), entries: entries.collect() }]
    }

    pub fn measure(keys: u64, dir: &Path) {
        let checkpoints = CheckpointDirectory::open(dir).expect("checkpoint dir");
        let store = KeyedStateStore::new(HeapBackend::new(KEY_GROUPS).expect("backend"));
        assert!(store.track_changes().expect("tracking"));
        let sum = store.value_state(&ValueStateDescriptor::<u64>::new("sum")).expect("state");
        let update = |key: u64| {
            store.set_current_key(&key).expect("key");
            sum.update(sum.value().expect("read").unwrap_or(0) + 1).expect("write");
        };
        (0..keys).for_each(update);
        assert!(store.snapshot_changes(1, None).expect("cut").is_none(), "the first checkpoint is full");
        let mut base = write_snapshot(&checkpoints.path_for(1), header(1), &[operator(full(&store))]).expect("full");
        for interval in 1..=REWRITE_AFTER {
            let id = interval + 1;
            let changed = (0..keys).filter(|key| key % 100 == interval).inspect(|key| update(*key)).count();
            let started = Instant::now();
            let changes = store.snapshot_changes(id, Some(id - 1)).expect("changes").expect("a delta");
            let copy_ms = started.elapsed().as_secs_f64() * 1e3;
            let changes: Vec<KeyedChange> = changes
                .changes
                .into_iter()
                .map(|c| KeyedChange {
                    key_group: u16::from_be_bytes([c.key[0], c.key[1]]),
                    key: c.key,
                    value: c.value,
                    before: c.before,
                })
                .collect();
            let changes = OperatorChanges {
                uid: "sums".into(),
                changes: vec![StateChanges { state: "sum".into(), changes }],
                ..Default::default()
            };
            let started = Instant::now();
            let path = checkpoints.path_for(id);
            let written = write_changelog(&path, header(id), &[operator(vec![])], &[changes], &base).expect("write");
            let write_s = started.elapsed().as_secs_f64();
            let on_disk = super::dir_size(&path) as f64 / 1e6;
            let op = &written.operators[0];
            let deltas: u64 =
                op.parts.iter().flat_map(|p| &p.deltas).filter(|d| d.stored_in == id).map(|d| d.bytes).sum();
            let materialised: u64 =
                op.parts.iter().flat_map(|p| &p.chunks).filter(|c| c.stored_in == id).map(|c| c.bytes).sum();
            let full_row = if interval == 1 {
                let started = Instant::now();
                let whole = full(&store);
                let copy_s = started.elapsed().as_secs_f64();
                let full_dir = dir.join("full");
                let started = Instant::now();
                write_snapshot(&full_dir, header(id), &[operator(whole)]).expect("full write");
                let row = format!(
                    "{copy_s:.2}, {:.2}, {:.1}",
                    started.elapsed().as_secs_f64(),
                    super::dir_size(&full_dir) as f64 / 1e6
                );
                std::fs::remove_dir_all(&full_dir).expect("remove the full copy");
                row
            } else {
                "".into()
            };
            checkpoints.retain(1).expect("retain");
            println!(
                "| {keys} | {changed} (spread) | {interval} | {copy_ms:.1} | {write_s:.2} | {on_disk:.1} | {:.2} ({:.2} + {:.2}) of {:.1} | {full_row} |",
                written.added_bytes() as f64 / 1e6,
                deltas as f64 / 1e6,
                materialised as f64 / 1e6,
                written.bytes() as f64 / 1e6
            );
            base = written;
        }
    }
}
