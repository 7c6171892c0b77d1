//! Whole pipelines against the obvious sequential model: for random inputs, parallelism and
//! batch sizes, what eddy computes must equal what a plain loop over a `Vec` computes.
//!
//! Where the runtime's arrival order is not part of the contract (several subtasks, a
//! shuffle), outputs are compared as sorted multisets; where it is (one key's running values
//! behind a single-subtask source), sequences are compared exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use eddy::prelude::*;
use proptest::collection::vec;
use proptest::prelude::*;

/// A keyed event: (key, event time in ms, value).
type Event = (u8, i64, i64);

/// Runs the job defined on `env` to completion; a failing job fails the test case.
fn run(env: &StreamEnvironment) -> JobResult {
    env.execute("pipeline under test").expect("job starts").wait().expect("job succeeds")
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

// ---------------------------------------------------------------------------------------
// Stateless chains
// ---------------------------------------------------------------------------------------

fn times_three_plus_one(x: i64) -> i64 {
    x * 3 + 1
}

fn is_odd(x: &i64) -> bool {
    x.rem_euclid(2) == 1
}

/// Zero, one or two copies, so flat_map both drops and multiplies records.
fn copies(x: i64) -> Vec<i64> {
    vec![x; x.rem_euclid(3) as usize]
}

/// The model of `map(times_three_plus_one).filter(is_odd).flat_map(copies)`.
fn chain_model(input: &[i64]) -> Vec<i64> {
    let mut out = Vec::new();
    for &x in input {
        let y = times_three_plus_one(x);
        if is_odd(&y) {
            out.extend(copies(y));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// One thread runs the whole chain (a single-subtask source, parallelism 1), so even the
    /// order of the output must match the model.
    #[test]
    fn chain_at_parallelism_one_keeps_input_order(
        input in vec(-1_000i64..1_000, 0..300),
        batch_size in 1usize..=64,
    ) {
        let env = StreamEnvironment::new();
        env.set_parallelism(1).set_batch_size(batch_size);
        let out = env.from_iter(input.clone()).map(times_three_plus_one).filter(is_odd).flat_map(copies).collect();
        run(&env);
        prop_assert_eq!(out.take(), chain_model(&input));
    }

    /// Each operator at its own parallelism, joined by rebalance and shuffle edges: records
    /// are spread differently but none is lost or duplicated.
    #[test]
    fn chain_across_parallel_subtasks_keeps_every_record(
        input in vec(-1_000i64..1_000, 0..300),
        parallelism in (1usize..=4, 1usize..=4, 1usize..=4, 1usize..=4),
        batch_size in 1usize..=64,
    ) {
        let (source_p, map_p, filter_p, flat_map_p) = parallelism;
        let env = StreamEnvironment::new();
        env.set_parallelism(source_p).set_batch_size(batch_size);
        let out = env
            .from_collection(input.clone())
            .map(times_three_plus_one)
            .set_parallelism(map_p)
            .rebalance()
            .filter(is_odd)
            .set_parallelism(filter_p)
            .shuffle()
            .flat_map(copies)
            .set_parallelism(flat_map_p)
            .collect();
        run(&env);
        prop_assert_eq!(sorted(out.take()), sorted(chain_model(&input)));
    }

    /// A broadcast edge hands every record to every subtask of the next operator.
    #[test]
    fn broadcast_delivers_each_record_to_every_subtask(
        input in vec(-1_000i64..1_000, 0..200),
        source_p in 1usize..=4,
        broadcast_p in 1usize..=4,
        batch_size in 1usize..=64,
    ) {
        let env = StreamEnvironment::new();
        env.set_parallelism(source_p).set_batch_size(batch_size);
        let out = env.from_collection(input.clone()).broadcast().map(|x: i64| x).set_parallelism(broadcast_p).collect();
        run(&env);
        let expected: Vec<i64> = input.iter().flat_map(|&x| vec![x; broadcast_p]).collect();
        prop_assert_eq!(sorted(out.take()), sorted(expected));
    }

    /// A union holds every record of every input once, whatever the inputs' and the
    /// union's parallelism (equal parallelism gives forward edges, unequal ones rebalance).
    #[test]
    fn union_merges_every_record_of_every_input(
        inputs in vec(vec(-1_000i64..1_000, 0..100), 1..=3),
        input_p in vec(1usize..=4, 3),
        union_p in 1usize..=4,
        batch_size in 1usize..=64,
    ) {
        let env = StreamEnvironment::new();
        env.set_parallelism(union_p).set_batch_size(batch_size);
        let streams: Vec<DataStream<i64>> = inputs
            .iter()
            .zip(&input_p)
            .map(|(input, &p)| env.from_collection(input.clone()).set_parallelism(p))
            .collect();
        let out = streams[0].union(&streams[1..]).set_parallelism(union_p).collect();
        run(&env);
        prop_assert_eq!(sorted(out.take()), sorted(inputs.concat()));
    }
}

// ---------------------------------------------------------------------------------------
// Rolling keyed aggregations
// ---------------------------------------------------------------------------------------

/// Order-sensitive, so a reduce that saw a key's records out of order gives another value.
fn polynomial(acc: i64, next: i64) -> i64 {
    acc.wrapping_mul(31).wrapping_add(next)
}

/// Each key's running values, in input order: the first record as is, then `combine`d.
fn rolling_model(input: &[(u8, i64)], combine: impl Fn(i64, i64) -> i64) -> BTreeMap<u8, Vec<i64>> {
    let mut current: BTreeMap<u8, i64> = BTreeMap::new();
    let mut out: BTreeMap<u8, Vec<i64>> = BTreeMap::new();
    for &(key, value) in input {
        let next = match current.get(&key) {
            Some(&acc) => combine(acc, value),
            None => value,
        };
        current.insert(key, next);
        out.entry(key).or_default().push(next);
    }
    out
}

/// Groups a job's output by key, keeping arrival order within each key.
fn per_key(output: Vec<(u8, i64)>) -> BTreeMap<u8, Vec<i64>> {
    let mut out: BTreeMap<u8, Vec<i64>> = BTreeMap::new();
    for (key, value) in output {
        out.entry(key).or_default().push(value);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// `from_iter` has one source subtask, so each key's records reach their keyed subtask in
    /// input order; the sink runs at the keyed operators' parallelism (a chained forward
    /// edge), so that order also reaches the collected output.
    #[test]
    fn rolling_aggregations_emit_each_keys_running_value_in_order(
        input in vec((0u8..8, -1_000i64..1_000), 0..300),
        keyed_p in 1usize..=4,
        batch_size in 1usize..=64,
    ) {
        let env = StreamEnvironment::new();
        env.set_parallelism(keyed_p).set_batch_size(batch_size);
        let keyed = env.from_iter(input.clone()).key_by(|e: &(u8, i64)| e.0);
        let sums = keyed.sum(|e| &mut e.1).set_parallelism(keyed_p).collect();
        let maxes = keyed.max(|e| &mut e.1).set_parallelism(keyed_p).collect();
        let reduced = keyed.reduce(|a, b| (a.0, polynomial(a.1, b.1))).set_parallelism(keyed_p).collect();
        run(&env);
        prop_assert_eq!(per_key(sums.take()), rolling_model(&input, |a, b| a + b), "sum");
        prop_assert_eq!(per_key(maxes.take()), rolling_model(&input, i64::max), "max");
        prop_assert_eq!(per_key(reduced.take()), rolling_model(&input, polynomial), "reduce");
    }
}

// ---------------------------------------------------------------------------------------
// Tumbling event-time windows
// ---------------------------------------------------------------------------------------

/// A windowing job's settings and input.
#[derive(Debug, Clone)]
struct WindowCase {
    parallelism: usize,
    batch_size: usize,
    window_ms: i64,
    bound_ms: i64,
    interval_ms: u64,
    events: Vec<Event>,
}

/// Events whose timestamps trail the highest one so far by at most `bound_ms`: a drifting
/// base time minus a jitter within the bound. Any subsequence keeps that property, so every
/// source subtask's watermark stays behind every record it has not yet sent: nothing is late.
fn window_case() -> impl Strategy<Value = WindowCase> {
    let raw_events = vec((0u8..6, 0i64..=50, 0i64..=1_000, -1_000i64..1_000), 0..300);
    (1usize..=4, 1usize..=64, 1i64..=200, 0i64..=100, 0u64..=3, -10_000i64..10_000, raw_events).prop_map(
        |(parallelism, batch_size, window_ms, bound_ms, interval_ms, start, raw_events)| {
            let mut base = start;
            let events = raw_events
                .into_iter()
                .map(|(key, gap, jitter, value)| {
                    base += gap;
                    (key, base - jitter % (bound_ms + 1), value)
                })
                .collect();
            WindowCase { parallelism, batch_size, window_ms, bound_ms, interval_ms, events }
        },
    )
}

fn window_start(timestamp: i64, size: i64) -> i64 {
    timestamp - timestamp.rem_euclid(size)
}

/// One key's window as the model computes it.
#[derive(Debug, Clone, Copy)]
struct WindowModel {
    count: u64,
    max_timestamp: i64,
    min_value: i64,
    sum: i64,
}

/// Every (key, window start) with its aggregates, by a plain loop.
fn windows_model(events: &[Event], size: i64) -> BTreeMap<(u8, i64), WindowModel> {
    let mut windows: BTreeMap<(u8, i64), WindowModel> = BTreeMap::new();
    for &(key, ts, value) in events {
        let w = windows.entry((key, window_start(ts, size))).or_insert(WindowModel {
            count: 0,
            max_timestamp: i64::MIN,
            min_value: i64::MAX,
            sum: 0,
        });
        w.count += 1;
        w.max_timestamp = w.max_timestamp.max(ts);
        w.min_value = w.min_value.min(value);
        w.sum += value;
    }
    windows
}

fn timestamp_of(e: &Event) -> i64 {
    e.1
}

fn key_of(e: &Event) -> u8 {
    e.0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Count, reduce and sum over the same windowed stream (three consumers of one source),
    /// at parallelism 1..=4 and batch sizes 1..=64, equal the model exactly.
    #[test]
    fn tumbling_windows_match_the_model_when_nothing_is_late(case in window_case()) {
        let env = StreamEnvironment::new();
        env.set_parallelism(case.parallelism).set_batch_size(case.batch_size);
        let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(case.bound_ms as u64))
            .with_interval(Duration::from_millis(case.interval_ms));
        let windowed = env
            .from_collection(case.events.clone())
            .assign_timestamps_and_watermarks(strategy, timestamp_of)
            .key_by(key_of)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(case.window_ms as u64)));
        let counts = windowed.aggregate_with(Count, |key, w, n| (*key, w.start, w.end, n)).collect();
        let reduced = windowed
            .reduce_with(|a, b| (a.0, a.1.max(b.1), a.2.min(b.2)), |key, w, r| (*key, w.start, r.1, r.2))
            .collect();
        // `sum` keeps the first record's other fields, so only key and sum are meaningful; the
        // result's event time must be the window's last millisecond.
        let sums = windowed
            .sum(|e| &mut e.2)
            .process(|e: Event, ctx: &mut ProcessContext<'_, (u8, Option<i64>, i64)>| {
                let timestamp = ctx.timestamp();
                ctx.collect((e.0, timestamp, e.2))
            })
            .collect();
        let result = run(&env);

        let model = windows_model(&case.events, case.window_ms);
        let size = case.window_ms;
        let expected_counts: Vec<_> = model.iter().map(|(&(k, s), w)| (k, s, s + size, w.count)).collect();
        let expected_reduced: Vec<_> = model.iter().map(|(&(k, s), w)| (k, s, w.max_timestamp, w.min_value)).collect();
        let expected_sums: Vec<_> = model.iter().map(|(&(k, s), w)| (k, Some(s + size - 1), w.sum)).collect();
        prop_assert_eq!(sorted(counts.take()), expected_counts, "count");
        prop_assert_eq!(sorted(reduced.take()), expected_reduced, "reduce");
        prop_assert_eq!(sorted(sums.take()), sorted(expected_sums), "sum");
        prop_assert_eq!(result.metrics.total_all("late_records_dropped"), 0);
    }
}

