//! Event time in a service whose input goes quiet: with a processing-time advance the
//! windows holding the last events fire while the input is still open; without one they wait
//! for the next event (or the end of input), as in Flink.

use std::time::{Duration, Instant};

use eddy::prelude::*;

/// (key, window start, sum)
type WindowSum = (String, i64, i64);

/// A job over a channel the test keeps open: per-key sums in 1 s event-time windows, events
/// up to 200 ms out of order.
fn windowed_sums(
    advance: Option<Duration>,
) -> (tokio::sync::mpsc::Sender<(String, i64, i64)>, crossbeam_channel::Receiver<WindowSum>, JobHandle) {
    let (events, receiver) = tokio::sync::mpsc::channel(64);
    let (results, output) = crossbeam_channel::unbounded();
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(200))
        .with_interval(Duration::from_millis(50));
    let source = env.from_channel(receiver);
    let stamped = match advance {
        Some(quiet) => source.assign_timestamps_and_watermarks(
            strategy.with_processing_time_advance(quiet),
            |e: &(String, i64, i64)| e.1,
        ),
        None => source.assign_timestamps_and_watermarks(strategy, |e: &(String, i64, i64)| e.1),
    };
    stamped
        .key_by(|e: &(String, i64, i64)| e.0.clone())
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .aggregate_with(SumOf, |key, window, sum| (key.clone(), window.start, sum))
        .into_channel(results);
    (events, output, env.execute("quiet").unwrap())
}

/// Sums the events' values.
#[derive(Clone)]
struct SumOf;

impl AggregateFunction<(String, i64, i64)> for SumOf {
    type Acc = i64;
    type Out = i64;
    fn create_accumulator(&self) -> i64 {
        0
    }
    fn add(&self, acc: &mut i64, event: (String, i64, i64)) {
        *acc += event.2;
    }
    fn merge(&self, acc: &mut i64, other: i64) {
        *acc += other;
    }
    fn get_result(&self, acc: i64) -> i64 {
        acc
    }
}

fn send_burst(events: &tokio::sync::mpsc::Sender<(String, i64, i64)>) {
    for (key, ts, value) in [("a", 10_100, 1), ("b", 10_300, 5), ("a", 10_250, 2), ("a", 11_050, 7)] {
        events.blocking_send((key.to_string(), ts, value)).unwrap();
    }
}

#[test]
fn with_a_processing_time_advance_the_last_windows_fire_while_the_input_is_open() {
    let (events, output, job) = windowed_sums(Some(Duration::from_millis(300)));
    send_burst(&events);
    let start = Instant::now();
    let mut got = Vec::new();
    // Both windows: [10000, 11000) once event time passes 10999, [11000, 12000) later.
    while got.len() < 3 {
        let left = Duration::from_secs(10).saturating_sub(start.elapsed());
        got.push(output.recv_timeout(left).expect("the windows never fired although the input was quiet"));
    }
    got.sort();
    assert_eq!(got, vec![("a".into(), 10_000, 3), ("a".into(), 11_000, 7), ("b".into(), 10_000, 5)]);
    drop(events);
    job.wait().unwrap();
    assert!(output.try_recv().is_err(), "nothing fired twice");
}

#[test]
fn without_an_advance_the_last_windows_wait_for_the_end_of_input() {
    let (events, output, job) = windowed_sums(None);
    send_burst(&events);
    // The watermark stops at 11050 - 200 - 1 = 10849: no window can fire.
    assert!(output.recv_timeout(Duration::from_millis(1_500)).is_err(), "the windows wait for more events");
    drop(events);
    job.wait().unwrap();
    let mut got: Vec<WindowSum> = output.try_iter().collect();
    got.sort();
    assert_eq!(
        got,
        vec![("a".into(), 10_000, 3), ("a".into(), 11_000, 7), ("b".into(), 10_000, 5)],
        "the end of input fires them"
    );
}
