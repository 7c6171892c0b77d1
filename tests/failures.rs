//! Jobs that fail, as a user meets them: a panicking function or a failing sink stops the
//! whole job quickly with an error naming the operator and the cause; API misuse is rejected
//! with a message that says what to change; a cancelled job ends promptly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use eddy::prelude::*;

/// More than any of these jobs needs, even in a debug build on a busy machine; a job still
/// running after this has hung.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `job` (which builds, executes and waits for a job) on its own thread and returns its
/// result, failing the test if it has not finished within [`LIMIT`].
fn finishes<R: Send + 'static>(job: impl FnOnce() -> R + Send + 'static) -> R {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || done.send(job()));
    result.recv_timeout(LIMIT).expect("the job hung: it did not end within the limit")
}

/// The fields of an [`Error::Operator`]: (operator, subtask, parallelism, message).
fn operator_failure(result: Result<JobResult>) -> (String, usize, usize, String) {
    match result {
        Err(Error::Operator { operator, subtask, parallelism, message }) => (operator, subtask, parallelism, message),
        other => panic!("expected an operator failure, got {other:?}"),
    }
}

/// The message of an [`Error::InvalidJob`] returned by `execute`.
fn invalid_job(result: Result<JobHandle>) -> String {
    match result {
        Err(Error::InvalidJob(message)) => message,
        Err(other) => panic!("expected an invalid-job error, got {other:?}"),
        Ok(_) => panic!("expected an invalid-job error, but the job started"),
    }
}

// ---------------------------------------------------------------------------------------
// User code that fails
// ---------------------------------------------------------------------------------------

#[test]
fn a_panic_in_map_fails_the_job_naming_the_operator() {
    let result = finishes(|| {
        let env = StreamEnvironment::new();
        env.set_parallelism(2);
        // Unbounded: the job can only end because the failure stops every other subtask.
        env.generate(None, |i| i)
            .map(|i: u64| if i == 500 { panic!("cannot handle record {i}") } else { i })
            .name("explode")
            .filter(|_| false)
            .collect();
        env.execute("panic in map").unwrap().wait()
    });
    let (operator, subtask, parallelism, message) = operator_failure(result);
    assert_eq!(operator, "explode");
    // Generator subtask s of 2 produces the even (s = 0) or odd (s = 1) indices, and map is
    // chained to it, so record 500 is mapped in subtask 0.
    assert_eq!((subtask, parallelism), (0, 2));
    assert!(message.contains("cannot handle record 500"), "message: {message}");
}

#[test]
fn a_panic_in_a_key_selector_fails_the_job_naming_an_operator() {
    let result = finishes(|| {
        let env = StreamEnvironment::new();
        env.set_parallelism(2);
        // At parallelism 2 the key selector runs where records are routed to their key's
        // subtask, not only inside the keyed operator.
        env.generate(None, |i| i)
            .name("numbers")
            .key_by(|i: &u64| if *i == 300 { panic!("no key for {i}") } else { i % 5 })
            .sum(|i: &mut u64| i)
            .name("running total")
            .filter(|_| false)
            .collect();
        env.execute("panic in key_by").unwrap().wait()
    });
    let (operator, _, parallelism, message) = operator_failure(result);
    assert!(["numbers", "running total"].contains(&operator.as_str()), "operator: {operator}");
    assert_eq!(parallelism, 2);
    assert!(message.contains("no key for 300"), "message: {message}");
}

#[test]
fn a_panic_in_a_window_function_fails_the_job_naming_the_window() {
    let result = finishes(|| {
        let env = StreamEnvironment::new();
        env.set_parallelism(2);
        let strategy = WatermarkStrategy::monotonous().with_interval(Duration::from_millis(1));
        env.generate(None, |i| i)
            .assign_timestamps_and_watermarks(strategy, |i| *i as i64)
            .key_by(|i: &u64| i % 3)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
            .aggregate_with(Count, |_, window, n| {
                if window.start >= 1_000 {
                    panic!("window at {} is too late", window.start)
                }
                n
            })
            .name("tally")
            .filter(|_| false)
            .collect();
        env.execute("panic in window").unwrap().wait()
    });
    let (operator, subtask, parallelism, message) = operator_failure(result);
    assert_eq!(operator, "tally");
    assert!(subtask < 2 && parallelism == 2, "subtask {subtask} of {parallelism}");
    assert!(message.contains("is too late"), "message: {message}");
}

