//! The joins and whole-window functions against sequential models, on both state backends:
//! `process_window` (every element of a tumbling window), `TopN` over sliding windows, a
//! window join and an interval join of two streams cut from one disordered stream, run at a
//! random parallelism with checkpoints and an injected failure, stopped with a savepoint part
//! way and restored at another random parallelism. What both runs emit must be what plain
//! loops over all events say.

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
use savepoint_round_trip::{stopped_and_restored, Run};

/// How far an event may be out of order (the watermark strategy's bound, so none is late).
const DISORDER_MS: i64 = 30;
const TUMBLING_MS: i64 = 100;
const SLIDE_MS: i64 = 40;
const TOP: usize = 2;
/// The interval join's bounds: `a + LOWER <= b <= a + UPPER`.
const LOWER: i64 = -20;
const UPPER: i64 = 35;

// Events (`replayable::Event`: key, event time, value = index) whose value is divisible by 3
// are the first input of the joins, the others the second (`is_first`).

/// What the job emits, one variant per operator.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Out {
    Elements { key: u8, start: i64, values: Vec<u64> },
    Top { key: u8, start: i64, values: Vec<u64> },
    Pair { key: u8, start: i64, first: u64, second: u64 },
    Interval { key: u8, first: u64, second: u64, at: i64 },
}

fn is_first(e: &Event) -> bool {
    e.2 % 3 == 0
}

/// The events: keys as generated, times advancing by `step` with some disorder (never more
/// than the watermark's bound).
fn events(raw: &[(u8, u8, u8)]) -> Vec<Event> {
    let mut time = 0i64;
    raw.iter()
        .enumerate()
        .map(|(i, &(key, step, back))| {
            time += i64::from(step);
            (key, (time - i64::from(back) % (DISORDER_MS + 1)).max(0), i as u64)
        })
        .collect()
}

fn window_start(ts: i64, size: i64) -> i64 {
    ts - ts.rem_euclid(size)
}

/// What every operator emits for `events`, by plain loops.
fn model(events: &[Event]) -> Vec<Out> {
    let mut out = Vec::new();
    let mut tumbling: BTreeMap<(u8, i64), Vec<u64>> = BTreeMap::new();
    let mut sliding: BTreeMap<(u8, i64), Vec<u64>> = BTreeMap::new();
    for &(key, ts, value) in events {
        tumbling.entry((key, window_start(ts, TUMBLING_MS))).or_default().push(value);
        let last = window_start(ts, SLIDE_MS);
        for start in [last - SLIDE_MS, last] {
            sliding.entry((key, start)).or_default().push(value);
        }
    }
    for ((key, start), mut values) in tumbling {
        values.sort();
        out.push(Out::Elements { key, start, values });
    }
    for ((key, start), mut values) in sliding {
        values.sort_by(|a, b| b.cmp(a));
        values.truncate(TOP);
        out.push(Out::Top { key, start, values });
    }
    for a in events.iter().filter(|e| is_first(e)) {
        for b in events.iter().filter(|e| !is_first(e) && e.0 == a.0) {
            if window_start(a.1, TUMBLING_MS) == window_start(b.1, TUMBLING_MS) {
                out.push(Out::Pair { key: a.0, start: window_start(a.1, TUMBLING_MS), first: a.2, second: b.2 });
            }
            if a.1 + LOWER <= b.1 && b.1 <= a.1 + UPPER {
                out.push(Out::Interval { key: a.0, first: a.2, second: b.2, at: a.1.max(b.1) });
            }
        }
    }
    out.sort();
    out
}