/// What the late-records job must produce: window counts, and how many records were late.
fn late_model(events: &[Event], size: i64) -> (Vec<(u8, i64, u64)>, u64) {
    let mut counts: BTreeMap<(u8, i64), u64> = BTreeMap::new();
    let mut late = 0;
    // With a watermark after every single record, the window operator's watermark when record
    // i arrives is `max(ts[..i]) - 1`; a window whose end is at most the highest earlier
    // timestamp has therefore fired, and the record is dropped.
    let mut max_before: Option<i64> = None;
    for &(key, ts, _) in events {
        let start = window_start(ts, size);
        if max_before.is_some_and(|max| start + size <= max) {
            late += 1;
        } else {
            *counts.entry((key, start)).or_default() += 1;
        }
        max_before = Some(max_before.map_or(ts, |max| max.max(ts)));
    }
    (counts.into_iter().map(|((k, s), n)| (k, s, n)).collect(), late)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Arbitrarily disordered timestamps, one subtask, batches of one record and a watermark
    /// after each batch: which records are late is then exact, so the model can tell.
    #[test]
    fn records_behind_a_fired_window_are_dropped_and_counted(
        events in vec((0u8..4, 0i64..1_000, Just(0i64)), 0..200),
        window_ms in 10i64..=100,
    ) {
        let env = StreamEnvironment::new();
        env.set_parallelism(1).set_batch_size(1);
        let strategy = WatermarkStrategy::monotonous().with_interval(Duration::ZERO);
        let counts = env
            .from_iter(events.clone())
            .assign_timestamps_and_watermarks(strategy, timestamp_of)
            .key_by(key_of)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(window_ms as u64)))
            .aggregate_with(Count, |key, w, n| (*key, w.start, n))
            .collect();
        let result = run(&env);
        let (expected_counts, expected_late) = late_model(&events, window_ms);
        prop_assert_eq!(sorted(counts.take()), expected_counts);
        prop_assert_eq!(result.metrics.total_all("late_records_dropped"), expected_late);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Sliding windows (any size and slide, so panes of gcd(size, slide)) equal a model that
    /// puts every record into every window containing it, at parallelism 1..=4.
    #[test]
    fn sliding_windows_match_the_model_when_nothing_is_late(case in window_case(), slide_raw in 1i64..=200) {
        let (size, slide) = (case.window_ms, slide_raw.min(case.window_ms * 2));
        let env = StreamEnvironment::new();
        env.set_parallelism(case.parallelism).set_batch_size(case.batch_size);
        let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(case.bound_ms as u64))
            .with_interval(Duration::from_millis(case.interval_ms));
        let assigner = SlidingEventTimeWindows::of(Duration::from_millis(size as u64), Duration::from_millis(slide as u64));
        let windowed = env
            .from_collection(case.events.clone())
            .assign_timestamps_and_watermarks(strategy, timestamp_of)
            .key_by(key_of)
            .window(assigner);
        let counts = windowed.aggregate_with(Count, |key, w, n| (*key, w.start, w.end, n)).collect();
        let sums = windowed.reduce_with(|a, b| (a.0, a.1, a.2 + b.2), |key, w, r| (*key, w.start, r.2)).collect();
        let result = run(&env);

        let mut model: BTreeMap<(u8, i64), (u64, i64)> = BTreeMap::new();
        for &(key, ts, value) in &case.events {
            // Every start s with s = 0 (mod slide) and s <= ts < s + size.
            let mut start = window_start(ts, slide);
            while start > ts - size {
                let w = model.entry((key, start)).or_default();
                w.0 += 1;
                w.1 += value;
                start -= slide;
            }
        }
        let expected_counts: Vec<_> = model.iter().map(|(&(k, s), w)| (k, s, s + size, w.0)).collect();
        let expected_sums: Vec<_> = model.iter().map(|(&(k, s), w)| (k, s, w.1)).collect();
        prop_assert_eq!(sorted(counts.take()), expected_counts, "count");
        prop_assert_eq!(sorted(sums.take()), expected_sums, "sum");
        prop_assert_eq!(result.metrics.total_all("late_records_dropped"), 0);
    }
}

