//! Timestamps at the ends of the `i64` time line, end to end: the two markers (`i64::MIN`,
//! "no timestamp"; `i64::MAX`, the end-of-input watermark) are dead-lettered with the reason
//! by the timestamp assigner and by a split source alike, and the event times next to them land in windows
//! clipped to the time line, never in wrapped ones. Expected windows are worked out by hand
//! below (Euclidean remainders of the extreme values), not with the library's arithmetic.

use std::time::Duration;

use eddy::core::time::{MAX_TIMESTAMP, MIN_TIMESTAMP};
use eddy::prelude::*;

/// (key, event time).
type Event = (&'static str, i64);

/// `MIN_TIMESTAMP` (−9223372036854775807) is 4193 past a multiple of 5000, so its 5 s window
/// would start 4193 ms before it, below `i64::MIN`: it starts at `i64::MIN` instead, and
/// ends 807 ms after it.
const FIRST_END: i64 = -9_223_372_036_854_775_000;
/// `MAX_TIMESTAMP` (9223372036854775806) is 806 past a multiple of 5000: its 5 s window
/// starts there and would end past `i64::MAX`, so it ends at `i64::MAX`.
const LAST_START: i64 = 9_223_372_036_854_775_000;

fn events() -> Vec<Event> {
    vec![
        ("a", i64::MIN),
        ("a", MIN_TIMESTAMP),
        ("a", MIN_TIMESTAMP + 1),
        ("b", -1),
        ("b", 0),
        ("c", MAX_TIMESTAMP - 1),
        ("c", MAX_TIMESTAMP),
        ("c", i64::MAX),
    ]
}

/// (key, window start, window end, count, the result's event time).
type Row = (String, i64, i64, u64, Option<i64>);

/// The windowed counts of `events`, with each result's own timestamp, and the dead letters.
fn windowed<A: WindowAssigner>(assigner: A, events: Vec<Event>) -> (Vec<Row>, Vec<DeadLetter<Event>>) {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let stamped = env.from_iter(events).assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |e| e.1);
    let dead = stamped.dead_letters::<Event>().collect();
    let rows = stamped
        .key_by(|e: &Event| e.0.to_string())
        .window(assigner)
        .aggregate_with(Count, |key, window, n| (key.clone(), window.start, window.end, n))
        .process(|(k, s, e, n), ctx: &mut ProcessContext<'_, Row>| ctx.collect((k, s, e, n, ctx.timestamp())))
        .collect();
    env.execute("extreme timestamps").unwrap().wait().unwrap();
    let mut rows = rows.take();
    rows.sort();
    let mut dead = dead.take();
    dead.sort();
    (rows, dead)
}

fn row(key: &str, start: i64, end: i64, count: u64) -> Row {
    (key.to_string(), start, end, count, Some(end - 1))
}

#[test]
fn the_markers_are_dead_lettered_with_the_reason() {
    let (_, dead) = windowed(TumblingEventTimeWindows::of(Duration::from_secs(5)), events());
    let inputs: Vec<Event> = dead.iter().map(|d| d.input).collect();
    assert_eq!(inputs, [("a", i64::MIN), ("c", i64::MAX)]);
    assert!(dead[0].error.contains("reserved for \"no timestamp\""), "{}", dead[0].error);
    assert!(dead[1].error.contains("reserved for the end-of-input watermark"), "{}", dead[1].error);
}

/// The events, read by a split source that gives each record its event time itself.
struct Events;

struct EventsReader(Vec<Event>);

impl SplitSource<Event> for Events {
    type Reader = EventsReader;

    fn open(&self, _: &ReaderContext) -> Result<EventsReader, BoxError> {
        Ok(EventsReader(events()))
    }
}

impl SourceReader<Event> for EventsReader {
    fn poll(&mut self, out: &mut SourceOutput<Event>, _: usize) -> Result<SourcePoll, BoxError> {
        let split = out.add_split("events-0");
        for event in self.0.drain(..) {
            out.collect_in(split, event, event.1);
        }
        out.finish_split(split);
        Ok(SourcePoll::Done)
    }

    fn snapshot_splits(&mut self, _: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        Ok(None)
    }
}

#[test]
fn a_split_source_dead_letters_the_markers_as_the_assigner_does() {
    let assigner = || TumblingEventTimeWindows::of(Duration::from_secs(5));
    let env = StreamEnvironment::new();
    let read = env.from_source(Events, WatermarkStrategy::monotonous(), "events").set_parallelism(1);
    let dead = read.dead_letters::<RawRecord>().collect();
    let rows = read
        .key_by(|e: &Event| e.0.to_string())
        .window(assigner())
        .aggregate_with(Count, |key, window, n| (key.clone(), window.start, window.end, n))
        .process(|(k, s, e, n), ctx: &mut ProcessContext<'_, Row>| ctx.collect((k, s, e, n, ctx.timestamp())))
        .collect();
    env.execute("marker timestamps from a source").unwrap().wait().unwrap();
    let mut rows = rows.take();
    rows.sort();
    let (assigned, assigned_dead) = windowed(assigner(), events());
    assert_eq!(rows, assigned, "the same windows as with the assigner");
    let dead = dead.take();
    let mut got: Vec<(&str, i64, &str)> =
        dead.iter().map(|d| (d.input.split.as_str(), d.input.timestamp, d.error.as_str())).collect();
    got.sort_by_key(|d| d.1);
    let want: Vec<(&str, i64, &str)> =
        assigned_dead.iter().map(|d| ("events-0", d.input.1, d.error.as_str())).collect();
    assert_eq!(got, want, "the same records rejected, with the same reasons");
}

#[test]
fn tumbling_windows_at_both_ends_are_clipped_not_wrapped() {
    let (rows, _) = windowed(TumblingEventTimeWindows::of(Duration::from_secs(5)), events());
    let want = vec![
        row("a", i64::MIN, FIRST_END, 2),
        row("b", -5_000, 0, 1),
        row("b", 0, 5_000, 1),
        // The last window's result carries i64::MAX − 1: the latest event time, not a marker.
        row("c", LAST_START, i64::MAX, 2),
    ];
    assert_eq!(rows, want);
}

#[test]
fn sliding_windows_at_both_ends_are_clipped_not_wrapped() {
    // 10 s windows every 5 s: each record is in the window starting at its 5 s boundary and
    // in the one before. At the top both would end past i64::MAX, so both end there.
    let (rows, _) = windowed(SlidingEventTimeWindows::of(Duration::from_secs(10), Duration::from_secs(5)), events());
    let want = vec![
        // Both windows of MIN_TIMESTAMP start below i64::MIN; they end 807 and 5807 ms after it.
        row("a", i64::MIN, FIRST_END, 2),
        row("a", i64::MIN, FIRST_END + 5_000, 2),
        row("b", -10_000, 0, 1),
        row("b", -5_000, 5_000, 2),
        row("b", 0, 10_000, 1),
        row("c", LAST_START - 5_000, i64::MAX, 2),
        row("c", LAST_START, i64::MAX, 2),
    ];
    assert_eq!(rows, want);
}

#[test]
fn sessions_at_the_top_of_the_time_line_end_at_i64_max() {
    let (rows, _) = windowed(EventTimeSessionWindows::with_gap(Duration::from_secs(1)), events());
    let want = vec![
        row("a", MIN_TIMESTAMP, MIN_TIMESTAMP + 1 + 1_000, 2),
        row("b", -1, 1_000, 2),
        row("c", MAX_TIMESTAMP - 1, i64::MAX, 2),
    ];
    assert_eq!(rows, want);
}

#[test]
fn a_punctuated_watermark_stays_after_its_record_when_a_neighbour_is_dead_lettered() {
    // (name, timestamp, watermark it carries).
    type Marked = (&'static str, i64, Option<i64>);
    let input: Vec<Marked> = vec![
        ("r1", 10, Some(10)),
        ("bad", i64::MIN, Some(999)),
        ("r2", 20, None),
        ("r3", 30, Some(30)),
        ("worse", i64::MAX, None),
        ("r4", 40, None),
    ];
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let strategy = WatermarkStrategy::for_generator(Punctuated(|m: &Marked, _| m.2));
    let seen = env
        .from_iter(input)
        .assign_timestamps_and_watermarks(strategy, |m| m.1)
        .process(|m: Marked, ctx: &mut ProcessContext<'_, (&str, i64)>| ctx.collect((m.0, ctx.current_watermark())))
        .collect();
    env.execute("punctuated").unwrap().wait().unwrap();
    // Each record sees the watermark of the records before it; the rejected ones carry none.
    assert_eq!(seen.take(), [("r1", i64::MIN), ("r2", 10), ("r3", 10), ("r4", 30)]);
}

/// What a timer saw: its key, its timestamp, and the context's event time.
type Fired = (String, i64, Option<i64>);

/// Registers event-time timers at both ends of the time line and emits what each sees.
#[derive(Clone)]
struct EdgeTimers;

impl KeyedProcessFunction<String, Event, Fired> for EdgeTimers {
    fn process_element(&mut self, _: &Event, ctx: &mut KeyedContext<'_, String, Fired>) -> Result<(), BoxError> {
        ctx.register_event_time_timer(i64::MIN)?;
        ctx.register_event_time_timer(i64::MAX)?;
        Ok(())
    }

    fn on_timer(&mut self, timestamp: i64, ctx: &mut KeyedContext<'_, String, Fired>) -> Result<(), BoxError> {
        let key = ctx.current_key().clone();
        ctx.collect((key, timestamp, ctx.timestamp()));
        Ok(())
    }
}

#[test]
fn timers_at_the_markers_fire_and_emit_event_times_not_markers() {
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let fired = env
        .from_iter(vec![("k", 5_000i64)])
        .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |e| e.1)
        .key_by(|e: &Event| e.0.to_string())
        .process(EdgeTimers);
    // What the timers emit flows on into an event-time window, as any record would.
    let windows = fired
        .key_by(|f: &Fired| f.0.clone())
        .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
        .aggregate_with(Count, |_, window, n| (window.start, n))
        .collect();
    let fired = fired.collect();
    env.execute("edge timers").unwrap().wait().unwrap();
    let k = || "k".to_string();
    assert_eq!(fired.take(), [(k(), i64::MIN, Some(MIN_TIMESTAMP)), (k(), i64::MAX, Some(MAX_TIMESTAMP))]);
    let mut windows = windows.take();
    windows.sort();
    assert_eq!(windows, [(i64::MIN, 1), (LAST_START, 1)]);
}

#[test]
fn collect_with_timestamp_never_emits_a_marker() {
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let seen = env
        .from_iter(vec![i64::MIN, 0, i64::MAX])
        .process(|ts: i64, ctx: &mut ProcessContext<'_, i64>| ctx.collect_with_timestamp(ts, ts))
        .process(|_: i64, ctx: &mut ProcessContext<'_, Option<i64>>| ctx.collect(ctx.timestamp()))
        .collect();
    env.execute("clamped").unwrap().wait().unwrap();
    assert_eq!(seen.take(), [Some(MIN_TIMESTAMP), Some(0), Some(MAX_TIMESTAMP)]);
}

/// (key, window start, window end, count).
type Counted = (String, i64, i64, u64);

/// Tumbling 5 s counts of `input` with `lateness`, watermarks punctuated by "wm" records;
/// returns the results and the records sent to the late side output.
fn with_lateness(input: Vec<Event>, lateness: Duration) -> (Vec<Counted>, Vec<Event>) {
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let late = OutputTag::<Event>::new("late");
    let strategy = WatermarkStrategy::for_generator(Punctuated(|e: &Event, ts| (e.0 == "wm").then_some(ts)));
    let counts = env
        .from_iter(input)
        .assign_timestamps_and_watermarks(strategy, |e| e.1)
        .key_by(|e: &Event| e.0.to_string())
        .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
        .allowed_lateness(lateness)
        .side_output_late_data(&late)
        .aggregate_with(Count, |key, window, n| (key.clone(), window.start, window.end, n));
    let too_late = counts.side_output(&late).collect();
    let counts = counts.collect();
    env.execute("lateness").unwrap().wait().unwrap();
    let mut counts = counts.take();
    counts.sort();
    (counts, too_late.take())
}

#[test]
fn allowed_lateness_saturates_at_the_end_of_time() {
    // The watermark reaches the last event time, firing the last window; a record for it
    // that comes after is within any allowed lateness (its cleanup time saturates at
    // i64::MAX, where wrapping would put it in the past), so the window fires again.
    let input = vec![("c", LAST_START), ("wm", MAX_TIMESTAMP), ("c", MAX_TIMESTAMP)];
    for lateness in [Duration::from_millis(1), Duration::from_secs(3600), Duration::MAX] {
        let (counts, too_late) = with_lateness(input.clone(), lateness);
        let c = |n| ("c".to_string(), LAST_START, i64::MAX, n);
        assert_eq!(counts, [c(1), c(2), ("wm".to_string(), LAST_START, i64::MAX, 1)], "{lateness:?}");
        assert_eq!(too_late, [], "{lateness:?}");
    }
    // At the start of time a lateness is an ordinary sum: the first window's max timestamp
    // (i64::MIN + 806) plus i64::MAX ms is 805 ms after the epoch, so behind a watermark at
    // 10 s a record for it is late, and behind one at 0 it is not.
    let input = vec![("a", MIN_TIMESTAMP), ("wm", 10_000), ("a", MIN_TIMESTAMP + 1)];
    let (counts, too_late) = with_lateness(input, Duration::MAX);
    assert_eq!(counts, [("a".to_string(), i64::MIN, FIRST_END, 1), ("wm".to_string(), 10_000, 15_000, 1)]);
    assert_eq!(too_late, [("a", MIN_TIMESTAMP + 1)]);
    let input = vec![("a", MIN_TIMESTAMP), ("wm", 0), ("a", MIN_TIMESTAMP + 1)];
    let (counts, _) = with_lateness(input, Duration::MAX);
    assert_eq!(counts[..2], [("a".to_string(), i64::MIN, FIRST_END, 1), ("a".to_string(), i64::MIN, FIRST_END, 2)]);
}
