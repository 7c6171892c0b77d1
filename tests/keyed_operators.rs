//! Every keyed operator against its sequential model, on both state backends: windows (two
//! stages and one), sliding windows, sessions, a count trigger, a rolling sum and a process
//! function with state and timers run on one disordered stream at a random parallelism,
//! with checkpoints and an injected failure, are stopped with a savepoint part way, and are
//! restored at another random parallelism; what both runs emit must be what the obvious
//! sequential computation over all events says.

use std::collections::{BTreeMap, BTreeSet};
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
const GAP_MS: i64 = 25;
const COUNT: u64 = 3;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Out {
    Tumbling { key: u8, start: i64, count: u64 },
    Single { key: u8, start: i64, sum: u64 },
    Sliding { key: u8, start: i64, sum: u64 },
    Session { key: u8, start: i64, end: i64, count: u64 },
    Counted { key: u8, count: u64 },
    Running { key: u8, sum: u64 },
    Processed { key: u8, count: u64 },
    Timer { key: u8, at: i64 },
}

/// The events: keys and values as generated, times advancing by `step` with some disorder
/// (never more than the watermark's bound).
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

/// What every operator emits for `events`, computed in order, one event at a time.
fn model(events: &[Event]) -> Vec<Out> {
    let mut out = Vec::new();
    let mut tumbling: BTreeMap<(u8, i64), u64> = BTreeMap::new();
    let mut single: BTreeMap<(u8, i64), u64> = BTreeMap::new();
    let mut sliding: BTreeMap<(u8, i64), u64> = BTreeMap::new();
    let mut times: BTreeMap<u8, Vec<i64>> = BTreeMap::new();
    let (mut counts, mut sums): (BTreeMap<u8, u64>, BTreeMap<u8, u64>) = Default::default();
    let mut timers = BTreeSet::new();
    for &(key, ts, value) in events {
        *tumbling.entry((key, window_start(ts, TUMBLING_MS))).or_default() += 1;
        *single.entry((key, window_start(ts, TUMBLING_MS))).or_default() += value;
        let last = window_start(ts, SLIDE_MS);
        for start in [last - SLIDE_MS, last] {
            *sliding.entry((key, start)).or_default() += value;
        }
        times.entry(key).or_default().push(ts);
        let n = counts.entry(key).or_default();
        *n += 1;
        if *n % COUNT == 0 {
            out.push(Out::Counted { key, count: *n });
        }
        out.push(Out::Processed { key, count: *n });
        let sum = sums.entry(key).or_default();
        *sum += value;
        out.push(Out::Running { key, sum: *sum });
        timers.insert((key, window_start(ts, TUMBLING_MS) + TUMBLING_MS - 1));
    }
    out.extend(tumbling.into_iter().map(|((key, start), count)| Out::Tumbling { key, start, count }));
    out.extend(single.into_iter().map(|((key, start), sum)| Out::Single { key, start, sum }));
    out.extend(sliding.into_iter().map(|((key, start), sum)| Out::Sliding { key, start, sum }));
    for (key, mut times) in times {
        // Sessions: runs of times no more than the gap apart ([t, t + gap) windows touch).
        times.sort();
        let (mut start, mut last, mut count) = (times[0], times[0], 0);
        for t in times {
            if t > last + GAP_MS {
                out.push(Out::Session { key, start, end: last + GAP_MS, count });
                (start, count) = (t, 0);
            }
            last = t;
            count += 1;
        }
        out.push(Out::Session { key, start, end: last + GAP_MS, count });
    }
    out.extend(timers.into_iter().map(|(key, at)| Out::Timer { key, at }));
    out.sort();
    out
}

/// A running count in value state, and a timer at the end of the record's tumbling window.
#[derive(Clone)]
struct CountWithTimers;

impl KeyedProcessFunction<u8, Event, Out> for CountWithTimers {
    fn process_element(&mut self, e: &Event, ctx: &mut KeyedContext<'_, u8, Out>) -> Result<(), BoxError> {
        let state = ctx.state().value_state(&ValueStateDescriptor::<u64>::new("count"))?;
        let count = state.value()?.unwrap_or(0) + 1;
        state.update(count)?;
        ctx.register_event_time_timer(window_start(e.1, TUMBLING_MS) + TUMBLING_MS - 1)?;
        ctx.collect(Out::Processed { key: e.0, count });
        Ok(())
    }

    fn on_timer(&mut self, at: i64, ctx: &mut KeyedContext<'_, u8, Out>) -> Result<(), BoxError> {
        let key = *ctx.current_key();
        ctx.collect(Out::Timer { key, at });
        Ok(())
    }
}

/// Sums values.
#[derive(Clone)]
struct Sum;

impl AggregateFunction<Event> for Sum {
    type Acc = u64;
    type Out = u64;
    fn create_accumulator(&self) -> u64 {
        0
    }
    fn add(&self, acc: &mut u64, e: Event) {
        *acc += e.2;
    }
    fn get_result(&self, acc: u64) -> u64 {
        acc
    }
    fn merge(&self, acc: &mut u64, other: u64) {
        *acc += other;
    }
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
            WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(DISORDER_MS as u64)),
            |e: &Event| e.1,
        )
        .set_parallelism(1);
    let keyed = stream.key_by(|e: &Event| e.0);
    let ms = |n: i64| Duration::from_millis(n as u64);
    let tumbling = keyed
        .window(TumblingEventTimeWindows::of(ms(TUMBLING_MS)))
        .aggregate_with(Count, |&key, w, count| Out::Tumbling { key, start: w.start, count })
        .uid("tumbling");
    let single = keyed
        .window(TumblingEventTimeWindows::of(ms(TUMBLING_MS)))
        .allowed_lateness(ms(15))
        .side_output_late_data(&OutputTag::new("late"))
        .aggregate_with(Sum, |&key, w, sum| Out::Single { key, start: w.start, sum })
        .uid("single");
    let sliding = keyed
        .window(SlidingEventTimeWindows::of(ms(2 * SLIDE_MS), ms(SLIDE_MS)))
        .aggregate_with(Sum, |&key, w, sum| Out::Sliding { key, start: w.start, sum })
        .uid("sliding");
    let sessions = keyed
        .window(EventTimeSessionWindows::with_gap(ms(GAP_MS)))
        .aggregate_with(Count, |&key, w, count| Out::Session { key, start: w.start, end: w.end, count })
        .uid("sessions");
    let counted = keyed
        .window(GlobalWindows::create())
        .trigger(CountTrigger::of(COUNT))
        .aggregate_with(Count, |&key, _, count| Out::Counted { key, count })
        .uid("counted");
    let running = keyed.sum(|e| &mut e.2).uid("running").map(|e| Out::Running { key: e.0, sum: e.2 });
    let processed = keyed.process(CountWithTimers).uid("process");
    let out = tumbling.union(&[single, sliding, sessions, counted, running, processed]).collect();
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
    fn every_keyed_operator_matches_its_model_on_the_heap(
        raw in raw_events(), before in 1usize..=4, after in 1usize..=4, cut in 0.0..1.0f64, fail in 0.0..1.0f64,
    ) {
        check(raw, (before, after), cut, fail, false)?;
    }

    /// On the sled backend: the same results with all keyed state on disk.
    #[test]
    fn every_keyed_operator_matches_its_model_on_sled(
        raw in raw_events(), before in 1usize..=4, after in 1usize..=4, cut in 0.0..1.0f64, fail in 0.0..1.0f64,
    ) {
        check(raw, (before, after), cut, fail, true)?;
    }
}