/// The allowed-lateness scenario: with a watermark after every record, window [0, 10) fires
/// at 15, takes 7 within its lateness (firing again), is cleaned up at 25, and 8 is then late.
fn lateness_job(late_tag: Option<&OutputTag<Event>>) -> (Vec<(i64, u64)>, Vec<Event>, u64) {
    let env = StreamEnvironment::new();
    env.set_parallelism(1).set_batch_size(1);
    let events: Vec<Event> = [5, 15, 7, 25, 8].iter().map(|&ts| (1u8, ts, 0i64)).collect();
    let mut windowed = env
        .from_iter(events)
        .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous().with_interval(Duration::ZERO), timestamp_of)
        .key_by(key_of)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(10)))
        .allowed_lateness(Duration::from_millis(10));
    if let Some(tag) = late_tag {
        windowed = windowed.side_output_late_data(tag);
    }
    let counts = windowed.aggregate_with(Count, |_, w, n| (w.start, n));
    let late = late_tag.map(|tag| counts.side_output(tag).collect());
    let fired = counts.collect();
    let result = run(&env);
    (fired.take(), late.map(|l| l.take()).unwrap_or_default(), result.metrics.total_all("late_records_dropped"))
}

#[test]
fn allowed_lateness_refires_windows_and_then_drops_or_side_outputs_late_records() {
    // Flink's order: [0,10) fires with 1, again with 2 on the late 7; [10,20) and [20,30) once.
    let expected = vec![(0, 1), (0, 2), (10, 1), (20, 1)];
    let (fired, late, dropped) = lateness_job(None);
    assert_eq!(fired, expected, "two-stage windows");
    assert_eq!((late, dropped), (vec![], 1));
    let tag = OutputTag::new("late");
    let (fired, late, dropped) = lateness_job(Some(&tag));
    assert_eq!(fired, expected, "single-stage windows with a late side output");
    assert_eq!((late, dropped), (vec![(1, 8, 0)], 1));
}

