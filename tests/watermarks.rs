//! Event time across several inputs, end to end: a window downstream of a union fires only
//! when every input's watermark has passed its end; an input marked idle stops holding the
//! others back; and the end of a bounded input lets every window fire.
//!
//! The sources here are driven by the test (a channel, or a flag that releases them), so the
//! jobs stay running while the test looks at what has fired so far.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eddy::prelude::*;

/// (key, event time in ms).
type Event = (&'static str, i64);

/// (key, window start, record count): what the windowed jobs below emit.
type WindowCount = (&'static str, i64, u64);

/// The static name of a key that went through keyed state (keys are owned there).
fn event_key(key: &str) -> &'static str {
    ["g", "markers", "p", "q", "s", "wm", "x", "y"].into_iter().find(|k| *k == key).expect("a test key")
}

const WINDOW: Duration = Duration::from_millis(1_000);

/// How long a watermark may take to travel through a job before a test gives up on it.
const PATIENCE: Duration = Duration::from_secs(10);

/// How long a test waits to be confident that a window does *not* fire. Watermarks are
/// emitted every 10 ms here, so a window that should fire would do so well within this.
const SETTLE: Duration = Duration::from_millis(500);

/// A source fed by the test through a channel: Pending while the channel is empty, done
/// once the test drops the sender.
struct ChannelSource<T> {
    receiver: Receiver<T>,
    buffered: VecDeque<T>,
}

impl<T: Send> Source<T> for ChannelSource<T> {
    fn poll_next(&mut self, out: &mut Vec<T>, max: usize) -> Result<SourcePoll, BoxError> {
        if self.buffered.is_empty() {
            match self.receiver.recv_timeout(Duration::from_millis(5)) {
                Ok(value) => self.buffered.push_back(value),
                Err(RecvTimeoutError::Timeout) => return Ok(SourcePoll::Pending),
                Err(RecvTimeoutError::Disconnected) => return Ok(SourcePoll::Done),
            }
            self.buffered.extend(self.receiver.try_iter());
        }
        let n = max.min(self.buffered.len());
        out.extend(self.buffered.drain(..n));
        Ok(SourcePoll::Ready)
    }
}

/// Emits its records, then stays Pending (a quiet partition) until `release` is set.
struct HeldSource<T> {
    records: Vec<T>,
    release: Arc<AtomicBool>,
}

impl<T: Send> Source<T> for HeldSource<T> {
    fn poll_next(&mut self, out: &mut Vec<T>, max: usize) -> Result<SourcePoll, BoxError> {
        if !self.records.is_empty() {
            let n = max.min(self.records.len());
            out.extend(self.records.drain(..n));
            return Ok(SourcePoll::Ready);
        }
        if self.release.load(Ordering::Acquire) {
            return Ok(SourcePoll::Done);
        }
        // The Source contract: wait briefly before saying there is nothing.
        std::thread::sleep(Duration::from_millis(5));
        Ok(SourcePoll::Pending)
    }
}

fn timestamp_of(e: &Event) -> i64 {
    e.1
}

/// Monotonous timestamps with a watermark every 10 ms, so waits in these tests are short.
fn fast_watermarks() -> WatermarkStrategy {
    WatermarkStrategy::monotonous().with_interval(Duration::from_millis(10))
}

/// A single-subtask input fed through the returned channel, with event time assigned.
fn channel_input(env: &StreamEnvironment, name: &str) -> (Sender<Event>, DataStream<Event>) {
    let (sender, receiver) = mpsc::channel();
    let receiver = Mutex::new(Some(receiver));
    let stream = env
        .add_source(name, move |_, _| {
            let receiver = receiver.lock().unwrap().take().ok_or("the channel source runs once")?;
            Ok(ChannelSource { receiver, buffered: VecDeque::new() })
        })
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(fast_watermarks(), timestamp_of)
        .set_parallelism(1);
    (sender, stream)
}

/// A single-subtask input that emits `records` and then waits for `release`.
fn held_input(
    env: &StreamEnvironment,
    name: &str,
    records: Vec<Event>,
    strategy: WatermarkStrategy,
    release: &Arc<AtomicBool>,
) -> DataStream<Event> {
    let release = release.clone();
    env.add_source(name, move |_, _| Ok(HeldSource { records: records.clone(), release: release.clone() }))
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(strategy, timestamp_of)
        .set_parallelism(1)
}

/// Counts per key and tumbling window, in two subtasks so watermarks must reach both.
fn count_windows(input: &DataStream<Event>) -> Collected<WindowCount> {
    input
        .key_by(|e: &Event| e.0.to_string())
        .window(TumblingEventTimeWindows::of(WINDOW))
        .aggregate_with(Count, |key, window, n| (event_key(key), window.start, n))
        .set_parallelism(2)
        .collect()
}

/// What a running job has emitted so far, gathered across polls of its `Collected`.
struct Emitted<T> {
    collected: Collected<T>,
    seen: Vec<T>,
}

impl<T: Ord + Clone> Emitted<T> {
    fn new(collected: Collected<T>) -> Self {
        Emitted { collected, seen: Vec::new() }
    }

    /// Everything emitted so far, sorted.
    fn now(&mut self) -> Vec<T> {
        self.seen.extend(self.collected.take());
        self.seen.sort();
        self.seen.clone()
    }

    /// Polls until at least `n` results have arrived or `limit` has passed; returns them.
    fn wait_for(&mut self, n: usize, limit: Duration) -> Vec<T> {
        let deadline = Instant::now() + limit;
        while self.now().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.now()
    }

    /// Waits `period` and returns what arrived meanwhile (for checks that nothing fires).
    fn after(&mut self, period: Duration) -> Vec<T> {
        std::thread::sleep(period);
        self.now()
    }
}

#[test]
fn a_window_after_a_union_fires_only_when_every_input_has_passed_its_end() {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let (a, a_stream) = channel_input(&env, "a");
    let (b, b_stream) = channel_input(&env, "b");
    let mut out = Emitted::new(count_windows(&a_stream.union(&[b_stream])));
    let job = env.execute("union watermarks").unwrap();

    // a's watermark passes the first window's end, b's does not: b holds it back.
    a.send(("x", 100)).unwrap();
    a.send(("x", 1_500)).unwrap();
    b.send(("x", 200)).unwrap();
    assert_eq!(out.after(SETTLE), vec![], "fired while input b was still before the window's end");

    // b passes it too: [0, 1000) fires, [1000, 2000) waits for b (at 1199).
    b.send(("x", 1_200)).unwrap();
    assert_eq!(out.wait_for(1, PATIENCE), vec![("x", 0, 2)]);

    // Now a is the slower one and holds [1000, 2000) back, until it passes 1999 as well.
    b.send(("x", 2_500)).unwrap();
    assert_eq!(out.after(SETTLE), vec![("x", 0, 2)], "fired while input a was still before the window's end");
    a.send(("x", 2_100)).unwrap();
    assert_eq!(out.wait_for(2, PATIENCE), vec![("x", 0, 2), ("x", 1_000, 2)]);

    // Ending both inputs sends the maximum watermark: the last window fires and the job ends.
    drop((a, b));
    job.wait().unwrap();
    assert_eq!(out.now(), vec![("x", 0, 2), ("x", 1_000, 2), ("x", 2_000, 2)]);
}

/// A union of a quiet input (two records, then silence until released) and a busy one whose
/// watermark has passed the first window. Returns the job, its output and the release flag.
fn quiet_and_busy(quiet_strategy: WatermarkStrategy) -> (JobHandle, Emitted<WindowCount>, Arc<AtomicBool>) {
    let release = Arc::new(AtomicBool::new(false));
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let quiet = held_input(&env, "quiet", vec![("q", 100), ("q", 200)], quiet_strategy, &release);
    let busy = held_input(&env, "busy", vec![("p", 300), ("p", 2_500)], fast_watermarks(), &release);
    let out = Emitted::new(count_windows(&quiet.union(&[busy])));
    let job = env.execute("quiet and busy").unwrap();
    (job, out, release)
}

/// Every window of the quiet-and-busy job, once both inputs have ended.
const ALL_WINDOWS: [WindowCount; 3] = [("p", 0, 1), ("p", 2_000, 1), ("q", 0, 2)];

#[test]
fn an_idle_input_stops_holding_back_the_watermark() {
    let (job, mut out, release) = quiet_and_busy(fast_watermarks().with_idleness(Duration::from_millis(200)));

    // The quiet input (at 199) goes idle after 200 ms, so the busy one's watermark (2499)
    // alone decides: [0, 1000) fires for both keys while the quiet source still runs.
    assert_eq!(out.wait_for(2, PATIENCE), vec![("p", 0, 1), ("q", 0, 2)]);
    assert!(!job.is_finished(), "the window must fire while the quiet source is still running");
    assert_eq!(out.after(SETTLE).len(), 2, "[2000, 3000) must wait for the busy input's watermark to pass 2999");

    release.store(true, Ordering::Release);
    job.wait().unwrap();
    assert_eq!(out.now(), ALL_WINDOWS);
}

#[test]
fn without_idleness_a_quiet_input_holds_back_every_window() {
    let (job, mut out, release) = quiet_and_busy(fast_watermarks());

    assert_eq!(out.after(Duration::from_secs(1)), vec![], "nothing may fire while the quiet input is at 199");
    assert!(!job.is_finished());

    release.store(true, Ordering::Release);
    job.wait().unwrap();
    assert_eq!(out.now(), ALL_WINDOWS);
}

#[test]
fn the_end_of_bounded_inputs_fires_every_window() {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    // A bound of an hour keeps every periodic watermark far behind these timestamps, so
    // only the maximum watermark at the end of input can fire the windows.
    let strategy =
        WatermarkStrategy::bounded_out_of_orderness(Duration::from_secs(3_600)).with_interval(Duration::from_millis(1));
    let short = env
        .from_collection(vec![("s", 500), ("s", 1_500), ("s", 1_600)])
        .assign_timestamps_and_watermarks(strategy.clone(), timestamp_of);
    // The longer input keeps running after the short one has ended; the window operator must
    // count the ended input as done rather than wait for it.
    let long = env
        .generate(Some(5_000), |i| ("g", (i % 10) as i64 * 1_000 + (i / 10) as i64 % 1_000))
        .assign_timestamps_and_watermarks(strategy, timestamp_of);
    let results = short
        .union(&[long])
        .key_by(|e: &Event| e.0.to_string())
        .window(TumblingEventTimeWindows::of(WINDOW))
        .aggregate_with(Count, |key, window, n| (event_key(key), window.start, n))
        .process(|r: WindowCount, ctx: &mut ProcessContext<'_, (WindowCount, Option<i64>)>| {
            let timestamp = ctx.timestamp();
            ctx.collect((r, timestamp))
        })
        .collect();
    env.execute("bounded").unwrap().wait().unwrap();

    let mut expected = vec![(("s", 0, 1), Some(999)), (("s", 1_000, 2), Some(1_999))];
    // Record i of the generator falls in window (i % 10) * 1000: 500 records in each of ten.
    expected.extend((0..10).map(|w| (("g", w * 1_000, 500), Some(w * 1_000 + 999))));
    expected.sort();
    let mut got = results.take();
    got.sort();
    assert_eq!(got, expected);
}

