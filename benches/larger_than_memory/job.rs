//! Jobs whose window state is as large as one likes: every key's accumulator is a sketch of
//! `bytes` bytes, and every key's window (a tumbling window, or a session) stays open until
//! the input ends, so the live state is `keys × bytes`. Shared by
//! `benches/larger_than_memory.rs` (the big run, with peak memory and disk measured) and
//! `tests/larger_than_memory.rs` (a small run, heap against sled against a model). Included
//! with `#[path]`; each uses what it needs.

#![allow(dead_code)]

use std::time::Duration;

use eddy::prelude::*;

/// Which window the job keeps its state in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Windows {
    /// One tumbling window over the whole input (two stages: pre-aggregation, keyed merge).
    Tumbling,
    /// One session per key, each spanning the whole input (merged record by record).
    Session,
}

/// What the job runs over.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Distinct keys.
    pub keys: u64,
    /// Records per key.
    pub per_key: u64,
    /// Bytes of each key's accumulator.
    pub bytes: usize,
    pub windows: Windows,
}

impl Spec {
    /// All records.
    pub fn records(&self) -> u64 {
        self.keys * self.per_key
    }
}

/// Record `i`: key `i % keys`, at `i` ms (so a key's records are `keys` ms apart), value `i`.
pub fn record(i: u64, keys: u64) -> (u64, i64, u64) {
    (i % keys, i as i64, i)
}

/// A key's sketch: how many records it saw, and `bytes` bytes each record's value is mixed
/// into (8 of them per record, XORed in: the order of records does not matter).
#[derive(Clone)]
pub struct Sketch {
    pub bytes: usize,
}

/// Mixes `value` into `sketch`.
pub fn mix(sketch: &mut [u8], value: u64) {
    let mixed = value.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let at = (value as usize).wrapping_mul(8) % sketch.len();
    for (i, byte) in mixed.to_le_bytes().into_iter().enumerate() {
        sketch[(at + i) % sketch.len()] ^= byte;
    }
}

/// A sketch as one number: FNV-1a over its bytes.
pub fn digest(sketch: &[u8]) -> u64 {
    sketch.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

impl AggregateFunction<(u64, i64, u64)> for Sketch {
    type Acc = (u64, Vec<u8>);
    type Out = (u64, u64);
    fn create_accumulator(&self) -> (u64, Vec<u8>) {
        (0, vec![0; self.bytes])
    }
    fn add(&self, acc: &mut (u64, Vec<u8>), record: (u64, i64, u64)) {
        acc.0 += 1;
        mix(&mut acc.1, record.2);
    }
    fn get_result(&self, acc: (u64, Vec<u8>)) -> (u64, u64) {
        (acc.0, digest(&acc.1))
    }
    fn merge(&self, acc: &mut (u64, Vec<u8>), other: (u64, Vec<u8>)) {
        acc.0 += other.0;
        acc.1.iter_mut().zip(other.1).for_each(|(a, b)| *a ^= b);
    }
}

/// One result: a key, its window, its record count and its sketch's digest.
pub type Result = (u64, i64, i64, u64, u64);

/// The job: `spec`'s records, keyed, into its windows; results into `sink`.
pub fn build(env: &StreamEnvironment, spec: Spec) -> DataStream<Result> {
    let keys = spec.keys;
    let events = env
        .generate(Some(spec.records()), move |i| record(i, keys))
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |r: &(u64, i64, u64)| r.1)
        .set_parallelism(1);
    let keyed = events.key_by(|r: &(u64, i64, u64)| r.0);
    let sketch = Sketch { bytes: spec.bytes };
    let to_result =
        |key: &u64, window: TimeWindow, (count, digest): (u64, u64)| (*key, window.start, window.end, count, digest);
    match spec.windows {
        Windows::Tumbling => {
            // One window for everything.
            let span = Duration::from_millis(spec.records().max(1));
            keyed.window(TumblingEventTimeWindows::of(span)).aggregate_with(sketch, to_result)
        }
        Windows::Session => {
            // A key's records are `keys` ms apart: one session each.
            let gap = Duration::from_millis(keys + 1);
            keyed.window(EventTimeSessionWindows::with_gap(gap)).aggregate_with(sketch, to_result)
        }
    }
}

/// What the job emits, computed directly, sorted.
pub fn model(spec: Spec) -> Vec<Result> {
    let mut sketches: Vec<(u64, Vec<u8>, i64, i64)> =
        (0..spec.keys).map(|_| (0, vec![0; spec.bytes], i64::MAX, 0)).collect();
    for i in 0..spec.records() {
        let (key, ts, value) = record(i, spec.keys);
        let entry = &mut sketches[key as usize];
        entry.0 += 1;
        mix(&mut entry.1, value);
        entry.2 = entry.2.min(ts);
        entry.3 = entry.3.max(ts);
    }
    let mut out: Vec<Result> = sketches
        .into_iter()
        .enumerate()
        .map(|(key, (count, sketch, first, last))| {
            let (start, end) = match spec.windows {
                Windows::Tumbling => (0, spec.records().max(1) as i64),
                Windows::Session => (first, last + spec.keys as i64 + 1),
            };
            (key as u64, start, end, count, digest(&sketch))
        })
        .collect();
    out.sort_unstable();
    out
}