/// Registers an event-time timer at `ts + delay` for every event; each firing emits
/// (key, timer timestamp) and counts the key's events so far in a value state.
#[derive(Clone)]
struct TimerProbe {
    delay: i64,
    seen: ValueStateDescriptor<u64>,
}

impl KeyedProcessFunction<u8, Event, (u8, i64, u64)> for TimerProbe {
    fn process_element(&mut self, e: &Event, ctx: &mut KeyedContext<'_, u8, (u8, i64, u64)>) -> Result<(), BoxError> {
        let seen = ctx.state().value_state(&self.seen)?;
        seen.update(seen.value()?.unwrap_or(0) + 1)?;
        ctx.register_event_time_timer(e.1 + self.delay)?;
        Ok(())
    }

    fn on_timer(&mut self, timestamp: i64, ctx: &mut KeyedContext<'_, u8, (u8, i64, u64)>) -> Result<(), BoxError> {
        let seen = ctx.state().value_state(&self.seen)?.value()?.unwrap_or(0);
        ctx.collect((*ctx.current_key(), timestamp, seen));
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Every distinct (key, time) timer fires exactly once, each key's in time order, after
    /// the key's state saw every event (the end of input fires all), on heap and sled.
    #[test]
    fn event_time_timers_fire_once_in_order_with_each_keys_state(
        events in vec((0u8..5, 0i64..2_000, 0i64..1), 0..200), delay in 0i64..500, sled: bool, parallelism in 1usize..=3,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let env = StreamEnvironment::new();
        env.set_parallelism(parallelism);
        if sled {
            env.set_state_dir(dir.path());
        }
        let probe = TimerProbe { delay, seen: ValueStateDescriptor::new("seen") };
        let fired = env
            .from_iter(events.clone())
            .assign_timestamps_and_watermarks(WatermarkStrategy::bounded_out_of_orderness(Duration::from_secs(10)), timestamp_of)
            .key_by(key_of)
            .process(probe)
            .collect();
        run(&env);

        let mut expected: BTreeMap<u8, std::collections::BTreeSet<i64>> = BTreeMap::new();
        let mut counts: BTreeMap<u8, u64> = BTreeMap::new();
        for &(key, ts, _) in &events {
            expected.entry(key).or_default().insert(ts + delay);
            *counts.entry(key).or_default() += 1;
        }
        let mut by_key: BTreeMap<u8, Vec<i64>> = BTreeMap::new();
        for (key, timestamp, seen) in fired.take() {
            // The bound outlasts the input, so every timer fires at the end, after all events.
            prop_assert_eq!(seen, counts[&key]);
            by_key.entry(key).or_default().push(timestamp);
        }
        let expected: BTreeMap<u8, Vec<i64>> = expected.into_iter().map(|(k, s)| (k, s.into_iter().collect())).collect();
        prop_assert_eq!(by_key, expected);
    }
}

/// Joins orders (id, amount) with payments (id, paid): whichever comes first waits in the
/// key's state for the other.
#[derive(Clone)]
struct OrderPaymentJoin {
    order: ValueStateDescriptor<i64>,
    payment: ValueStateDescriptor<i64>,
}

type Order = (u32, i64);
type Matched = (u32, i64, i64);

impl KeyedCoProcessFunction<u32, Order, Order, Matched> for OrderPaymentJoin {
    fn process_element1(&mut self, order: &Order, ctx: &mut KeyedContext<'_, u32, Matched>) -> Result<(), BoxError> {
        let payment = ctx.state().value_state(&self.payment)?;
        match payment.value()? {
            Some(paid) => ctx.collect((order.0, order.1, paid)),
            None => ctx.state().value_state(&self.order)?.update(order.1)?,
        }
        Ok(())
    }

