//! State access throughput: ops/s of value get/update, map put and list append on the heap
//! and sled backends, each op preceded by `set_current_key` as an operator does per record.
//!
//! Run: `cargo bench -p eddy-state --bench state_ops [-- OPS]` (OPS per measurement on the
//! heap backend, default 1,000,000; sled runs a fifth of that). Keys cycle through 10,000
//! distinct `u64`s over 128 key groups.

use std::hint::black_box;
use std::time::Instant;

use eddy_state::{
    HeapBackend, KeyedStateStore, ListStateDescriptor, MapStateDescriptor, SledBackend, StateBackend,
    ValueStateDescriptor,
};

const KEYS: u64 = 10_000;
const MAX_PARALLELISM: usize = 128;

/// Runs `op` `ops` times and prints its rate.
fn measure(backend: &str, name: &str, ops: u64, mut op: impl FnMut(u64)) {
    let start = Instant::now();
    for i in 0..ops {
        op(i);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{backend:<5} {name:<28} {:>12.0} ops/s {:>9.0} ns/op  ({ops} ops in {secs:.2} s)",
        ops as f64 / secs,
        secs * 1e9 / ops as f64
    );
}

/// Every measurement on one store.
fn run<B: StateBackend>(label: &str, store: KeyedStateStore<B>, ops: u64) {
    let value = store.value_state(&ValueStateDescriptor::<u64>::new("value")).unwrap();
    let map = store.map_state(&MapStateDescriptor::<u32, u64>::new("map")).unwrap();
    let list = store.list_state(&ListStateDescriptor::<u64>::new("list")).unwrap();
    let key = |i: u64| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % KEYS;

    measure(label, "value update", ops, |i| {
        store.set_current_key(&key(i)).unwrap();
        value.update(i).unwrap();
    });
    measure(label, "value get", ops, |i| {
        store.set_current_key(&key(i)).unwrap();
        black_box(value.value().unwrap());
    });
    measure(label, "value get+update (count)", ops, |i| {
        store.set_current_key(&key(i)).unwrap();
        value.update(value.value().unwrap().unwrap_or(0) + 1).unwrap();
    });
    measure(label, "map put (16 per key)", ops, |i| {
        store.set_current_key(&key(i)).unwrap();
        map.put((i % 16) as u32, i).unwrap();
    });
    measure(label, "map get", ops, |i| {
        store.set_current_key(&key(i)).unwrap();
        black_box(map.get(&((i % 16) as u32)).unwrap());
    });
    measure(label, "list append", ops, |i| {
        store.set_current_key(&key(i)).unwrap();
        list.add(i).unwrap();
    });
}

fn main() {
    // `cargo bench` passes `--bench`; the first plain number is the op count.
    let ops: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| info.lines().find(|l| l.starts_with("model name")).map(|l| l.to_string()))
        .and_then(|l| l.split(':').nth(1).map(|m| m.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("eddy-state state_ops: {cpu}, {cores} cores; {KEYS} keys, max_parallelism {MAX_PARALLELISM}");
    println!("command: cargo bench -p eddy-state --bench state_ops -- {ops}");

    run("heap", KeyedStateStore::new(HeapBackend::new(MAX_PARALLELISM).unwrap()), ops);
    let dir = std::env::temp_dir().join(format!("eddy-state-bench-{}", std::process::id()));
    let sled = SledBackend::open(&dir, MAX_PARALLELISM).unwrap();
    run("sled", KeyedStateStore::new(sled), ops / 5);
    let _ = std::fs::remove_dir_all(&dir);
}
