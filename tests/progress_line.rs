//! The examples' progress line, as it reads a job's metrics: records read, the watermark and
//! its lag, the newest checkpoint.

#[path = "../examples/common/progress.rs"]
mod progress;

use std::time::Duration;

use eddy::prelude::*;

#[test]
fn the_line_says_what_was_read_where_event_time_is_and_the_newest_checkpoint() {
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)));
    let strategy = WatermarkStrategy::monotonous();
    env.generate(Some(3_000), |i| i)
        .uid("numbers")
        .map(|i: u64| {
            std::thread::sleep(Duration::from_micros(50));
            i
        })
        .assign_timestamps_and_watermarks(strategy, |i: &u64| *i as i64 * 1_000)
        .for_each(|_: u64| {});
    let job = env.execute("progress").unwrap();
    let sources: Vec<usize> = vec![0];
    assert_eq!(job.plan().operators[0].name, "Source: Generator");
    // While it runs: event time is in 1970 (a second per record), far behind the wall clock.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let running = loop {
        let metrics = job.metrics();
        if metrics.operators.last().and_then(|op| op.watermark()).is_some_and(|w| w < i64::MAX) {
            break progress::line(&metrics, &sources);
        }
        assert!(std::time::Instant::now() < deadline, "no watermark: {metrics:?}");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(running.contains("watermark 1970-01-01 00:"), "{running}");
    let lag_s: f64 = running.split("(lag ").nth(1).and_then(|l| l.split(' ').next()).unwrap().parse().unwrap();
    assert!(lag_s > 1.7e9, "now minus a 1970 watermark: {running}");
    let result = job.wait().unwrap();
    let line = progress::line(&result.metrics, &sources);
    assert!(line.contains("(3000 read)"), "{line}");
    assert!(line.contains("watermark: end of input"), "{line}");
    let checkpoints = &result.metrics.job.checkpoints;
    assert!(checkpoints.completed > 0, "{checkpoints:?}");
    let expected = format!(
        "checkpoint #{} took {} ms, {} bytes",
        checkpoints.completed,
        checkpoints.last_duration_ms.unwrap(),
        checkpoints.last_size_bytes.unwrap()
    );
    assert!(line.contains(&expected), "{line}");
    assert!(!line.contains("restarts") && !line.contains("behind"), "{line}");
}