    fn process_element2(&mut self, paid: &Order, ctx: &mut KeyedContext<'_, u32, Matched>) -> Result<(), BoxError> {
        let order = ctx.state().value_state(&self.order)?;
        match order.value()? {
            Some(amount) => ctx.collect((paid.0, amount, paid.1)),
            None => ctx.state().value_state(&self.payment)?.update(paid.1)?,
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Every id with both an order and a payment is matched exactly once, whatever the
    /// parallelism of the two inputs and of the join.
    #[test]
    fn connected_keyed_streams_share_each_keys_state(
        ids in vec((any::<bool>(), any::<bool>(), -100i64..100), 0..150),
        p_orders in 1usize..=3, p_payments in 1usize..=3, p_join in 1usize..=3,
    ) {
        let env = StreamEnvironment::new();
        let orders: Vec<Order> = ids.iter().enumerate().filter(|(_, e)| e.0).map(|(i, e)| (i as u32, e.2)).collect();
        let payments: Vec<Order> = ids.iter().enumerate().filter(|(_, e)| e.1).map(|(i, e)| (i as u32, -e.2)).collect();
        let join = OrderPaymentJoin { order: ValueStateDescriptor::new("order"), payment: ValueStateDescriptor::new("payment") };
        let matched = env
            .from_collection(orders.clone())
            .set_parallelism(p_orders)
            .connect(&env.from_collection(payments).set_parallelism(p_payments))
            .key_by(|o: &Order| o.0, |p: &Order| p.0)
            .process(join)
            .set_parallelism(p_join)
            .collect();
        run(&env);
        let expected: Vec<Matched> = ids.iter().enumerate().filter(|(_, e)| e.0 && e.1).map(|(i, e)| (i as u32, e.2, -e.2)).collect();
        prop_assert_eq!(sorted(matched.take()), expected);
    }
}

/// Flags events above the threshold in force at their time. Rules (time, threshold) are
/// broadcast; events wait in keyed state for an event-time timer at their own time, when
/// every rule up to then has arrived (the watermark is the minimum of both inputs).
#[derive(Clone)]
struct ThresholdAlerts {
    pending: ListStateDescriptor<(i64, i64)>,
}

type Rules = BTreeMap<i64, i64>;

impl KeyedBroadcastProcessFunction<u8, Event, (i64, i64), Rules, (u8, i64, i64)> for ThresholdAlerts {
    fn process_element(
        &mut self,
        e: &Event,
        _: &Rules,
        ctx: &mut KeyedContext<'_, u8, (u8, i64, i64)>,
    ) -> Result<(), BoxError> {
        ctx.state().list_state(&self.pending)?.add((e.1, e.2))?;
        ctx.register_event_time_timer(e.1)?;
        Ok(())
    }

    fn process_broadcast_element(&mut self, rule: &(i64, i64), rules: &mut Rules) -> Result<(), BoxError> {
        rules.insert(rule.0, rule.1);
        Ok(())
    }

    fn on_timer(
        &mut self,
        at: i64,
        rules: &Rules,
        ctx: &mut KeyedContext<'_, u8, (u8, i64, i64)>,
    ) -> Result<(), BoxError> {
        let pending = ctx.state().list_state(&self.pending)?;
        let (due, later): (Vec<_>, Vec<_>) = pending.get()?.into_iter().partition(|(ts, _)| *ts <= at);
        pending.update(later)?;
        let threshold = rules.range(..=at).next_back().map_or(i64::MAX, |(_, t)| *t);
        for (ts, value) in due.into_iter().filter(|(_, v)| *v > threshold) {
            ctx.collect((*ctx.current_key(), ts, value));
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Every subtask applies every broadcast rule: alerts equal a model that looks up the
    /// rule in force at each event's time.
    #[test]
    fn broadcast_rules_reach_every_keyed_subtask(
        events in vec((0u8..6, 0i64..1_000, 0i64..100), 0..150),
        rules in vec((0i64..1_000, 0i64..100), 1..10),
        parallelism in 1usize..=3,
    ) {
        let env = StreamEnvironment::new();
        env.set_parallelism(parallelism);
        let mut sorted_events = events.clone();
        sorted_events.sort_by_key(|e| e.1);
        let mut sorted_rules = rules.clone();
        sorted_rules.sort();
        let keyed = env
            .from_iter(sorted_events.clone())
            .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), timestamp_of)
            .key_by(key_of);
        let rule_stream = env
            .from_iter(sorted_rules.clone())
            .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |r: &(i64, i64)| r.0);
        let alerts = keyed
            .connect_broadcast(&rule_stream)
            .process(ThresholdAlerts { pending: ListStateDescriptor::new("pending") })
            .collect();
        run(&env);

        let model: Rules = sorted_rules.iter().copied().collect();
        let expected: Vec<(u8, i64, i64)> = sorted_events
            .iter()
            .filter(|e| e.2 > model.range(..=e.1).next_back().map_or(i64::MAX, |(_, t)| *t))
            .map(|e| (e.0, e.1, e.2))
            .collect();
        prop_assert_eq!(sorted(alerts.take()), sorted(expected));
    }
}

/// Sessions per key as the model computes them: sort the key's timestamps, start a new
/// session whenever the next one is `gap` or more past the previous (touching windows merge).
fn session_model(events: &[Event], gap: i64) -> Vec<(u8, i64, i64, u64, i64)> {
    let mut by_key: BTreeMap<u8, Vec<(i64, i64)>> = BTreeMap::new();
    for &(key, ts, value) in events {
        by_key.entry(key).or_default().push((ts, value));
    }
    let mut sessions = Vec::new();
    for (key, mut records) in by_key {
        records.sort();
        let (mut start, mut last, mut count, mut sum) = (records[0].0, records[0].0, 0, 0);
        for (ts, value) in records {
            if ts > last + gap {
                sessions.push((key, start, last + gap, count, sum));
                (start, count, sum) = (ts, 0, 0);
            }
            last = ts;
            count += 1;
            sum += value;
        }
        sessions.push((key, start, last + gap, count, sum));
    }
    sessions
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Session windows (merging) equal the model, with disorder inside the bound, at
    /// parallelism 1..=4.
    #[test]
    fn session_windows_match_the_model_when_nothing_is_late(case in window_case(), gap in 1i64..=120) {
        let env = StreamEnvironment::new();
        env.set_parallelism(case.parallelism).set_batch_size(case.batch_size);
        let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(case.bound_ms as u64))
            .with_interval(Duration::from_millis(case.interval_ms));
        let sessions = env
            .from_collection(case.events.clone())
            .assign_timestamps_and_watermarks(strategy, timestamp_of)
            .key_by(key_of)
            .window(EventTimeSessionWindows::with_gap(Duration::from_millis(gap as u64)))
            .aggregate_with(Count, |key, w, n| (*key, w.start, w.end, n))
            .collect();
        let sums = env
            .from_collection(case.events.clone())
            .assign_timestamps_and_watermarks(WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(case.bound_ms as u64)), timestamp_of)
            .key_by(key_of)
            .window(EventTimeSessionWindows::with_gap(Duration::from_millis(gap as u64)))
            .reduce_with(|a, b| (a.0, a.1, a.2 + b.2), |key, w, r| (*key, w.start, r.2))
            .collect();
        let result = run(&env);
        let model = session_model(&case.events, gap);
        let expected_counts: Vec<_> = model.iter().map(|&(k, s, e, n, _)| (k, s, e, n)).collect();
        let expected_sums: Vec<_> = model.iter().map(|&(k, s, _, _, sum)| (k, s, sum)).collect();
        prop_assert_eq!(sorted(sessions.take()), sorted(expected_counts), "count");
        prop_assert_eq!(sorted(sums.take()), sorted(expected_sums), "sum");
        prop_assert_eq!(result.metrics.total_all("late_records_dropped"), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Count windows (global windows fired every n records of a key): purging ones sum each
    /// block of n, plain ones the running total at every n-th record; a short last block is
    /// not emitted (Flink's countWindow).
    #[test]
    fn count_triggers_fire_every_n_records_of_a_key(
        events in vec((0u8..4, 0i64..1_000, -50i64..50), 0..200), n in 1u64..6, parallelism in 1usize..=3,
    ) {
        let env = StreamEnvironment::new();
        env.set_parallelism(parallelism);
        let keyed = env.from_iter(events.clone()).key_by(key_of);
        let blocks = keyed
            .window(GlobalWindows::create())
            .trigger(PurgingTrigger::of(CountTrigger::of(n)))
            .reduce_with(|a, b| (a.0, a.1, a.2 + b.2), |key, _, r| (*key, r.2))
            .collect();
        let running = keyed
            .window(GlobalWindows::create())
            .trigger(CountTrigger::of(n))
            .aggregate_with(Count, |key, _, c| (*key, c))
            .collect();
        run(&env);

        let mut per_key: BTreeMap<u8, Vec<i64>> = BTreeMap::new();
        for &(key, _, value) in &events {
            per_key.entry(key).or_default().push(value);
        }
        let mut expected_blocks = Vec::new();
        let mut expected_running = Vec::new();
        for (key, values) in &per_key {
            for (i, block) in values.chunks(n as usize).enumerate() {
                if block.len() == n as usize {
                    expected_blocks.push((*key, block.iter().sum::<i64>()));
                    expected_running.push((*key, (i as u64 + 1) * n));
                }
            }
        }
        prop_assert_eq!(sorted(blocks.take()), sorted(expected_blocks));
        prop_assert_eq!(sorted(running.take()), sorted(expected_running));
    }

    /// An explicit event-time trigger on tumbling windows gives the default's results (in one
    /// stage); a continuous trigger fires early, and its last firing per window is the total.
    #[test]
    fn event_time_and_continuous_triggers_match_the_window_model(case in window_case(), every in 1i64..=50) {
        let env = StreamEnvironment::new();
        env.set_parallelism(case.parallelism).set_batch_size(case.batch_size);
        let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(case.bound_ms as u64))
            .with_interval(Duration::from_millis(case.interval_ms));
        let windowed = env
            .from_collection(case.events.clone())
            .assign_timestamps_and_watermarks(strategy, timestamp_of)
            .key_by(key_of)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(case.window_ms as u64)));
        let exact = windowed.clone().trigger(EventTimeTrigger).aggregate_with(Count, |k, w, n| (*k, w.start, n)).collect();
        let early = windowed
            .trigger(ContinuousEventTimeTrigger::of(Duration::from_millis(every as u64)))
            .aggregate_with(Count, |k, w, n| (*k, w.start, n))
            .collect();
        run(&env);

