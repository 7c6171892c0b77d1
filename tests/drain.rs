//! `JobHandle::stop` drains a running job: the sources stop, every window holding records
//! fires, every sink flushes, and with checkpointing a final checkpoint commits the
//! transactional sinks — at every parallelism, with and without checkpoints. The test
//! compares the windows the job emitted with windows computed plainly from every record the
//! sources emitted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eddy::prelude::*;

const WINDOW_MS: i64 = 100;
const KEYS: u64 = 7;
const LIMIT: Duration = Duration::from_secs(60);

/// A sink that holds what it is given until it is flushed: only a flush makes records visible.
struct Buffered {
    pending: Vec<u64>,
    visible: Arc<Mutex<Vec<u64>>>,
}

impl Sink<u64> for Buffered {
    fn write(&mut self, value: u64, _: i64) -> Result<(), BoxError> {
        self.pending.push(value);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        self.visible.lock().unwrap().append(&mut self.pending);
        Ok(())
    }
}

/// Counts per (key, window start) of the records `0..`, computed plainly.
fn windows_model(records: &[u64]) -> BTreeMap<(u64, i64), u64> {
    let mut counts = BTreeMap::new();
    for &i in records {
        let ts = i as i64;
        *counts.entry((i % KEYS, ts - ts.rem_euclid(WINDOW_MS))).or_insert(0) += 1;
    }
    counts
}

fn drained(parallelism: usize, checkpointing: bool) {
    let env = StreamEnvironment::new();
    env.set_parallelism(parallelism);
    if checkpointing {
        env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(40)));
    }
    // Unbounded and slowed down a little, so the job is mid-stream when it is stopped; event
    // time is the record's index, so windows keep opening and closing.
    let records = env
        .generate(None, |i| i)
        .uid("numbers")
        .map(|i: u64| {
            if i % 64 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            i
        })
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(30)),
            |i| *i as i64,
        );
    let emitted = records.collect();
    let windows = records
        .key_by(|i: &u64| i % KEYS)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(WINDOW_MS as u64)))
        .aggregate_with(Count, |key, window, n| (*key, window.start, n))
        .uid("windows")
        .collect();
    let visible = Arc::new(Mutex::new(Vec::new()));
    let target = visible.clone();
    records.add_sink("buffered", move |_, _| Ok(Buffered { pending: Vec::new(), visible: target.clone() }));

    let handle = env.execute("drained").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(matches!(handle.status(), JobStatus::Running), "{:?}", handle.status());
    handle.stop();
    let start = Instant::now();
    while !handle.is_finished() {
        assert!(start.elapsed() < LIMIT, "the drain hung");
        std::thread::sleep(Duration::from_millis(10));
    }
    let result = handle.wait().unwrap_or_else(|e| panic!("p={parallelism}: the drained job failed: {e}"));

    let mut emitted = emitted.take();
    emitted.sort();
    assert!(emitted.len() > 100, "p={parallelism}: the job ran too briefly to tell anything ({})", emitted.len());
    let mut flushed = std::mem::take(&mut *visible.lock().unwrap());
    flushed.sort();
    assert_eq!(flushed, emitted, "p={parallelism}: every record reached the buffered sink's last flush");
    let got: BTreeMap<(u64, i64), u64> = windows.take().into_iter().map(|(k, s, n)| ((k, s), n)).collect();
    let want = windows_model(&emitted);
    assert_eq!(got.len(), want.len(), "p={parallelism}: one result per window that held records");
    assert_eq!(got, want, "p={parallelism}: every window fired with all its records");
    if checkpointing {
        assert!(result.checkpoints >= 1, "p={parallelism}: the final checkpoint committed the collect sinks");
    }
}

#[test]
fn stop_drains_every_window_and_sink_without_checkpoints() {
    for parallelism in 1..=4 {
        drained(parallelism, false);
    }
}

#[test]
fn stop_drains_and_commits_a_final_checkpoint() {
    for parallelism in 1..=4 {
        drained(parallelism, true);
    }
}

#[test]
fn stopping_an_ended_job_does_nothing() {
    let env = StreamEnvironment::new();
    let out = env.from_collection(vec![1u8, 2, 3]).collect();
    let handle = env.execute("short").unwrap();
    let result = handle.clone().wait().unwrap();
    handle.stop();
    assert_eq!(result.name, "short");
    assert_eq!(out.take().len(), 3);
    assert!(matches!(handle.status(), JobStatus::Finished));
}
