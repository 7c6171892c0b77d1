//! Sliding windows with many panes per window (the keyed stage slides over each key's panes)
//! against a sequential model that puts every record into every window holding it: through
//! checkpoints, an injected failure and a stop with a savepoint restored at another
//! parallelism, on both state backends; and with records behind the watermark, which must be
//! dropped from exactly the windows that had fired.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

#[path = "common/replayable.rs"]
mod replayable;
#[path = "common/savepoint_round_trip.rs"]
mod savepoint_round_trip;

use eddy::prelude::*;
use proptest::prelude::*;
use replayable::{replayed, Event};
use savepoint_round_trip::{stopped_and_restored, Job, Run};

/// One result: key, window start and end, count and sum of values.
type Out = (u8, i64, i64, u64, u64);

/// How far an event may be out of order (the watermark's bound, so none is late).
const DISORDER_MS: i64 = 20;

/// Counts records and sums their values.
#[derive(Clone)]
struct CountSum;

impl AggregateFunction<Event> for CountSum {
    type Acc = (u64, u64);
    type Out = (u64, u64);
    fn create_accumulator(&self) -> (u64, u64) {
        (0, 0)
    }
    fn add(&self, acc: &mut (u64, u64), e: Event) {
        acc.0 += 1;
        acc.1 += e.2;
    }
    fn get_result(&self, acc: (u64, u64)) -> (u64, u64) {
        acc
    }
    fn merge(&self, acc: &mut (u64, u64), other: (u64, u64)) {
        acc.0 += other.0;
        acc.1 += other.1;
    }
}

/// The windows `[s, s + size)` with `s ≡ offset (mod slide)` holding `ts`.
fn windows_of(ts: i64, (size, slide, offset): (i64, i64, i64)) -> impl Iterator<Item = (i64, i64)> {
    let last = ts - (ts - offset).rem_euclid(slide);
    (0..).map(move |i| last - i * slide).take_while(move |&s| s > ts - size).map(move |s| (s, s + size))
}

/// Every window's count and sum. Each event comes with the highest time before it, if the
/// windows that ended by then had fired and no longer take it (`None`: none had).
fn model(events: &[(Event, Option<i64>)], windows: (i64, i64, i64)) -> Vec<Out> {
    let mut model: BTreeMap<(u8, i64, i64), (u64, u64)> = BTreeMap::new();
    for &((key, ts, value), fired_until) in events {
        for (start, end) in windows_of(ts, windows).filter(|&(_, end)| fired_until.is_none_or(|max| end > max)) {
            let w = model.entry((key, start, end)).or_default();
            w.0 += 1;
            w.1 += value;
        }
    }
    model.into_iter().map(|((k, s, e), (n, sum))| (k, s, e, n, sum)).collect()
}

/// The job with `(size, slide, offset)` windows and `lateness`: events (up to `limit`) from
/// one source subtask, spread over every pre-aggregation subtask, into sliding windows; fails
/// once at event `fail.0`.
fn job((size, slide, offset): (i64, i64, i64), lateness: i64) -> impl Job<Out> {
    move |events, limit, fail, env| {
        let out = windowed(&env, events, limit, fail, (size, slide, offset), lateness);
        Run { env, out }
    }
}

fn windowed(
    env: &StreamEnvironment,
    events: &Arc<Vec<Event>>,
    limit: &Arc<AtomicU64>,
    fail: &Arc<(u64, AtomicBool)>,
    (size, slide, offset): (i64, i64, i64),
    lateness: i64,
) -> Collected<Out> {
    let ms = |n: i64| Duration::from_millis(n as u64);
    replayed(env, events, limit, fail)
        .assign_timestamps_and_watermarks(WatermarkStrategy::bounded_out_of_orderness(ms(DISORDER_MS)), |e: &Event| e.1)
        .set_parallelism(1)
        .rebalance()
        .key_by(|e: &Event| e.0)
        .window(SlidingEventTimeWindows::of(ms(size), ms(slide)).with_offset(ms(offset)))
        .allowed_lateness(ms(lateness))
        .aggregate_with(CountSum, |&key, w, (count, sum)| (key, w.start, w.end, count, sum))
        .uid("sliding")
        .collect()
}

/// Events: keys and values as generated, times advancing by `step` with some disorder
/// (never more than the watermark's bound).
fn events(raw: &[(u8, u8, u8)]) -> Vec<Event> {
    let mut time = 0i64;
    raw.iter()
        .enumerate()
        .map(|(i, &(key, step, back))| {
            time += i64::from(step);
            (key, time - i64::from(back) % (DISORDER_MS + 1), i as u64)
        })
        .collect()
}