        let model = windows_model(&case.events, case.window_ms);
        let expected: Vec<_> = model.iter().map(|(&(k, s), w)| (k, s, w.count)).collect();
        prop_assert_eq!(sorted(exact.take()), expected.clone());
        let mut last: BTreeMap<(u8, i64), u64> = BTreeMap::new();
        for (k, s, n) in early.take() {
            let previous = last.insert((k, s), n).unwrap_or(0);
            prop_assert!(n >= previous, "a count never goes back");
        }
        prop_assert_eq!(last.into_iter().map(|((k, s), n)| (k, s, n)).collect::<Vec<_>>(), expected);
    }
}

/// Tags each input's records, so the output shows which function handled what.
#[derive(Clone)]
struct Tagger;

impl CoProcessFunction<i64, String, String> for Tagger {
    fn process_element1(&mut self, n: i64, ctx: &mut ProcessContext<'_, String>) {
        ctx.collect(format!("number {n}"));
    }

    fn process_element2(&mut self, s: String, ctx: &mut ProcessContext<'_, String>) {
        ctx.collect(format!("text {s}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Unkeyed connected streams: every record of either input reaches its own function.
    #[test]
    fn connected_streams_process_both_inputs(
        numbers in vec(any::<i64>(), 0..50), texts in vec("[a-z]{0,5}", 0..50), parallelism in 1usize..=3,
    ) {
        let env = StreamEnvironment::new();
        env.set_parallelism(parallelism);
        let out = env.from_collection(numbers.clone()).connect(&env.from_iter(texts.clone())).process(Tagger).collect();
        run(&env);
        let expected: Vec<String> =
            numbers.iter().map(|n| format!("number {n}")).chain(texts.iter().map(|s| format!("text {s}"))).collect();
        prop_assert_eq!(sorted(out.take()), sorted(expected));
    }
}

/// The emissions of counting tumbling windows with allowed lateness, when a watermark of
/// `max timestamp seen − 1` follows every record (Flink's rules, step by step): a record whose
/// window is past its cleanup time is late; one for a window whose end the watermark has
/// passed fires its key's window at once (Flink's EventTimeTrigger fires on such elements,
/// even for a key new to the window); when the watermark advances, due windows fire and
/// expired ones go.
fn lateness_model(events: &[Event], size: i64, lateness: i64) -> (Vec<(u8, i64, u64)>, u64) {
    let mut windows: BTreeMap<(i64, u8), (u64, bool)> = BTreeMap::new();
    let (mut emitted, mut late, mut watermark) = (Vec::new(), 0, i64::MIN);
    for &(key, ts, _) in events {
        let start = window_start(ts, size);
        let max_ts = start + size - 1;
        if max_ts + lateness <= watermark {
            late += 1;
        } else {
            let entry = windows.entry((start, key)).or_insert((0, false));
            entry.0 += 1;
            if max_ts <= watermark {
                entry.1 = true;
                emitted.push((key, start, entry.0));
            }
        }
        let advanced = ts - 1;
        if advanced > watermark {
            watermark = advanced;
            for (&(start, key), entry) in windows.iter_mut() {
                if start + size - 1 <= watermark && !entry.1 {
                    entry.1 = true;
                    emitted.push((key, start, entry.0));
                }
            }
            windows.retain(|&(start, _), _| start + size - 1 + lateness > watermark);
        }
    }
    emitted.extend(windows.iter().filter(|(_, e)| !e.1).map(|(&(start, key), e)| (key, start, e.0)));
    (sorted(emitted), late)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Allowed lateness on disordered input: every firing and late firing, and every dropped
    /// record, equal the step-by-step model (one record per batch, a watermark after each).
    #[test]
    fn allowed_lateness_fires_late_records_again_as_the_model_says(
        raw in vec((0u8..3, 0i64..400), 0..120), size in 1i64..=50, lateness in 0i64..=60,
    ) {
        let env = StreamEnvironment::new();
        env.set_parallelism(1).set_batch_size(1);
        let events: Vec<Event> = raw.iter().map(|&(k, ts)| (k, ts, 0)).collect();
        let fired = env
            .from_iter(events.clone())
            .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous().with_interval(Duration::ZERO), timestamp_of)
            .key_by(key_of)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(size as u64)))
            .allowed_lateness(Duration::from_millis(lateness as u64))
            .aggregate_with(Count, |key, w, n| (*key, w.start, n))
            .collect();
        let result = run(&env);
        let (expected, late) = lateness_model(&events, size, lateness);
        prop_assert_eq!(sorted(fired.take()), expected);
        prop_assert_eq!(result.metrics.total_all("late_records_dropped"), late);
    }
}

