//! Split sources (`from_source`) end to end: per-split watermarks inside the source, dead
//! letters from the source, notifications of completed checkpoints, per-split metrics, and
//! splits that follow their owner through stop-and-restore at other parallelisms.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eddy::core::{SplitAssignment, SplitId};
use eddy::prelude::*;

/// Event time advances this much per index within a split.
const STEP_MS: i64 = 10;

/// `splits` sequences `0..per_split`; value `(split, i)` at time `i * STEP_MS`. Split `s` is
/// owned by subtask `s % parallelism`. Index `i` with `i % 13 == 12` is "undeserialisable"
/// when `rejects` is set. Split `s` emits `1 + s * burst` records per poll, so splits run at
/// very different speeds.
#[derive(Clone)]
struct Sequences {
    splits: usize,
    per_split: u64,
    burst: u64,
    rejects: bool,
    pause: Duration,
    notified: Arc<Mutex<Vec<u64>>>,
}

struct Reader {
    spec: Sequences,
    /// Split → (its handle, next index).
    positions: BTreeMap<usize, (Option<SplitId>, u64)>,
    snapshotted: BTreeSet<u64>,
}

fn encode(split: usize, next: u64) -> Vec<u8> {
    format!("{split}:{next}").into_bytes()
}

fn decode(bytes: &[u8]) -> (usize, u64) {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let (split, next) = text.split_once(':').unwrap();
    (split.parse().unwrap(), next.parse().unwrap())
}

impl SplitSource<(usize, u64)> for Sequences {
    type Reader = Reader;

    fn open(&self, context: &ReaderContext) -> Result<Reader, BoxError> {
        let owned = |s: &usize| s % context.parallelism == context.subtask;
        let restored: BTreeMap<usize, u64> =
            context.restored.iter().flatten().map(|b| decode(b)).filter(|(s, _)| owned(s)).collect();
        let positions =
            (0..self.splits).filter(owned).map(|s| (s, (None, restored.get(&s).copied().unwrap_or(0)))).collect();
        Ok(Reader { spec: self.clone(), positions, snapshotted: BTreeSet::new() })
    }

    fn split_assignment(&self) -> SplitAssignment {
        SplitAssignment::Owned
    }
}

impl SourceReader<(usize, u64)> for Reader {
    fn poll(&mut self, out: &mut SourceOutput<(usize, u64)>, _max: usize) -> Result<SourcePoll, BoxError> {
        std::thread::sleep(self.spec.pause);
        let mut open = false;
        for (&split, (id, next)) in self.positions.iter_mut() {
            let id = *id.get_or_insert_with(|| out.add_split(format!("seq-{split}")));
            let end = (*next + 1 + split as u64 * self.spec.burst).min(self.spec.per_split);
            for i in *next..end {
                let timestamp = i as i64 * STEP_MS;
                if self.spec.rejects && i % 13 == 12 {
                    let raw = RawRecord {
                        split: format!("seq-{split}"),
                        position: i.to_string(),
                        timestamp,
                        key: None,
                        payload: b"garbage".to_vec(),
                    };
                    out.reject(raw, format!("index {i} is a multiple of 13, minus one"));
                } else {
                    out.collect_in(id, (split, i), timestamp);
                }
                out.add_bytes(id, 8);
            }
            *next = end;
            out.report_lag(id, Some(self.spec.per_split - end), None);
            if end == self.spec.per_split {
                out.finish_split(id);
            } else {
                open = true;
            }
        }
        Ok(if open { SourcePoll::Ready } else { SourcePoll::Done })
    }

    fn snapshot_splits(&mut self, checkpoint: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        self.snapshotted.insert(checkpoint);
        Ok(Some(self.positions.iter().map(|(&s, &(_, next))| encode(s, next)).collect()))
    }

    fn checkpoint_complete(&mut self, checkpoint: u64) -> Result<(), BoxError> {
        assert!(self.snapshotted.contains(&checkpoint), "told about checkpoint {checkpoint} it never snapshotted");
        self.spec.notified.lock().unwrap().push(checkpoint);
        Ok(())
    }
}

fn sequences(splits: usize, per_split: u64) -> Sequences {
    Sequences { splits, per_split, burst: 0, rejects: false, pause: Duration::ZERO, notified: Arc::default() }
}

#[test]
fn per_split_watermarks_keep_a_slow_split_on_time() {
    // Split 1 runs 50 times faster than split 0 in event time. A watermark from the
    // subtask's highest timestamp would make most of split 0 late; per split, none is.
    let spec = Sequences { burst: 50, ..sequences(2, 2_000) };
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let counts = env
        .from_source(spec, WatermarkStrategy::monotonous(), "seq")
        .key_by(|v: &(usize, u64)| v.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(1_000)))
        .aggregate_with(Count, |split, window, n| (*split, window.start, n))
        .collect();
    let result = env.execute("per-split watermarks").unwrap().wait().unwrap();
    assert_eq!(result.metrics.total_all("late_records_dropped"), 0);
    let mut got = counts.take();
    got.sort();
    let expected: Vec<_> = (0..2).flat_map(|s| (0..20).map(move |w| (s, w * 1_000, 100))).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_subtask_watermark_from_its_maximum_would_drop_records() {
    // The same job with the watermark generated after the source, over the subtask's
    // interleaved records: the control experiment for the test above.
    let spec = Sequences { burst: 50, ..sequences(2, 2_000) };
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let _ = env
        .from_source(spec, WatermarkStrategy::no_watermarks(), "seq")
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::monotonous().with_interval(Duration::ZERO),
            |v: &(usize, u64)| v.1 as i64 * STEP_MS,
        )
        .key_by(|v: &(usize, u64)| v.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(1_000)))
        .aggregate_with(Count, |split, window, n| (*split, window.start, n))
        .collect();
    let result = env.execute("subtask watermarks").unwrap().wait().unwrap();
    assert!(result.metrics.total_all("late_records_dropped") > 0);
}

