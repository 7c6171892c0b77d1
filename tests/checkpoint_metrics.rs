//! Checkpoint metrics of known jobs: the history's durations, barrier alignment and state
//! size per operator, and a checkpoint that times out recorded as failed.

use std::time::Duration;

use eddy::prelude::*;
use eddy::runtime::checkpoint::CheckpointRecord;

/// A keyed sum over two inputs: a fast generator, and a generator whose records pass a map
/// that sleeps `sleep` per record behind a small channel, so its barriers reach the sum long
/// after the fast input's (the sum aligns them).
fn two_inputs_one_slow(env: &StreamEnvironment, sleep: Duration) {
    env.set_parallelism(1).set_batch_size(1).set_channel_capacity(2);
    let fast = env.generate(None, |i| i % 10).uid("fast");
    let slow = env
        .generate(None, |i| i % 10)
        .uid("slow")
        .rebalance()
        .map(move |x: u64| {
            std::thread::sleep(sleep);
            x
        })
        .name("sleepy");
    fast.union(&[slow]).key_by(|x: &u64| *x).reduce(|a, b| a + b).uid("sums").name("sums").for_each(|_: u64| {});
}

#[test]
fn the_history_has_duration_alignment_and_state_size_per_operator() {
    let env = StreamEnvironment::new();
    two_inputs_one_slow(&env, Duration::from_millis(40));
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(200)));
    let job = env.execute("history").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while job.metrics().job.checkpoints.completed < 3 {
        assert!(std::time::Instant::now() < deadline, "no 3 checkpoints in 30 s: {:?}", job.metrics().job);
        std::thread::sleep(Duration::from_millis(50));
    }
    let metrics = job.metrics();
    job.cancel();
    let _ = job.wait();

    let checkpoints = &metrics.job.checkpoints;
    let completed: Vec<&CheckpointRecord> = checkpoints.history.iter().filter(|c| c.status == "COMPLETED").collect();
    assert!(completed.len() >= 3, "{:?}", checkpoints.history);
    assert!(completed.windows(2).all(|w| w[0].id < w[1].id), "oldest first: {completed:?}");
    for record in &completed {
        assert_eq!(record.kind, "CHECKPOINT");
        assert_eq!(record.failure, None);
        // Alignment happens between the trigger and the last ack.
        assert!(record.alignment_ms <= record.duration_ms, "{record:?}");
        let by_operator: u64 = record.operators.iter().map(|o| o.size_bytes).sum();
        assert_eq!(record.size_bytes, Some(by_operator), "the operators' state adds up: {record:?}");
        let sums = record.operators.iter().find(|o| o.uid == "sums").expect("the sum keeps state");
        assert!(sums.size_bytes > 0, "ten keys and their sums: {record:?}");
        // The slow input's barrier waits behind ~2 records of 40 ms each in the map's
        // channel while the fast input's is already there: the sum aligns for most of that.
        assert!(record.alignment_ms >= 30, "the sum waited for the slow input's barrier: {record:?}");
    }
    let newest = completed.last().unwrap();
    assert_eq!(checkpoints.last_alignment_ms, Some(newest.alignment_ms));
    assert_eq!(checkpoints.last_size_bytes, newest.size_bytes);
    // The same sizes per operator subtask, as the typed metrics show them.
    let sums = metrics.operator("sums").unwrap();
    let in_newest = newest.operators.iter().find(|o| o.uid == "sums").unwrap().size_bytes;
    assert_eq!(sums.state_size_bytes(), Some(in_newest));
    assert_eq!(metrics.operator("sleepy").unwrap().state_size_bytes(), None, "a stateless map keeps none");
}

#[test]
fn a_checkpoint_that_times_out_is_in_the_history_as_failed() {
    let env = StreamEnvironment::new();
    two_inputs_one_slow(&env, Duration::from_millis(100));
    // The slow input's barrier needs ~200 ms to reach the sum: every checkpoint times out.
    let config = CheckpointConfig::every(Duration::from_millis(50)).timeout(Duration::from_millis(20));
    env.enable_checkpointing(config);
    let job = env.execute("timeouts").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while job.metrics().job.checkpoints.failed < 2 {
        assert!(std::time::Instant::now() < deadline, "no checkpoint timed out: {:?}", job.metrics().job);
        std::thread::sleep(Duration::from_millis(50));
    }
    let metrics = job.metrics();
    job.cancel();
    let _ = job.wait();
    let failed: Vec<&CheckpointRecord> =
        metrics.job.checkpoints.history.iter().filter(|c| c.status == "FAILED").collect();
    assert!(failed.len() >= 2, "{:?}", metrics.job.checkpoints.history);
    for record in failed {
        assert_eq!(record.size_bytes, None);
        assert!(record.operators.is_empty());
        assert!(record.duration_ms >= 20, "given up after the timeout: {record:?}");
        let reason = record.failure.as_deref().unwrap_or("");
        assert!(reason.contains("checkpoint timeout"), "{record:?}");
    }
}