/// Accepts `capacity` records, then fails every write.
struct FullSink {
    capacity: usize,
}

impl Sink<u64> for FullSink {
    fn write(&mut self, _: u64, _: Timestamp) -> std::result::Result<(), BoxError> {
        if self.capacity == 0 {
            return Err("disk full".into());
        }
        self.capacity -= 1;
        Ok(())
    }
}

#[test]
fn a_sink_error_fails_the_job_naming_the_sink() {
    let result = finishes(|| {
        let env = StreamEnvironment::new();
        env.set_parallelism(2);
        env.generate(None, |i| i).add_sink("ledger", |_, _| Ok(FullSink { capacity: 10_000 })).name("ledger sink");
        env.execute("failing sink").unwrap().wait()
    });
    let (operator, _, parallelism, message) = operator_failure(result);
    assert_eq!((operator.as_str(), parallelism), ("ledger sink", 2));
    assert!(message.contains("disk full"), "message: {message}");
}

// ---------------------------------------------------------------------------------------
// API misuse
// ---------------------------------------------------------------------------------------

#[test]
fn an_iterator_source_cannot_run_in_parallel() {
    let env = StreamEnvironment::new();
    env.from_iter(0..10).set_parallelism(2).collect();
    let message = invalid_job(env.execute("parallel iterator"));
    assert!(message.contains("cannot run in parallel"), "message: {message}");
    assert!(message.contains("set_parallelism"), "the message should say what to change: {message}");
}

#[test]
fn parallelism_above_max_parallelism_is_rejected() {
    let env = StreamEnvironment::new();
    env.set_parallelism(2).set_max_parallelism(4);
    env.generate(Some(10), |i| i).map(|i: u64| i + 1).set_parallelism(8).name("wide").collect();
    let message = invalid_job(env.execute("too wide"));
    assert!(message.contains("'wide'") && message.contains('8'), "message: {message}");
    assert!(message.contains("set_max_parallelism"), "the message should say what to change: {message}");
}

#[test]
fn a_default_parallelism_above_max_parallelism_is_rejected_not_lowered() {
    let env = StreamEnvironment::new();
    env.set_parallelism(8).set_max_parallelism(4);
    env.generate(Some(10), |i| i).map(|i: u64| i + 1).collect();
    let message = invalid_job(env.execute("too wide"));
    assert!(message.contains("parallelism 8") && message.contains("max_parallelism 4"), "message: {message}");
    assert!(message.contains("set_max_parallelism"), "the message should say what to change: {message}");
}

#[test]
fn an_event_time_window_without_timestamps_says_to_assign_them() {
    let result = finishes(|| {
        let env = StreamEnvironment::new();
        env.set_parallelism(2);
        env.from_collection(vec![1u64, 2, 3])
            .key_by(|i: &u64| i % 2)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .aggregate_with(Count, |_, _, n| n)
            .name("counts")
            .collect();
        env.execute("no timestamps").unwrap().wait()
    });
    let (operator, _, _, message) = operator_failure(result);
    // Event-time windows run as a pre-aggregation plus the keyed stage; both carry the name.
    assert_eq!(operator, "counts (pre-aggregate)");
    assert!(message.contains("assign_timestamps_and_watermarks"), "message: {message}");
}

