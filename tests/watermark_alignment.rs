//! Watermark alignment end to end: sources whose event times start far apart, read in
//! parallel. Without alignment the one that is ahead reads everything at once, and whatever
//! follows it holds all of that until the others catch up; with it, it waits. Every test
//! logs what each source subtask (or split) reads, in the order the subtasks read it, and
//! checks the distance from that log, independently of the runtime's own bookkeeping.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eddy::core::SplitId;
use eddy::prelude::*;
use proptest::prelude::*;

/// How far ahead (event time) a source may run before it pauses, in these tests.
const DRIFT: i64 = 1_000;

/// Timestamps a source may read past the bound before it sees that it is above it: its
/// watermark is published every millisecond, and it reads at most about that much (tens of
/// batches of 64 records in a debug build on a loaded machine) in between. The skews are
/// far larger, so a source that did not pause fails the check by a wide margin.
const SLACK: i64 = 20_000;

/// `(who, timestamp)` in the order the sources read them.
type Log = Arc<Mutex<Vec<(usize, i64)>>>;

/// Records counted per `(subtask, window start)`.
type Counts = BTreeMap<(usize, i64), u64>;

/// What a reader was told: `(splits to pause, splits to resume)` by index, call by call.
type Heard = Vec<(Vec<usize>, Vec<usize>)>;

/// The largest lead over the log: for each entry past its reader's first `SLACK` records,
/// how far its timestamp is above the latest timestamp of each other reader that is still
/// reading (one that logged nothing yet counts as the beginning of time).
fn largest_lead(log: &[(usize, i64)], readers: usize) -> i64 {
    let last: Vec<Option<usize>> = (0..readers).map(|r| log.iter().rposition(|e| e.0 == r)).collect();
    let mut latest = vec![None::<i64>; readers];
    let mut read = vec![0i64; readers];
    let mut lead = i64::MIN;
    for (at, &(reader, timestamp)) in log.iter().enumerate() {
        read[reader] += 1;
        latest[reader] = Some(timestamp);
        if read[reader] <= SLACK {
            continue;
        }
        for other in (0..readers).filter(|&o| o != reader && last[o].is_some_and(|l| l > at)) {
            let behind = latest[other].unwrap_or(i64::MIN / 2);
            lead = lead.max(timestamp - behind);
        }
    }
    lead
}

/// The stream of `(subtask, timestamp)`: subtask `s` of `skews.len()` reads `per_subtask`
/// records at `skews[s]`, `skews[s] + 1`, …; logged as read, with event time assigned (and
/// aligned when `aligned`).
fn skewed(
    env: &StreamEnvironment,
    skews: &[i64],
    per_subtask: u64,
    aligned: bool,
    log: &Log,
) -> DataStream<(usize, i64)> {
    let p = skews.len();
    let skews = skews.to_vec();
    let mut strategy = WatermarkStrategy::monotonous().with_interval(Duration::from_millis(1));
    if aligned {
        strategy =
            strategy.with_watermark_alignment("skewed", Duration::from_millis(DRIFT as u64), Duration::from_millis(1));
    }
    let log = log.clone();
    env.generate(Some(per_subtask * p as u64), move |i| {
        ((i % p as u64) as usize, skews[(i % p as u64) as usize] + (i / p as u64) as i64)
    })
    .uid("skewed")
    .assign_timestamps_and_watermarks(strategy, |e: &(usize, i64)| e.1)
    .map(move |e| {
        log.lock().unwrap().push(e);
        e
    })
}

/// Records per subtask and one-second window: what the job must count.
fn model(skews: &[i64], per_subtask: u64) -> Counts {
    let mut counts = BTreeMap::new();
    for (s, skew) in skews.iter().enumerate() {
        for k in 0..per_subtask as i64 {
            *counts.entry((s, (skew + k).div_euclid(1_000) * 1_000)).or_default() += 1;
        }
    }
    counts
}

