//! The typed metrics of known jobs: counts that match the records exactly (a window on the
//! keyed-operator shell too, with its late records), backpressure on the upstream of a sink
//! that sleeps, idle time on a source that has nothing to read.

use std::time::Duration;

use eddy::prelude::*;
use eddy::runtime::OperatorMetrics;

/// More than any of these jobs needs; a job still running after this has hung.
const LIMIT: Duration = Duration::from_secs(30);

fn operator<'m>(metrics: &'m eddy::runtime::JobMetrics, name: &str) -> &'m OperatorMetrics {
    let names: Vec<&str> = metrics.operators.iter().map(|op| op.name.as_str()).collect();
    metrics.operator(name).unwrap_or_else(|| panic!("no operator '{name}' among {names:?}"))
}

#[test]
fn records_in_and_out_match_what_each_operator_saw() {
    let env = StreamEnvironment::new();
    env.set_parallelism(2).set_batch_size(64);
    let evens = env.from_collection((0..10_000u64).collect()).filter(|x| x % 2 == 0).name("evens");
    // Rebalanced, so the map reads from a channel; the sink is chained to it.
    let out = evens.rebalance().flat_map(|x: u64| vec![x; (x % 3) as usize]).name("copies").collect();
    let result = env.execute("counts").unwrap().wait().unwrap();
    let got = out.take();
    // The model: what each operator must have seen.
    let evens_model = (0..10_000u64).filter(|x| x % 2 == 0).count() as u64;
    let copies_model: u64 = (0..10_000u64).filter(|x| x % 2 == 0).map(|x| x % 3).sum();
    assert_eq!(got.len() as u64, copies_model);
    let metrics = &result.metrics;
    let source = operator(metrics, "Source: Collection");
    assert_eq!((source.records_in(), source.records_out()), (10_000, 10_000));
    let evens = operator(metrics, "evens");
    assert_eq!((evens.records_in(), evens.records_out()), (10_000, evens_model));
    assert_eq!(evens.parallelism, 2);
    assert_eq!(evens.chain, source.id, "the filter is chained to the source");
    let copies = operator(metrics, "copies");
    assert_eq!((copies.records_in(), copies.records_out()), (evens_model, copies_model));
    assert_eq!(copies.chain, copies.id, "the rebalanced map heads its own chain");
    let sink = metrics.operators.last().unwrap();
    assert_eq!(sink.records_in(), copies_model);
    assert_eq!(sink.records_out(), 0, "a sink emits nothing");
    // Every subtask saw the end of event time; a lag no longer means anything then.
    for op in &metrics.operators {
        for subtask in &op.subtasks {
            assert_eq!(subtask.watermark, Some(i64::MAX), "{} #{}", op.name, subtask.subtask);
            assert_eq!(subtask.watermark_lag_ms, None);
        }
    }
    assert!(metrics.operator("Source: Colection").is_none(), "a misspelled operator is None, not 0");
    assert_eq!(metrics.job.restarts, 0);
    assert_eq!(metrics.job.checkpoints.completed, 0);
    assert_eq!(metrics.job.checkpoints.last_duration_ms, None, "no checkpoint: None, not 0");
}

#[test]
fn a_sleeping_sink_backpressures_its_upstream() {
    let env = StreamEnvironment::new();
    env.set_parallelism(1).set_batch_size(8).set_channel_capacity(2);
    env.generate(None, |i| i)
        .rebalance()
        .for_each(|_: u64| std::thread::sleep(Duration::from_millis(1)))
        .name("sleepy");
    let job = env.execute("backpressure").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = job.metrics();
    job.cancel();
    let source = operator(&metrics, "Source: Generator");
    let sink = operator(&metrics, "sleepy");
    let (source_time, sink_time) = (source.subtasks[0].time.unwrap(), sink.subtasks[0].time.unwrap());
    assert!(source_time.backpressured_ms_per_s > 700, "the source waits on the full channel: {source_time:?}");
    assert!(sink_time.busy_ms_per_s > 700, "the sink sleeps, which is work to the runtime: {sink_time:?}");
    assert!(sink_time.backpressured_ms_per_s < 100, "nothing is downstream of the sink: {sink_time:?}");
    assert!(source.subtasks[0].backpressured_ms_total > 700);
    // The sink took about one record a millisecond.
    assert!((300..2_000).contains(&sink.records_in()), "{}", sink.records_in());
    // Its rate, over the 1.5 s since it started: at most one a millisecond.
    let rate = sink.records_in_per_s().expect("a rate once started");
    assert!((200..=1_000).contains(&rate), "{rate} records/s");
    assert!(matches!(wait_at_most_a_while(job), Err(Error::Cancelled)));
}