/// One input at parallelism 2 whose subtasks are fed by separate channels, so each subtask's
/// watermark (and so each window pre-aggregation's) moves on its own.
fn two_channel_input(env: &StreamEnvironment) -> ([Sender<Event>; 2], DataStream<Event>) {
    let (a, a_receiver) = mpsc::channel();
    let (b, b_receiver) = mpsc::channel();
    let receivers = Mutex::new(vec![Some(a_receiver), Some(b_receiver)]);
    let stream = env
        .add_source("two channels", move |subtask, _| {
            let receiver = receivers.lock().unwrap()[subtask].take().ok_or("each channel is read once")?;
            Ok(ChannelSource { receiver, buffered: VecDeque::new() })
        })
        .set_parallelism(2)
        .assign_timestamps_and_watermarks(fast_watermarks(), timestamp_of)
        .set_parallelism(2);
    ([a, b], stream)
}

#[test]
fn a_record_late_only_for_its_own_subtask_is_still_counted_as_one_window_stage_would() {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let ([a, b], input) = two_channel_input(&env);
    let mut out = Emitted::new(count_windows(&input));
    let job = env.execute("local lateness").unwrap();

    // Subtask a's own watermark passes [0, 1000); b's stays at the start, holding the job back.
    a.send(("x", 100)).unwrap();
    a.send(("x", 1_500)).unwrap();
    std::thread::sleep(SETTLE);
    // Late for subtask a alone: the keyed stage has not fired [0, 1000), so it must count it.
    a.send(("x", 300)).unwrap();
    assert_eq!(out.after(SETTLE), vec![], "nothing may fire while input b holds the watermark back");

    // b passes [0, 1000) too: it fires with both records.
    b.send(("y", 1_100)).unwrap();
    assert_eq!(out.wait_for(1, PATIENCE), vec![("x", 0, 2)]);

    // Now [0, 1000) has fired everywhere, so a record for it is late and dropped.
    a.send(("x", 400)).unwrap();
    std::thread::sleep(SETTLE);
    drop((a, b));
    let result = job.wait().unwrap();
    assert_eq!(out.now(), vec![("x", 0, 2), ("x", 1_000, 1), ("y", 1_000, 1)]);
    assert_eq!(result.metrics.total_all("late_records_dropped"), 1);
}