/// Session windows with allowed lateness, step by step with a watermark of `max − 1` after
/// every record: a record merges into its key's sessions (fired ones included, until their
/// cleanup); a merged session that is already due fires at once; when the watermark
/// advances, due sessions fire and those past their lateness go.
fn session_lateness_model(events: &[Event], gap: i64, lateness: i64) -> (Vec<(u8, i64, i64, u64)>, u64) {
    // Per key: (start, end, count, fired).
    let mut sessions: BTreeMap<u8, Vec<(i64, i64, u64, bool)>> = BTreeMap::new();
    let (mut emitted, mut late, mut watermark) = (Vec::new(), 0, i64::MIN);
    for &(key, ts, _) in events {
        let own = sessions.entry(key).or_default();
        let (mut start, mut end, mut count) = (ts, ts + gap, 1);
        type Session = (i64, i64, u64, bool);
        let (merged, kept): (Vec<Session>, Vec<Session>) =
            std::mem::take(own).into_iter().partition(|s| s.0 <= ts + gap && ts <= s.1);
        for s in &merged {
            (start, end, count) = (start.min(s.0), end.max(s.1), count + s.2);
        }
        *own = kept;
        if end - 1 + lateness <= watermark {
            late += 1;
            own.extend(merged);
        } else {
            let due = end - 1 <= watermark;
            if due {
                emitted.push((key, start, end, count));
            }
            own.push((start, end, count, due));
        }
        if ts - 1 > watermark {
            watermark = ts - 1;
            for (&key, own) in sessions.iter_mut() {
                for s in own.iter_mut().filter(|s| s.1 - 1 <= watermark && !s.3) {
                    s.3 = true;
                    emitted.push((key, s.0, s.1, s.2));
                }
                own.retain(|s| !(s.3 && s.1 - 1 + lateness <= watermark));
            }
        }
    }
    for (&key, own) in &sessions {
        emitted.extend(own.iter().filter(|s| !s.3).map(|s| (key, s.0, s.1, s.2)));
    }
    (sorted(emitted), late)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Session windows with allowed lateness on disordered input equal the step-by-step model.
    #[test]
    fn session_windows_with_allowed_lateness_match_the_model(
        raw in vec((0u8..3, 0i64..300), 0..100), gap in 1i64..=30, lateness in 0i64..=40,
    ) {
        let env = StreamEnvironment::new();
        env.set_parallelism(1).set_batch_size(1);
        let events: Vec<Event> = raw.iter().map(|&(k, ts)| (k, ts, 0)).collect();
        let fired = env
            .from_iter(events.clone())
            .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous().with_interval(Duration::ZERO), timestamp_of)
            .key_by(key_of)
            .window(EventTimeSessionWindows::with_gap(Duration::from_millis(gap as u64)))
            .allowed_lateness(Duration::from_millis(lateness as u64))
            .aggregate_with(Count, |key, w, n| (*key, w.start, w.end, n))
            .collect();
        let result = run(&env);
        let (expected, late) = session_lateness_model(&events, gap, lateness);
        prop_assert_eq!(sorted(fired.take()), expected);
        prop_assert_eq!(result.metrics.total_all("late_records_dropped"), late);
    }
}