#[test]
fn a_zero_window_size_is_rejected_before_the_job_starts() {
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    env.from_iter(vec![(1i64, 'a')])
        .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |e| e.0)
        .key_by(|e: &(i64, char)| e.1)
        .window(TumblingEventTimeWindows::of(Duration::ZERO))
        .aggregate_with(Count, |_, _, n| n)
        .collect();
    let message = invalid_job(env.execute("zero window"));
    assert!(message.contains("size must be positive"), "message: {message}");
}

#[test]
fn a_job_without_operators_is_rejected() {
    let message = invalid_job(StreamEnvironment::new().execute("empty"));
    assert!(message.contains("add a source"), "message: {message}");
}

// ---------------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------------

/// Counts what it receives, so the test can see the job running; with `delay`, it is slower
/// than the source, so channels fill up and the source waits on them (backpressure).
struct CountingSink {
    received: Arc<AtomicU64>,
    delay: Duration,
}

impl Sink<u64> for CountingSink {
    fn write(&mut self, _: u64, _: Timestamp) -> std::result::Result<(), BoxError> {
        std::thread::sleep(self.delay);
        self.received.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Starts an endless keyed job, waits until records reach its sink, cancels it, and checks
/// that `wait` reports the cancellation promptly.
fn cancel_running_job(sink_delay: Duration) {
    let received = Arc::new(AtomicU64::new(0));
    let job = {
        let env = StreamEnvironment::new();
        env.set_parallelism(2).set_batch_size(16).set_channel_capacity(2);
        let counter = received.clone();
        env.generate(None, |i| i)
            .key_by(|i: &u64| i % 10)
            .reduce(|a, b| a.max(b))
            .add_sink("count", move |_, _| Ok(CountingSink { received: counter.clone(), delay: sink_delay }));
        env.execute("endless").unwrap()
    };
    // Cancel only once the job is really running.
    let deadline = Instant::now() + LIMIT;
    while received.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(received.load(Ordering::Relaxed) > 0, "no record reached the sink");
    assert!(!job.is_finished());

    let cancelled_at = Instant::now();
    job.cancel();
    let result = finishes(move || job.wait());
    assert!(matches!(result, Err(Error::Cancelled)), "expected Cancelled, got {result:?}");
    assert!(cancelled_at.elapsed() < Duration::from_secs(5), "took {:?} to stop", cancelled_at.elapsed());
}

#[test]
fn cancelling_an_unbounded_job_ends_it_promptly() {
    cancel_running_job(Duration::ZERO);
}

/// The usual state of a busy job: the sink is the bottleneck and the source is blocked on a
/// full channel when the cancellation comes.
#[test]
fn cancelling_a_backpressured_job_ends_it_promptly() {
    cancel_running_job(Duration::from_millis(1));
}

#[test]
fn rejected_records_become_dead_letters_and_the_job_goes_on() {
    let env = StreamEnvironment::new();
    env.set_parallelism(3);
    let lines: Vec<String> = (0..500).map(|i| if i % 7 == 0 { format!("bad{i}") } else { i.to_string() }).collect();
    let parsed = env.from_collection(lines.clone()).try_map(|s: &String| s.parse::<u32>());
    let dead = parsed.dead_letters::<String>().collect();
    let good = parsed.collect();
    let result = env.execute("dead letters").unwrap().wait().unwrap();

    let mut good = good.take();
    good.sort();
    let mut dead = dead.take();
    dead.sort();
    // Every input is in exactly one of the two outputs, and rejections carry the parse error.
    let expected_good: Vec<u32> = (0..500).filter(|i| i % 7 != 0).collect();
    let mut expected_dead: Vec<String> = (0..500).filter(|i| i % 7 == 0).map(|i| format!("bad{i}")).collect();
    expected_dead.sort();
    assert_eq!(good, expected_good);
    assert_eq!(dead.iter().map(|d| d.input.clone()).collect::<Vec<_>>(), expected_dead);
    assert!(dead.iter().all(|d| d.error == "invalid digit found in string"), "{:?}", dead[0]);
    assert_eq!(result.metrics.total_all("dead_letters"), expected_dead.len() as u64);
}
