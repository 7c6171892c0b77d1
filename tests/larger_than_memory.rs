//! Window state on sled gives the results it gives on the heap: a tumbling window and
//! sessions whose every key keeps a sketch until the input ends run on both backends and
//! match a direct computation, and on sled the state is in the database directory while
//! the job runs. (The big run, with state several times the memory the job may use, is
//! `benches/larger_than_memory.rs`.)

#[path = "../benches/larger_than_memory/job.rs"]
mod job;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eddy::prelude::*;
use job::{Spec, Windows};

/// The bytes of every file under `dir`.
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Runs `spec` at parallelism 2, on sled under `state` if given; returns the sorted results
/// and the most bytes seen under `state` while it ran.
fn run(spec: Spec, state: Option<&Path>) -> (Vec<job::Result>, u64) {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    if let Some(dir) = state {
        env.set_state_dir(dir).set_state_cache_size(1 << 20);
    }
    let out = job::build(&env, spec).collect();
    let (done, most) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let watcher = state.map(|dir| {
        let (dir, done, most) = (dir.to_path_buf(), done.clone(), most.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                most.fetch_max(disk_bytes(&dir), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    });
    env.execute("larger than memory").unwrap().wait().unwrap();
    done.store(true, Ordering::SeqCst);
    if let Some(watcher) = watcher {
        watcher.join().unwrap();
    }
    let mut results = out.take();
    results.sort_unstable();
    (results, most.load(Ordering::SeqCst))
}

fn check(windows: Windows) {
    let spec = Spec { keys: 3_000, per_key: 3, bytes: 512, windows };
    let expected = job::model(spec);
    let dir = tempfile::tempdir().unwrap();
    let (heap, _) = run(spec, None);
    let (sled, on_disk) = run(spec, Some(dir.path()));
    assert_eq!(heap.len(), expected.len());
    assert!(heap == expected, "{windows:?} on the heap differs from the model");
    assert!(sled == expected, "{windows:?} on sled differs from the model");
    // 3,000 sketches of 512 bytes: 1.5 MB of state, in the database directory.
    let state = spec.keys * spec.bytes as u64;
    assert!(on_disk >= state, "{windows:?}: at most {on_disk} bytes under the state directory, {state} of state");
    assert_eq!(disk_bytes(dir.path()), 0, "the databases are removed when the job ends");
}

#[test]
fn a_tumbling_window_on_sled_gives_the_heap_results() {
    check(Windows::Tumbling);
}

#[test]
fn sessions_on_sled_give_the_heap_results() {
    check(Windows::Session);
}
