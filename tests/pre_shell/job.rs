//! The job whose savepoint `fixture.bin` holds, as eddy wrote it before its keyed operators
//! ran in one shell with their state in the keyed state store: every kind of keyed operator
//! (two-stage and single-stage windows, sessions, count- and time-triggered windows, a
//! rolling sum, a process function with state and timers) over one event stream.
//!
//! The same code built at the commit before the shell ran the first half of the events at
//! parallelism 2, stopped with a savepoint, and wrote `fixture.bin` (the savepoint's
//! operators) and `first_half.json` (what it emitted); see `tests/pre_shell_savepoint.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eddy::prelude::*;

/// Events in all.
pub const EVENTS: u64 = 600;
/// The first run stops with a savepoint once it has read this many.
pub const HALF: u64 = 300;
/// Keys.
pub const KEYS: u64 = 5;
/// Session gap, ms.
pub const GAP_MS: i64 = 100;

/// Event `i`: key `i % KEYS`, at `i * 7` ms, with a 1 s pause after every 40 events (so each
/// key has sessions), and value `i`.
pub fn event(i: u64) -> (u64, i64, u64) {
    (i % KEYS, i as i64 * 7 + (i / 40) as i64 * 1_000, i)
}

/// What the job emits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Out {
    /// A 500 ms tumbling window's count (two stages: pre-aggregation, keyed merge).
    Tumbling {
        key: u64,
        start: i64,
        count: u64,
    },
    /// A 300 ms tumbling window's sum (one stage: it has a late-data side output).
    Sum {
        key: u64,
        start: i64,
        sum: u64,
    },
    /// A session's count.
    Session {
        key: u64,
        start: i64,
        end: i64,
        count: u64,
    },
    /// A global window firing every third record of its key.
    Counted {
        key: u64,
        count: u64,
    },
    /// A 1 s window's count, fired early every 250 ms of event time.
    Early {
        key: u64,
        start: i64,
        count: u64,
    },
    /// The key's running sum.
    Running {
        key: u64,
        sum: u64,
    },
    /// The key's running count, from value state, and its timers at the end of each second.
    Processed {
        key: u64,
        count: u64,
    },
    Timer {
        key: u64,
        at: i64,
    },
}

/// A generator whose records up to `limit` come out; past it, it waits (emits nothing).
pub struct Paused {
    next: u64,
    limit: Arc<AtomicU64>,
}

impl Source<(u64, i64, u64)> for Paused {
    fn poll_next(&mut self, out: &mut Vec<(u64, i64, u64)>, max: usize) -> Result<SourcePoll, BoxError> {
        let limit = self.limit.load(Ordering::SeqCst).min(EVENTS);
        if self.next >= EVENTS {
            return Ok(SourcePoll::Done);
        }
        if self.next >= limit {
            std::thread::sleep(Duration::from_millis(5));
            return Ok(SourcePoll::Pending);
        }
        while out.len() < max && self.next < limit {
            out.push(event(self.next));
            self.next += 1;
        }
        Ok(SourcePoll::Ready)
    }

    fn snapshot(&mut self) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        Ok(Some(vec![self.next.to_be_bytes().to_vec()]))
    }
}

/// Collects into a shared list.
struct Shared(Arc<Mutex<Vec<Out>>>);

impl Sink<Out> for Shared {
    fn write(&mut self, value: Out, _: Timestamp) -> Result<(), BoxError> {
        self.0.lock().unwrap().push(value);
        Ok(())
    }
}

/// Each key's running count in value state, and an event-time timer at the end of the
/// second of each of its records.
#[derive(Clone)]
struct CountAndTime;

impl KeyedProcessFunction<u64, (u64, i64, u64), Out> for CountAndTime {
    fn process_element(&mut self, e: &(u64, i64, u64), ctx: &mut KeyedContext<'_, u64, Out>) -> Result<(), BoxError> {
        let state = ctx.state().value_state(&ValueStateDescriptor::<u64>::new("count"))?;
        let count = state.value()?.unwrap_or(0) + 1;
        state.update(count)?;
        ctx.register_event_time_timer(e.1 - e.1 % 1_000 + 999)?;
        ctx.collect(Out::Processed { key: e.0, count });
        Ok(())
    }

    fn on_timer(&mut self, at: i64, ctx: &mut KeyedContext<'_, u64, Out>) -> Result<(), BoxError> {
        let key = *ctx.current_key();
        ctx.collect(Out::Timer { key, at });
        Ok(())
    }
}

/// Sums the third field.
#[derive(Clone)]
struct SumValues;

impl AggregateFunction<(u64, i64, u64)> for SumValues {
    type Acc = u64;
    type Out = u64;
    fn create_accumulator(&self) -> u64 {
        0
    }
    fn add(&self, acc: &mut u64, e: (u64, i64, u64)) {
        *acc += e.2;
    }
    fn get_result(&self, acc: u64) -> u64 {
        acc
    }
    fn merge(&self, acc: &mut u64, other: u64) {
        *acc += other;
    }
}

/// Builds the job on `env`: events up to `limit` (the source waits past it), into `out`.
pub fn build(env: &StreamEnvironment, limit: Arc<AtomicU64>, out: Arc<Mutex<Vec<Out>>>) {
    let create_limit = limit.clone();
    let events = env
        .add_replayable_source(
            "events",
            move |_, _| Ok(Paused { next: 0, limit: create_limit.clone() }),
            move |splits| {
                let next = splits.iter().map(|s| u64::from_be_bytes(s[..8].try_into().unwrap())).max().unwrap_or(0);
                Ok(Paused { next, limit: limit.clone() })
            },
        )
        .uid("events")
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |e: &(u64, i64, u64)| e.1);
    let keyed = events.key_by(|e: &(u64, i64, u64)| e.0);
    let ms = Duration::from_millis;
    let tumbling = keyed
        .window(TumblingEventTimeWindows::of(ms(500)))
        .aggregate_with(Count, |k, w, count| Out::Tumbling { key: *k, start: w.start, count })
        .uid("tumbling");
    let late = OutputTag::<(u64, i64, u64)>::new("late");
    let sums = keyed
        .window(TumblingEventTimeWindows::of(ms(300)))
        .allowed_lateness(ms(50))
        .side_output_late_data(&late)
        .aggregate_with(SumValues, |k, w, sum| Out::Sum { key: *k, start: w.start, sum })
        .uid("sums");
    let sessions = keyed
        .window(EventTimeSessionWindows::with_gap(ms(GAP_MS as u64)))
        .aggregate_with(Count, |k, w, count| Out::Session { key: *k, start: w.start, end: w.end, count })
        .uid("sessions");
    let counted = keyed
        .window(GlobalWindows::create())
        .trigger(CountTrigger::of(3))
        .aggregate_with(Count, |k, _, count| Out::Counted { key: *k, count })
        .uid("counted");
    let early = keyed
        .window(TumblingEventTimeWindows::of(ms(1_000)))
        .trigger(ContinuousEventTimeTrigger::of(ms(250)))
        .aggregate_with(Count, |k, w, count| Out::Early { key: *k, start: w.start, count })
        .uid("early");
    let running = keyed.sum(|e| &mut e.2).uid("running").map(|e| Out::Running { key: e.0, sum: e.2 });
    let processed = keyed.process(CountAndTime).uid("process");
    tumbling
        .union(&[sums, sessions, counted, early, running, processed])
        .add_sink("Shared", move |_, _| Ok(Shared(out.clone())))
        .set_parallelism(1);
}