#[test]
fn a_source_with_nothing_to_read_is_idle_and_so_is_what_it_feeds() {
    let (sender, receiver) = crossbeam_channel::bounded::<u64>(16);
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let out = env.from_channel(receiver).rebalance().map(|x: u64| x + 1).name("plus one").collect();
    let job = env.execute("idle").unwrap();
    sender.send(41).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let metrics = job.metrics();
    drop(sender);
    let result = job.wait().unwrap();
    assert_eq!(out.take(), vec![42]);
    let (source, map) = (operator(&metrics, "Source: Channel"), operator(&metrics, "plus one"));
    assert!(source.idle_ms_per_s().unwrap() > 800, "{:?}", source.subtasks[0].time);
    assert!(map.idle_ms_per_s().unwrap() > 800, "{:?}", map.subtasks[0].time);
    assert_eq!(source.backpressured_ms_per_s(), Some(0));
    assert_eq!(operator(&result.metrics, "plus one").records_out(), 1);
    assert!(result.metrics.job.uptime_ms >= 1500, "{}", result.metrics.job.uptime_ms);
}

#[test]
fn metrics_off_counts_nothing_per_operator_but_keeps_named_counters() {
    let env = StreamEnvironment::new();
    env.set_parallelism(1).set_operator_metrics(false);
    env.from_collection((0..100u64).collect()).map(|x| x + 1).name("plus one").collect();
    let result = env.execute("off").unwrap().wait().unwrap();
    assert_eq!(operator(&result.metrics, "plus one").records_in(), 0);
    assert_eq!(result.metrics.counter("Source: Collection", "records_in"), Ok(100));
}

#[test]
fn a_window_on_the_keyed_shell_counts_what_it_read_fired_and_dropped_as_late() {
    let env = StreamEnvironment::new();
    // One subtask, a record per batch and a watermark after each: which records are late is exact.
    env.set_parallelism(1).set_batch_size(1);
    let strategy = WatermarkStrategy::monotonous().with_interval(Duration::ZERO);
    // (key, event time). Hand-checked against 10 ms tumbling windows: 12 fires [0, 10), so
    // the 3 after it is late; 25 fires [10, 20), so the 15 after it is late. Fired:
    // (1, [0, 10), 2), (2, [10, 20), 1), (2, [20, 30), 1).
    let events: Vec<(u8, i64)> = vec![(1, 0), (1, 5), (2, 12), (1, 3), (2, 25), (1, 15)];
    let fired = env
        .from_iter(events)
        .assign_timestamps_and_watermarks(strategy, |e: &(u8, i64)| e.1)
        .key_by(|e: &(u8, i64)| e.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(10)))
        .aggregate_with(Count, |key, w, n| (*key, w.start, n))
        .name("counts")
        .collect();
    let result = env.execute("late").unwrap().wait().unwrap();
    let mut got = fired.take();
    got.sort_unstable();
    assert_eq!(got, vec![(1, 0, 2), (2, 10, 1), (2, 20, 1)]);
    let metrics = &result.metrics;
    // The pre-aggregation reads every record and sends partials on; the window, a handler on
    // the keyed-operator shell, reads those, drops the late ones and emits what fired.
    let (partials, window) = (operator(metrics, "counts (pre-aggregate)"), operator(metrics, "counts"));
    assert_eq!(partials.records_in(), 6);
    assert_eq!(window.records_in(), partials.records_out());
    assert_eq!((window.records_out(), window.late_records_dropped()), (3, 2));
    assert_eq!(metrics.total_all("late_records_dropped"), 2, "the typed field reads the named counter");
    assert_eq!(operator(metrics, "Sink: Collect").records_in(), 3);
}

/// Waits for a job that was cancelled, failing the test if it hangs.
fn wait_at_most_a_while(job: JobHandle) -> eddy::Result<eddy::runtime::JobResult> {
    let (done, outcome) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = done.send(job.wait());
    });
    outcome.recv_timeout(LIMIT).expect("the job hung")
}
