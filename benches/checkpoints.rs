//! Checkpoint costs: snapshot duration and size for keyed state of 1 M and 10 M keys, restore
//! time, and the pause of a stop-with-savepoint plus a restore at another parallelism.
//! (Throughput with 1 s checkpoints against none is in `benches/word_count.rs`.)
//!
//! ```text
//! cargo bench --bench checkpoints                    # 1 M and 10 M keys
//! CK_KEYS=1e5,1e6 cargo bench --bench checkpoints    # other state sizes
//! ```
//!
//! The job keeps a running sum per key (`key_by(k).sum`) over an unbounded generator that
//! cycles through the keys, so the state holds every key once the first cycle is done.

#[path = "common/machine.rs"]
mod machine;
use std::path::Path;
use std::time::{Duration, Instant};

use eddy::prelude::*;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let sizes = std::env::var("CK_KEYS").unwrap_or_else(|_| "1e6,1e7".into());
    let dir = tempfile::tempdir().expect("temp dir");
    println!("# checkpoints, {}", machine::machine());
    println!("| keys | state loaded s | savepoint s | size MB | stop-with-savepoint s | restore (p2→p1) s | pause until records flow again s |");
    println!("|---|---|---|---|---|---|---|");
    for size in sizes.split(',') {
        let keys = size.trim().parse::<f64>().expect("CK_KEYS: numbers like 1e6") as u64;
        measure(keys, &dir.path().join(format!("k{keys}")));
    }
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
