//! A job as an async service holds it: the environment is built on any thread and moved
//! across `.await`s, the handle is awaited without blocking the runtime, cloned into other
//! tasks, and its status read while the job runs, restarts and ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy::prelude::*;

/// More than any of these jobs needs; a job still running after this has hung.
const LIMIT: Duration = Duration::from_secs(30);

fn assert_send<T: Send>(_: &T) {}

#[test]
fn the_job_description_is_send() {
    let env = StreamEnvironment::new();
    let stream = env.from_collection(vec![1u32, 2, 3]);
    let keyed = stream.key_by(|x: &u32| *x % 2);
    assert_send(&env);
    assert_send(&stream);
    assert_send(&keyed);
    let windowed = keyed.window(TumblingEventTimeWindows::of(Duration::from_secs(1)));
    assert_send(&windowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_built_in_one_task_runs_from_another_and_is_awaited() {
    // Built inside a spawned task, held across an await, moved back out.
    let (env, out) = tokio::spawn(async {
        let env = StreamEnvironment::new();
        env.set_parallelism(2);
        tokio::task::yield_now().await;
        let out = env.from_collection((0..1_000u64).collect()).map(|x| x * 2).collect();
        (env, out)
    })
    .await
    .unwrap();
    let handle = env.execute("awaited").unwrap();
    let waiter = handle.clone();
    // Two tasks await the same job; both get the outcome.
    let other = tokio::spawn(async move { waiter.join().await.map(|r| r.name) });
    let result = tokio::time::timeout(LIMIT, handle.clone()).await.expect("the job hung").unwrap();
    assert_eq!(result.name, "awaited");
    assert_eq!(other.await.unwrap().unwrap(), "awaited");
    assert!(matches!(handle.status(), JobStatus::Finished));
    let mut got = out.take();
    got.sort();
    assert_eq!(got, (0..1_000u64).map(|x| x * 2).collect::<Vec<_>>());
}

#[tokio::test(flavor = "current_thread")]
async fn awaiting_a_job_leaves_a_single_threaded_runtime_free() {
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let slow = Arc::new(AtomicBool::new(true));
    let gate = slow.clone();
    env.generate(None, |i| i)
        .map(move |i: u64| {
            while gate.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
            i
        })
        .filter(|_| false)
        .collect();
    let handle = env.execute("free runtime").unwrap();
    // While the job runs, the only runtime thread still runs other tasks: this one ticks.
    let ticker = tokio::spawn(async {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        "ticked"
    });
    let joined = handle.join();
    assert_eq!(ticker.await.unwrap(), "ticked");
    assert!(matches!(handle.status(), JobStatus::Running));
    handle.cancel();
    slow.store(false, Ordering::Relaxed);
    let outcome = tokio::time::timeout(LIMIT, joined).await.expect("the job hung");
    assert!(matches!(outcome, Err(Error::Cancelled)), "{outcome:?}");
    assert!(matches!(handle.status(), JobStatus::Cancelled));
}

#[test]
fn the_status_follows_a_failure_through_its_restarts_to_the_end() {
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(50)));
    env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 2, delay: Duration::from_millis(300) });
    env.generate(None, |i| i)
        .uid("numbers")
        .map(|i: u64| if i == 2_000 { panic!("record {i} is poison") } else { i })
        .filter(|_| false)
        .collect();
    let handle = env.execute("restarting").unwrap();
    let start = Instant::now();
    let mut seen = Vec::new();
    while !handle.is_finished() {
        assert!(start.elapsed() < LIMIT, "the job hung; statuses so far: {seen:?}");
        let status = match handle.status() {
            JobStatus::Running => "running".to_string(),
            JobStatus::Restarting(n) => format!("restarting({n})"),
            other => format!("{other:?}"),
        };
        if seen.last() != Some(&status) {
            seen.push(status);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Every attempt meets record 2000 again: two restarts, then the job fails.
    for expected in ["restarting(1)", "restarting(2)"] {
        assert!(seen.iter().any(|s| s == expected), "{expected} never seen in {seen:?}");
    }
    let cause = match handle.status() {
        JobStatus::Failed(cause) => cause,
        other => panic!("expected a failed job, got {other:?}"),
    };
    assert!(cause.to_string().contains("record 2000 is poison"), "{cause}");
    let waited = handle.wait().unwrap_err();
    assert_eq!(waited.to_string(), cause.to_string());
}

#[test]
fn a_misspelled_metric_is_an_error_naming_what_exists() {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.from_collection((0..100u32).collect()).map(|x| x).name("double").collect();
    let metrics = env.execute("metrics").unwrap().wait().unwrap().metrics;
    assert_eq!(metrics.counter("Sink: Collect", "records_written"), Ok(100));
    let typo = metrics.counter("Sink: Collect", "records_writen").unwrap_err().to_string();
    assert_eq!(typo, "no counter 'records_writen' on operator 'Sink: Collect'; its counters are: records_written");
    let wrong_operator = metrics.counter("Sink: collect", "records_written").unwrap_err().to_string();
    assert!(
        wrong_operator.contains("the operators are: ") && wrong_operator.contains("Sink: Collect"),
        "{wrong_operator}"
    );
}