#[test]
fn punctuated_watermarks_in_the_stream_fire_windows_by_themselves() {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let (sender, receiver) = mpsc::channel::<Event>();
    let receiver = Mutex::new(Some(receiver));
    // Only marker records ("wm", t) advance event time: periodic emission is an hour away.
    let markers = WatermarkStrategy::for_generator(Punctuated(|e: &Event, ts| (e.0 == "wm").then_some(ts)))
        .with_interval(Duration::from_secs(3600));
    let input = env
        .add_source("markers", move |_, _| {
            let receiver = receiver.lock().unwrap().take().ok_or("the channel source runs once")?;
            Ok(ChannelSource { receiver, buffered: VecDeque::new() })
        })
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(markers, timestamp_of)
        .set_parallelism(1)
        .filter(|e: &Event| e.0 != "wm");
    let mut out = Emitted::new(count_windows(&input));
    let job = env.execute("punctuated").unwrap();

    sender.send(("x", 100)).unwrap();
    sender.send(("x", 1_200)).unwrap();
    assert_eq!(out.after(SETTLE), vec![], "no marker yet, so no watermark");
    sender.send(("wm", 999)).unwrap();
    assert_eq!(out.wait_for(1, PATIENCE), vec![("x", 0, 1)]);
    drop(sender);
    job.wait().unwrap();
    assert_eq!(out.now(), vec![("x", 0, 1), ("x", 1_000, 1)]);
}