/// Counts per subtask in one-second tumbling windows.
fn windowed(stream: &DataStream<(usize, i64)>) -> Collected<((usize, i64), u64)> {
    stream
        .key_by(|e: &(usize, i64)| e.0)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .aggregate_with(Count, |s: &usize, window: TimeWindow, n| ((*s, window.start), n))
        .uid("windows")
        .collect()
}

fn counts(collected: Vec<((usize, i64), u64)>) -> Counts {
    let mut counts = BTreeMap::new();
    for (key, n) in collected {
        *counts.entry(key).or_default() += n;
    }
    counts
}

/// Slows subtask 0 down (1 ms every 100 records), so the others are ready long before it is
/// done, however the threads are scheduled.
fn slow_subtask_0(stream: DataStream<(usize, i64)>) -> DataStream<(usize, i64)> {
    stream.map(|e| {
        if e.0 == 0 && e.1 % 100 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        e
    })
}

/// Runs the skewed job (with subtask 0 slowed down when `slow`); returns its window counts
/// and the read log.
fn run(skews: &[i64], per_subtask: u64, aligned: bool, slow: bool) -> (Counts, Vec<(usize, i64)>) {
    let env = StreamEnvironment::new();
    env.set_parallelism(skews.len());
    env.set_batch_size(64);
    let log = Log::default();
    let stream = skewed(&env, skews, per_subtask, aligned, &log);
    let out = windowed(&if slow { slow_subtask_0(stream) } else { stream });
    let handle = env.execute("skewed").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !handle.is_finished() {
        assert!(Instant::now() < deadline, "the job did not finish in a minute: deadlocked");
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.wait().unwrap();
    let log = std::mem::take(&mut *log.lock().unwrap());
    (counts(out.take()), log)
}

#[test]
fn a_subtask_far_ahead_waits_for_the_others_and_the_output_is_unchanged() {
    let (skews, n) = ([0, 1_000_000], 50_000);
    let (aligned, log) = run(&skews, n, true, true);
    assert_eq!(aligned, model(&skews, n));
    let lead = largest_lead(&log, 2);
    assert!(lead <= DRIFT + SLACK, "subtask 1 read {lead} ms ahead of subtask 0");
    // Subtask 0 never gets within the drift of subtask 1, so subtask 1 read (nearly) nothing
    // until subtask 0 had finished.
    let last_of_0 = log.iter().rposition(|e| e.0 == 0).unwrap();
    let early = log[..last_of_0].iter().filter(|e| e.0 == 1).count() as i64;
    assert!(early <= SLACK, "subtask 1 read {early} records before subtask 0 finished");
    // The control: without alignment the same job reads subtask 1 far ahead.
    let (unaligned, log) = run(&skews, n, false, true);
    assert_eq!(unaligned, aligned);
    assert!(largest_lead(&log, 2) > 100_000, "without alignment subtask 1 should have run ahead");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// p = 1..4 subtasks with skewed starts (some empty): every job finishes (no deadlock),
    /// counts what a sequential model counts, and no subtask reads further ahead of one
    /// still reading than the drift allows.
    #[test]
    fn skewed_subtasks_at_any_parallelism_finish_with_the_model_s_counts_within_the_drift(
        skews in proptest::collection::vec(prop_oneof![Just(0i64), 100_000i64..400_000], 1..=4),
        per_subtask in prop_oneof![Just(0u64), 20_000u64..40_000],
    ) {
        let (got, log) = run(&skews, per_subtask, true, false);
        prop_assert_eq!(got, model(&skews, per_subtask));
        let lead = largest_lead(&log, skews.len());
        prop_assert!(lead <= DRIFT + SLACK, "a subtask read {} ms ahead", lead);
    }
}

/// A source whose subtask 0 has nothing to read for `stall` before its records come.
struct Stalling {
    subtask: usize,
    started: Instant,
    stall: Duration,
    next: i64,
    end: i64,
}

impl Source<(usize, i64)> for Stalling {
    fn poll_next(&mut self, out: &mut Vec<(usize, i64)>, max: usize) -> Result<SourcePoll, BoxError> {
        if self.subtask == 0 && self.started.elapsed() < self.stall {
            std::thread::sleep(Duration::from_millis(5));
            return Ok(SourcePoll::Pending);
        }
        let end = self.end.min(self.next + max as i64);
        out.extend((self.next..end).map(|t| (self.subtask, t)));
        self.next = end;
        Ok(if self.next == self.end { SourcePoll::Done } else { SourcePoll::Ready })
    }
}

/// Subtask 0 stalls for 1.5 s before reading 0..20k; subtask 1 reads 100k..160k. Returns
/// the read log.
fn stalling(idleness: Option<Duration>) -> Vec<(usize, i64)> {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.set_batch_size(64);
    env.set_buffer_timeout(Duration::from_millis(5));
    let mut strategy = WatermarkStrategy::monotonous().with_interval(Duration::from_millis(1));
    if let Some(timeout) = idleness {
        strategy = strategy.with_idleness(timeout);
    }
    let strategy =
        strategy.with_watermark_alignment("stalling", Duration::from_millis(1_000), Duration::from_millis(1));
    let log = Log::default();
    let logged = log.clone();
    let stall = Duration::from_millis(1_500);
    let out = env
        .add_source("Stalling", move |subtask, _| {
            let (next, end) = if subtask == 0 { (0, 20_000) } else { (100_000, 160_000) };
            Ok(Stalling { subtask, started: Instant::now(), stall, next, end })
        })
        .assign_timestamps_and_watermarks(strategy, |e: &(usize, i64)| e.1)
        .map(move |e| {
            logged.lock().unwrap().push(e);
            e
        })
        .collect();
    env.execute("stalling").unwrap().wait().unwrap();
    assert_eq!(out.take().len(), 80_000, "every record arrives");
    let log = std::mem::take(&mut *log.lock().unwrap());
    log
}

#[test]
fn an_idle_subtask_does_not_hold_the_group_back_and_one_without_idleness_does() {
    // Idle after 30 ms without records: subtask 1 reads everything during subtask 0's stall.
    let log = stalling(Some(Duration::from_millis(30)));
    let first_of_0 = log.iter().position(|e| e.0 == 0).unwrap();
    let before = log[..first_of_0].iter().filter(|e| e.0 == 1).count();
    assert_eq!(before, 60_000, "subtask 1 finished while subtask 0 was idle");
    // Without idleness the stalled subtask holds the group at the beginning of time: subtask
    // 1 waits (and still finishes once subtask 0 has read and ended: no deadlock).
    let log = stalling(None);
    let first_of_0 = log.iter().position(|e| e.0 == 0).unwrap();
    let before = log[..first_of_0].iter().filter(|e| e.0 == 1).count() as i64;
    assert!(before <= SLACK, "subtask 1 read {before} records while subtask 0 held the group");
}

#[test]
fn an_assigner_not_chained_to_a_source_is_refused_with_what_to_change() {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let strategy = WatermarkStrategy::monotonous().with_watermark_alignment(
        "g",
        Duration::from_secs(1),
        Duration::from_millis(10),
    );
    let _ =
        env.generate(Some(10), |i| i as i64).rebalance().assign_timestamps_and_watermarks(strategy, |t| *t).collect();
    let error = env.execute("unchained").err().expect("refused").to_string();
    assert!(error.contains("does not run chained to a source"), "{error}");
    assert!(error.contains("Timestamps/Watermarks"), "{error}");
}

/// Two splits in one subtask, read a burst at a time each: `skews[j]` is split `j`'s first
/// timestamp. With `honours_pause` the reader stops reading the splits it is told to pause;
/// every pause and resume it hears is logged.
#[derive(Clone)]
struct TwoSplits {
    skews: [i64; 2],
    per_split: i64,
    honours_pause: bool,
    heard: Arc<Mutex<Heard>>,
}

struct TwoSplitsReader {
    spec: TwoSplits,
    ids: Option<[SplitId; 2]>,
    next: [i64; 2],
    paused: [bool; 2],
}

impl SplitSource<(usize, i64)> for TwoSplits {
    type Reader = TwoSplitsReader;

    fn open(&self, _: &ReaderContext) -> Result<TwoSplitsReader, BoxError> {
        Ok(TwoSplitsReader { spec: self.clone(), ids: None, next: [0, 0], paused: [false, false] })
    }
}

impl SourceReader<(usize, i64)> for TwoSplitsReader {
    fn poll(&mut self, out: &mut SourceOutput<(usize, i64)>, _max: usize) -> Result<SourcePoll, BoxError> {
        let ids = *self.ids.get_or_insert_with(|| [out.add_split("a"), out.add_split("b")]);
        for (split, id) in ids.into_iter().enumerate() {
            if self.paused[split] || self.next[split] == self.spec.per_split {
                continue;
            }
            let end = self.spec.per_split.min(self.next[split] + 32);
            for k in self.next[split]..end {
                out.collect_in(id, (split, self.spec.skews[split] + k), self.spec.skews[split] + k);
            }
            self.next[split] = end;
            if end == self.spec.per_split {
                out.finish_split(id);
            }
        }
        Ok(if self.next.iter().all(|&n| n == self.spec.per_split) { SourcePoll::Done } else { SourcePoll::Ready })
    }

    fn snapshot_splits(&mut self, _: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        Ok(None)
    }

    fn pause_or_resume_splits(&mut self, pause: &[SplitId], resume: &[SplitId]) -> Result<(), BoxError> {
        let indices = |ids: &[SplitId]| ids.iter().map(|id| id.index()).collect::<Vec<_>>();
        self.spec.heard.lock().unwrap().push((indices(pause), indices(resume)));
        if self.spec.honours_pause {
            pause.iter().for_each(|id| self.paused[id.index()] = true);
            resume.iter().for_each(|id| self.paused[id.index()] = false);
        }
        Ok(())
    }
}

/// Runs one subtask of [`TwoSplits`] with split `b` a million ms ahead of `a`; returns the
/// read log (by split) and what the reader heard.
fn two_splits(honours_pause: bool) -> (Vec<(usize, i64)>, Heard) {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let source = TwoSplits { skews: [0, 1_000_000], per_split: 40_000, honours_pause, heard: heard.clone() };
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let strategy = WatermarkStrategy::monotonous().with_interval(Duration::from_millis(1)).with_watermark_alignment(
        "splits",
        Duration::from_millis(DRIFT as u64),
        Duration::from_millis(1),
    );
    let log = Log::default();
    let logged = log.clone();
    let out = env
        .from_source(source, strategy, "TwoSplits")
        .map(move |e| {
            logged.lock().unwrap().push(e);
            e
        })
        .collect();
    env.execute("two splits").unwrap().wait().unwrap();
    assert_eq!(out.take().len(), 80_000, "every record arrives");
    let log = std::mem::take(&mut *log.lock().unwrap());
    let heard = std::mem::take(&mut *heard.lock().unwrap());
    (log, heard)
}

#[test]
fn a_reader_that_pauses_splits_keeps_a_split_far_ahead_waiting_for_the_slow_one() {
    let (log, heard) = two_splits(true);
    assert_eq!(heard.first(), Some(&(vec![1], vec![])), "split b was paused first");
    let lead = largest_lead(&log, 2);
    assert!(lead <= DRIFT + SLACK, "split b read {lead} ms ahead of split a");
    // Once split a has finished, b is within the bound again (the subtask's watermark is b's
    // own): resumed, and read to the end.
    assert!(heard.iter().any(|(_, resume)| resume == &[1]), "{heard:?}");
}

#[test]
fn a_reader_that_cannot_pause_splits_is_aligned_per_subtask_only() {
    // The subtask's watermark is the minimum over its splits (split a's), within the drift,
    // so the subtask reads on and split b runs ahead: what Flink does for a reader without
    // split pausing when unaligned splits are allowed.
    let (log, heard) = two_splits(false);
    assert!(!heard.is_empty(), "the reader was still told");
    assert!(largest_lead(&log, 2) > 100_000);
}

/// Splits a stop-with-savepoint while subtask 1 is paused: the savepoint completes (a paused
/// source answers barriers), and the restored job finishes with the counts of one run.
#[test]
fn a_savepoint_taken_while_a_source_is_paused_restores_to_the_results_of_one_run() {
    let (skews, n) = ([0i64, 1_000_000], 30_000u64);
    let dir = tempfile::tempdir().unwrap();
    let job = |env: &StreamEnvironment, slow: bool| {
        env.set_parallelism(2);
        env.set_batch_size(64);
        env.enable_checkpointing(CheckpointConfig::on_request());
        let stream = skewed(env, &skews, n, true, &Log::default());
        // Subtask 0 reads slowly, so subtask 1 waits long enough to be caught waiting.
        let stream = stream.map(move |e| {
            if slow && e.0 == 0 && e.1 % 50 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            e
        });
        windowed(&stream)
    };
    let env = StreamEnvironment::new();
    let first = job(&env, true);
    let handle = env.execute("paused").unwrap();
    let paused_ms = || {
        let metrics = handle.metrics();
        metrics
            .subtasks
            .get(&("Source: Generator".to_string(), 1))
            .and_then(|c| c.get("watermark_alignment_paused_ms"))
            .copied()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while paused_ms().unwrap_or(0) < 50 {
        assert!(Instant::now() < deadline, "subtask 1 never paused");
        std::thread::sleep(Duration::from_millis(5));
    }
    // A checkpoint while paused completes, and the job goes on.
    handle.savepoint(dir.path().join("while-paused")).unwrap();
    let savepoint = handle.stop_with_savepoint(dir.path().join("stop"), false).unwrap();
    handle.wait().unwrap();
    let env = StreamEnvironment::new();
    env.restore_from(&savepoint);
    let rest = job(&env, false);
    env.execute("restored").unwrap().wait().unwrap();
    let mut all = first.take();
    all.extend(rest.take());
    assert_eq!(counts(all), model(&skews, n));
}

/// A failure while subtask 1 is paused: the job restarts from its newest checkpoint (taken
/// while paused), aligns afresh, and counts exactly what a failure-free run counts.
#[test]
fn a_failure_while_a_source_is_paused_restarts_from_a_checkpoint_with_the_counts_of_one_run() {
    let (skews, n) = ([0i64, 1_000_000], 30_000u64);
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.set_batch_size(64);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)));
    env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 3, delay: Duration::ZERO });
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fault = failed.clone();
    let stream = skewed(&env, &skews, n, true, &Log::default()).map(move |e| {
        if e.0 == 0 && e.1 % 50 == 0 {
            // Subtask 0 reads slowly, so subtask 1 waits the whole time.
            std::thread::sleep(Duration::from_millis(1));
        }
        if e == (0, 20_000) && !fault.swap(true, std::sync::atomic::Ordering::Relaxed) {
            panic!("injected failure at {e:?}");
        }
        e
    });
    let out = windowed(&stream);
    let result = env.execute("failing while paused").unwrap().wait().unwrap();
    assert!(failed.load(std::sync::atomic::Ordering::Relaxed));
    assert_eq!(result.restarts, 1);
    assert!(result.metrics.total("Source: Generator", "watermark_alignment_paused_ms") > 100, "subtask 1 waited");
    assert_eq!(counts(out.take()), model(&skews, n));
}