/// Size, slide and offset: up to a dozen slides per window, panes of gcd(size, slide).
fn windows() -> impl Strategy<Value = (i64, i64, i64)> {
    (1i64..=25, 2i64..=12, 0i64..=24, 0i64..=25).prop_map(|(slide, slides, extra, offset)| {
        // Any size longer than the slide (so windows overlap), not only multiples of it.
        let size = slide * slides - extra.min(slide - 1);
        (size.max(slide + 1), slide, offset % slide)
    })
}

fn check(
    raw: Vec<(u8, u8, u8)>,
    windows: (i64, i64, i64),
    parallelism: (usize, usize),
    (cut, fail): (f64, f64),
    sled: bool,
) -> Result<(), TestCaseError> {
    let events = events(&raw);
    let expected = model(&events.iter().map(|&e| (e, None)).collect::<Vec<_>>(), windows);
    let len = events.len() as f64;
    let (cut, fail) = ((len * cut) as u64, (len * fail) as u64);
    let got = stopped_and_restored((job(windows, 0), job(windows, 0)), events, parallelism, cut, fail, sled);
    let missing: Vec<_> = expected.iter().filter(|o| !got.contains(o)).take(5).collect();
    let extra: Vec<_> = got.iter().filter(|o| !expected.contains(o)).take(5).collect();
    prop_assert!(missing.is_empty() && extra.is_empty(), "missing {:?}, extra {:?}", missing, extra);
    prop_assert_eq!(got, expected);
    Ok(())
}

fn raw_events() -> impl Strategy<Value = Vec<(u8, u8, u8)>> {
    proptest::collection::vec((0u8..5, 0u8..10, 0u8..30), 1..150)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    /// On the heap backend.
    #[test]
    fn sliding_windows_match_the_model_through_a_restore_at_another_parallelism_on_the_heap(
        raw in raw_events(), windows in windows(), before in 1usize..=3, after in 1usize..=3,
        cut in 0.0..1.0f64, fail in 0.0..1.0f64,
    ) {
        check(raw, windows, (before, after), (cut, fail), false)?;
    }

    /// On the sled backend.
    #[test]
    fn sliding_windows_match_the_model_through_a_restore_at_another_parallelism_on_sled(
        raw in raw_events(), windows in windows(), before in 1usize..=3, after in 1usize..=3,
        cut in 0.0..1.0f64, fail in 0.0..1.0f64,
    ) {
        check(raw, windows, (before, after), (cut, fail), true)?;
    }

    /// Arbitrarily disordered times, one subtask, a watermark after every record: a record
    /// counts in the windows that had not fired when it came (the watermark was then the
    /// highest earlier time − 1) and is dropped, and counted, when all of them had.
    #[test]
    fn records_behind_the_watermark_leave_exactly_the_fired_windows(
        events in proptest::collection::vec((0u8..3, 0i64..400, 0u64..100), 0..150),
        windows in windows(),
    ) {
        let env = StreamEnvironment::new();
        env.set_parallelism(1).set_batch_size(1);
        let (size, slide, offset) = windows;
        let ms = |n: i64| Duration::from_millis(n as u64);
        let out = env
            .from_iter(events.clone())
            .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous().with_interval(Duration::ZERO), |e: &Event| e.1)
            .key_by(|e: &Event| e.0)
            .window(SlidingEventTimeWindows::of(ms(size), ms(slide)).with_offset(ms(offset)))
            .aggregate_with(CountSum, |&key, w, (count, sum)| (key, w.start, w.end, count, sum))
            .collect();
        let result = env.execute("late").unwrap().wait().unwrap();

        let (mut max_before, mut late, mut kept) = (None::<i64>, 0, Vec::new());
        for &(key, ts, value) in &events {
            // A window has fired once its end is at most the highest earlier time.
            if windows_of(ts, windows).any(|(_, end)| max_before.is_none_or(|max| end > max)) {
                kept.push(((key, ts, value), max_before));
            } else {
                late += 1;
            }
            max_before = Some(max_before.map_or(ts, |max| max.max(ts)));
        }
        let expected = model(&kept, windows);
        let mut got = out.take();
        got.sort();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(result.metrics.total_all("late_records_dropped"), late);
    }
}

/// A savepoint whose sliding windows hold an accumulator per window (here: written with
/// allowed lateness, which keeps windows that way) restores into the stage that keeps them
/// so, and nothing is lost or emitted twice.
#[test]
fn a_savepoint_with_an_accumulator_per_window_restores_into_that_stage() {
    let raw: Vec<(u8, u8, u8)> = (0..200u32).map(|i| ((i % 5) as u8, (i % 7) as u8, (i * 13 % 31) as u8)).collect();
    let events = events(&raw);
    let windows = (50, 10, 3);
    let expected = model(&events.iter().map(|&e| (e, None)).collect::<Vec<_>>(), windows);
    // The first run allows lateness (so it keeps an accumulator per window), the second none.
    let got = stopped_and_restored((job(windows, 5), job(windows, 0)), events, (2, 1), 120, u64::MAX, false);
    assert_eq!(got, expected);
}