/// The job over `events` (up to `limit`), failing once at event `fail_at` if it gets there.
fn job(
    events: &Arc<Vec<Event>>,
    limit: &Arc<AtomicU64>,
    fail: &Arc<(u64, AtomicBool)>,
    env: StreamEnvironment,
) -> Run<Out> {
    let stream = replayed(&env, events, limit, fail)
        .assign_timestamps_and_watermarks(
            // A watermark after every batch, so state is cleaned up while records still come.
            WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(DISORDER_MS as u64))
                .with_interval(Duration::ZERO),
            |e: &Event| e.1,
        )
        .set_parallelism(1);
    let ms = |n: i64| Duration::from_millis(n as u64);
    let keyed = stream.key_by(|e: &Event| e.0);
    let elements = keyed
        .window(TumblingEventTimeWindows::of(ms(TUMBLING_MS)))
        .process_window(|&key, w, events| {
            let mut values: Vec<u64> = events.into_iter().map(|e| e.2).collect();
            values.sort();
            Out::Elements { key, start: w.start, values }
        })
        .uid("elements");
    let top = keyed
        .window(SlidingEventTimeWindows::of(ms(2 * SLIDE_MS), ms(SLIDE_MS)))
        .aggregate_with(TopN::new(TOP, |e: &Event| e.2), |&key, w, best| Out::Top {
            key,
            start: w.start,
            values: best.into_iter().map(|e| e.2).collect(),
        })
        .uid("top");
    let (firsts, seconds) = (stream.filter(is_first), stream.filter(|e| !is_first(e)));
    let pairs = firsts
        .join(&seconds)
        .where_(|a| a.0)
        .equal_to(|b| b.0)
        .window(TumblingEventTimeWindows::of(ms(TUMBLING_MS)))
        .apply(|a, b| Out::Pair { key: a.0, start: window_start(a.1, TUMBLING_MS), first: a.2, second: b.2 })
        .uid("window-join");
    let intervals = firsts
        .key_by(|a| a.0)
        .interval_join(&seconds.key_by(|b| b.0))
        .between(LOWER, UPPER)
        .process(|a, b| Out::Interval { key: a.0, first: a.2, second: b.2, at: a.1.max(b.1) })
        .uid("interval-join");
    let out = elements.union(&[top, pairs, intervals]).collect();
    Run { env, out }
}

fn raw_events() -> impl Strategy<Value = Vec<(u8, u8, u8)>> {
    proptest::collection::vec((0u8..4, 0u8..12, 0u8..40), 1..120)
}

fn check(
    raw: Vec<(u8, u8, u8)>,
    parallelism: (usize, usize),
    cut: f64,
    fail: f64,
    sled: bool,
) -> Result<(), TestCaseError> {
    let events = events(&raw);
    let expected = model(&events);
    let len = events.len() as f64;
    let got = stopped_and_restored((job, job), events, parallelism, (len * cut) as u64, (len * fail) as u64, sled);
    let missing: Vec<_> = expected.iter().filter(|o| !got.contains(o)).take(5).collect();
    let extra: Vec<_> = got.iter().filter(|o| !expected.contains(o)).take(5).collect();
    prop_assert!(missing.is_empty() && extra.is_empty(), "missing {:?}, extra {:?}", missing, extra);
    prop_assert_eq!(got, expected);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// On the heap backend.
    #[test]
    fn joins_and_window_functions_match_their_models_on_the_heap(
        raw in raw_events(), before in 1usize..=4, after in 1usize..=4, cut in 0.0..1.0f64, fail in 0.0..1.0f64,
    ) {
        check(raw, (before, after), cut, fail, false)?;
    }

    /// On the sled backend: the same results with all keyed state on disk.
    #[test]
    fn joins_and_window_functions_match_their_models_on_sled(
        raw in raw_events(), before in 1usize..=4, after in 1usize..=4, cut in 0.0..1.0f64, fail in 0.0..1.0f64,
    ) {
        check(raw, (before, after), cut, fail, true)?;
    }
}

/// An interval join's bounds are checked when the job starts, with a message that says which.
#[test]
fn an_interval_join_whose_lower_bound_exceeds_its_upper_is_refused() {
    let env = StreamEnvironment::new();
    let time = WatermarkStrategy::monotonous();
    let a = env.from_iter(vec![(1i64, 1u8)]).assign_timestamps_and_watermarks(time.clone(), |e| e.0);
    let b = env.from_iter(vec![(1i64, 1u8)]).assign_timestamps_and_watermarks(time, |e| e.0);
    let _ = a.key_by(|e| e.1).interval_join(&b.key_by(|e| e.1)).between(5, -5).process(|x, y| (x.0, y.0)).collect();
    let error = env.execute("bad bounds").and_then(|job| job.wait()).unwrap_err().to_string();
    assert!(error.contains("lower bound (5 ms) exceeds its upper bound (-5 ms)"), "{error}");
}

/// Records without event time cannot be placed in an interval: they go to the dead-letter
/// output, the others join as usual.
#[test]
fn interval_join_records_without_event_time_are_dead_letters() {
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let a =
        env.from_iter(vec![(10i64, 1u8)]).assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |e| e.0);
    let untimed = env.from_iter(vec![(12i64, 1u8)]);
    let joined =
        a.key_by(|e| e.1).interval_join(&untimed.key_by(|e| e.1)).between(0, 5).process(|x, y| (x.0, y.0)).uid("join");
    let (pairs, dead) = (joined.collect(), joined.dead_letters::<Either<(i64, u8), (i64, u8)>>().collect());
    env.execute("untimed").unwrap().wait().unwrap();
    assert_eq!(pairs.take(), vec![]);
    let dead = dead.take();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].input, Either::Second((12, 1)));
    assert!(dead[0].error.contains("needs event time"), "{}", dead[0].error);
}