#[test]
fn undeserialisable_records_become_dead_letters_with_their_position() {
    let spec = Sequences { rejects: true, ..sequences(3, 100) };
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let values = env.from_source(spec, WatermarkStrategy::no_watermarks(), "seq");
    let dead = values.dead_letters::<RawRecord>().collect();
    let good = values.collect();
    let result = env.execute("dead letters").unwrap().wait().unwrap();
    let dead = dead.take();
    let expected: BTreeSet<(String, String)> =
        (0..3).flat_map(|s| (12..100).step_by(13).map(move |i| (format!("seq-{s}"), i.to_string()))).collect();
    let got: BTreeSet<_> = dead.iter().map(|d| (d.input.split.clone(), d.input.position.clone())).collect();
    assert_eq!(got, expected);
    assert!(dead.iter().all(|d| d.input.payload == b"garbage" && d.error.contains("multiple of 13")));
    assert_eq!(good.take().len() + dead.len(), 300);
    assert_eq!(result.metrics.total("Source: seq", "dead_letters"), dead.len() as u64);
}

#[test]
fn per_split_metrics_count_records_bytes_and_lag() {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let _ = env.from_source(sequences(3, 50), WatermarkStrategy::no_watermarks(), "seq").collect();
    let metrics = env.execute("metrics").unwrap().wait().unwrap().metrics;
    for split in 0..3 {
        assert_eq!(metrics.total("Source: seq", &format!("seq-{split}.records_in")), 50);
        assert_eq!(metrics.total("Source: seq", &format!("seq-{split}.bytes_in")), 400);
        assert_eq!(metrics.total("Source: seq", &format!("seq-{split}.lag_records")), 0);
    }
    assert_eq!(metrics.total("Source: seq", "records_in"), 150);
}

#[test]
fn readers_hear_of_completed_checkpoints() {
    let spec = Sequences { pause: Duration::from_millis(2), ..sequences(2, 400) };
    let notified = spec.notified.clone();
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(30)));
    let _ = env.from_source(spec, WatermarkStrategy::no_watermarks(), "seq").uid("seq").collect();
    let result = env.execute("notifications").unwrap().wait().unwrap();
    let notified = notified.lock().unwrap().clone();
    assert!(result.checkpoints >= 3, "the job took {} checkpoints", result.checkpoints);
    assert!(!notified.is_empty(), "no reader was told of a completed checkpoint");
    // Each reader hears of checkpoints in increasing order (the two readers interleave).
    let distinct: BTreeSet<_> = notified.iter().collect();
    assert!(distinct.len() * 2 >= notified.len());
}

/// Runs the job at `parallelism` from `restore` until `stop_after` (then stops it with a
/// savepoint, returned) or to the end; returns what it emitted.
fn run_once(
    spec: &Sequences,
    parallelism: usize,
    restore: Option<&std::path::Path>,
    stop_after: Option<Duration>,
    dir: &std::path::Path,
) -> (Vec<(usize, u64)>, Option<std::path::PathBuf>) {
    let env = StreamEnvironment::new();
    env.set_parallelism(parallelism);
    env.enable_checkpointing(CheckpointConfig::on_request());
    if let Some(path) = restore {
        env.restore_from(path);
    }
    let out = env.from_source(spec.clone(), WatermarkStrategy::no_watermarks(), "seq").uid("seq").collect();
    let job = env.execute("rescale").unwrap();
    let savepoint = stop_after.map(|after| {
        std::thread::sleep(after);
        job.stop_with_savepoint(dir.join(format!("sp-{parallelism}")), false).unwrap()
    });
    job.wait().unwrap();
    (out.take(), savepoint)
}

#[test]
fn owned_splits_follow_their_owner_through_restores_at_2_3_and_1() {
    let spec = Sequences { pause: Duration::from_millis(1), ..sequences(5, 3_000) };
    let dir = tempfile::tempdir().unwrap();
    let (mut all, first) = run_once(&spec, 2, None, Some(Duration::from_millis(150)), dir.path());
    let (more, second) = run_once(&spec, 3, first.as_deref(), Some(Duration::from_millis(150)), dir.path());
    assert!(!more.is_empty(), "the second run read nothing: the test stopped too late");
    all.extend(more);
    let (rest, _) = run_once(&spec, 1, second.as_deref(), None, dir.path());
    assert!(!rest.is_empty(), "the last run read nothing: the test stopped too late");
    all.extend(rest);
    let total = all.len();
    let distinct: BTreeSet<_> = all.into_iter().collect();
    assert_eq!(distinct.len(), total, "a record was read twice");
    let expected: BTreeSet<_> = (0..5).flat_map(|s| (0..3_000).map(move |i| (s, i))).collect();
    assert_eq!(distinct, expected);
}
