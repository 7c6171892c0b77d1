//! Window state larger than memory: a tumbling window and sessions whose every key keeps a
//! sketch until the input ends, on the heap and on sled, each in a child process so its peak
//! memory (VmHWM) is its own; with the disk the state directory took at most, the records
//! per second, and whether the results equal the heap's.
//!
//! ```text
//! cargo bench --bench larger_than_memory                      # 600,000 keys × 2 KiB sketches
//! LTM_KEYS=100000 cargo bench --bench larger_than_memory      # smaller
//! LTM_CONFIGS=session-sled cargo bench --bench larger_than_memory
//! ```
//!
//! Settings: `LTM_KEYS` (600000), `LTM_PER_KEY` records per key (2), `LTM_BYTES` per sketch
//! (2048), `LTM_CACHE_MB` sled's cache per keyed subtask (32), `LTM_RSS_CAP_MB` the memory
//! the sled runs may use (300; a run above it is marked), `LTM_DIR` where sled's databases go
//! (`target/bench-data/ltm`), `LTM_CONFIGS` a comma-separated subset of
//! `tumbling-heap,tumbling-sled,session-heap,session-sled`.

#[path = "larger_than_memory/job.rs"]
mod job;
#[path = "common/machine.rs"]
mod machine;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eddy::prelude::*;
use job::{Spec, Windows};

#[path = "../examples/common/allocator.rs"]
mod allocator;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    allocator::return_freed_memory_promptly();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1], Path::new(&args[i + 2]));
    }
    let dir = std::env::var("LTM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/ltm"));
    let configs =
        std::env::var("LTM_CONFIGS").unwrap_or_else(|_| "tumbling-heap,tumbling-sled,session-heap,session-sled".into());
    let spec = spec(Windows::Tumbling);
    let cap = setting("LTM_RSS_CAP_MB", 300);
    println!(
        "# larger than memory: {} keys × {} records, {} B sketches ({} MB of live state), sled cache {} MiB; {}",
        spec.keys,
        spec.per_key,
        spec.bytes,
        spec.keys * spec.bytes as u64 / 1_000_000,
        setting("LTM_CACHE_MB", 32),
        machine::machine()
    );
    println!("| config | records | wall s | records/s | peak RSS MB | state dir at most MB | results | = heap |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut heap_digests = std::collections::HashMap::new();
    for config in configs.split(',').map(str::trim) {
        let exe = std::env::current_exe().expect("own path");
        let run = Command::new(exe).args(["--child", config]).arg(&dir).output().expect("run child");
        let report = String::from_utf8_lossy(&run.stdout);
        let fields: Vec<u64> = report.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        if !run.status.success() || fields.len() != 6 {
            println!("| {config} | failed: {} |", String::from_utf8_lossy(&run.stderr).trim());
            continue;
        }
        let [records, millis, rss_kb, disk, results, digest] = fields[..] else { unreachable!() };
        let windows = config.split('-').next().unwrap_or_default();
        let same = if config.ends_with("heap") {
            heap_digests.insert(windows.to_string(), (results, digest));
            "(reference)".to_string()
        } else {
            match heap_digests.get(windows) {
                Some(&expected) => if expected == (results, digest) { "yes" } else { "NO" }.to_string(),
                None => "-".to_string(),
            }
        };
        let rss = rss_kb / 1024;
        let capped = if config.ends_with("sled") {
            format!(" ({} {cap})", if rss <= cap { "≤" } else { "ABOVE" })
        } else {
            String::new()
        };
        println!(
            "| {config} | {records} | {:.1} | {:.0} | {rss}{capped} | {} | {results} | {same} |",
            millis as f64 / 1e3,
            records as f64 / (millis as f64 / 1e3),
            disk / 1_000_000
        );
    }
}

fn spec(windows: Windows) -> Spec {
    Spec {
        keys: setting("LTM_KEYS", 600_000),
        per_key: setting("LTM_PER_KEY", 2),
        bytes: setting("LTM_BYTES", 2048) as usize,
        windows,
    }
}

/// Folds results into a count and an order-independent digest.
struct Digest(Arc<Mutex<(u64, u64)>>);

impl Sink<job::Result> for Digest {
    fn write(&mut self, result: job::Result, _: Timestamp) -> Result<(), BoxError> {
        let mut state = self.0.lock().unwrap();
        state.0 += 1;
        let (key, start, end, count, digest) = result;
        state.1 ^= job::digest(&[key, start as u64, end as u64, count, digest].map(u64::to_le_bytes).concat());
        Ok(())
    }
}

/// The bytes of every file under `dir`, as allocated on disk.
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// Runs one configuration and prints `records millis peak_rss_kb disk_bytes results digest`.
fn child(config: &str, dir: &Path) {
    let windows = if config.starts_with("session") { Windows::Session } else { Windows::Tumbling };
    let spec = spec(windows);
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let state = dir.join(config);
    let _ = std::fs::remove_dir_all(&state);
    if config.ends_with("sled") {
        env.set_state_dir(&state).set_state_cache_size(setting("LTM_CACHE_MB", 32) << 20);
    }
    let digest = Arc::new(Mutex::new((0, 0)));
    let sink = digest.clone();
    job::build(&env, spec).add_sink("Digest", move |_, _| Ok(Digest(sink.clone()))).set_parallelism(1);
    let (done, most) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let watcher = {
        let (state, done, most) = (state.clone(), done.clone(), most.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                most.fetch_max(disk_bytes(&state), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let started = Instant::now();
    env.execute("larger than memory").unwrap().wait().unwrap();
    let millis = started.elapsed().as_millis();
    done.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    let (results, digest) = *digest.lock().unwrap();
    println!("{} {millis} {} {} {results} {digest}", spec.records(), peak_rss_kb(), most.load(Ordering::SeqCst));
}

fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