#[test]
fn processing_time_sliding_and_session_windows_account_for_every_record() {
    // A bounded input fires every processing-time window at its end: each record is in
    // size/slide = 3 sliding windows, and a key's records (read within the minute-long gap)
    // form one session.
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let events: Vec<Event> = (0..300).map(|i| ((i % 5) as u8, i, 0)).collect();
    let keyed = env.from_collection(events).key_by(key_of);
    let minute = Duration::from_secs(60);
    let sliding =
        keyed.window(SlidingProcessingTimeWindows::of(minute, Duration::from_secs(20))).aggregate(Count).collect();
    let sessions =
        keyed.window(ProcessingTimeSessionWindows::with_gap(minute)).aggregate_with(Count, |k, _, n| (*k, n)).collect();
    run(&env);
    assert_eq!(sliding.take().iter().sum::<u64>(), 300 * 3);
    assert_eq!(sorted(sessions.take()), (0..5).map(|k| (k, 60)).collect::<Vec<_>>());
}

#[test]
fn try_process_counts_its_dead_letters() {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let halves = env.from_collection((0..100).collect::<Vec<i64>>()).try_process(
        |n: &i64, ctx: &mut ProcessContext<'_, i64>| {
            if n % 3 == 0 {
                return Err("divisible by three");
            }
            ctx.collect(n * 2);
            Ok(())
        },
    );
    let rejected = halves.dead_letters::<i64>().map(|d| d.input).collect();
    let doubled = halves.collect();
    let result = run(&env);
    assert_eq!(sorted(doubled.take()), (0..100).filter(|n| n % 3 != 0).map(|n| n * 2).collect::<Vec<_>>());
    assert_eq!(sorted(rejected.take()), (0..100).filter(|n| n % 3 == 0).collect::<Vec<_>>());
    assert_eq!(result.metrics.total_all("dead_letters"), 34);
}
