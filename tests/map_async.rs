//! `map_async` as a service uses it to enrich events: many lookups in flight, results in input
//! order or as they come (never past a watermark), slow or failing lookups as dead letters,
//! at most `capacity` lookups at once, the service's own runtime, and exactly-once results
//! across a failure and across a savepoint restored at another parallelism.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eddy::prelude::*;

/// A lookup that takes 0 to 4 ms, depending on the value (so results finish out of order).
async fn lookup(x: u64) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(x * 7919 % 5)).await;
    Ok(x * 10 + 1)
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

#[test]
fn ordered_results_keep_the_input_order() {
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let out = env.from_iter(0..2_000u64).map_async(50, Duration::from_secs(10), ResultOrder::Ordered, lookup).collect();
    env.execute("ordered").unwrap().wait().unwrap();
    assert_eq!(out.take(), (0..2_000).map(|x| x * 10 + 1).collect::<Vec<_>>());
}

/// Unordered results may overtake each other, but none may come after a watermark that
/// already passed its timestamp (it would become late).
#[test]
fn unordered_results_never_become_late() {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let late = OutputTag::<u64>::new("late");
    let tag = late.clone();
    let checked = env
        .from_collection((0..4_000u64).collect())
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::monotonous().with_interval(Duration::from_millis(1)),
            |x| *x as i64,
        )
        .map_async(64, Duration::from_secs(10), ResultOrder::Unordered, |x| async move {
            // Every tenth lookup is slow: the others finish first.
            tokio::time::sleep(Duration::from_millis(if x % 10 == 0 { 20 } else { 0 })).await;
            Ok::<_, String>(x)
        })
        .process(move |x: u64, ctx: &mut ProcessContext<'_, u64>| {
            if ctx.timestamp().unwrap() <= ctx.current_watermark() {
                ctx.output(&tag, x);
            } else {
                ctx.collect(x);
            }
        });
    let late = checked.side_output(&late).collect();
    let on_time = checked.collect();
    env.execute("unordered").unwrap().wait().unwrap();
    assert_eq!(late.take(), Vec::<u64>::new(), "a result came after a watermark past its timestamp");
    assert_eq!(sorted(on_time.take()), (0..4_000).collect::<Vec<_>>());
}

#[test]
fn errors_and_timeouts_become_dead_letters_and_capacity_bounds_the_lookups_in_flight() {
    const CAPACITY: usize = 8;
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (now, peak) = (running.clone(), most.clone());
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let looked_up =
        env.from_iter(0..300u64).map_async(CAPACITY, Duration::from_millis(100), ResultOrder::Unordered, move |x| {
            let (now, peak) = (now.clone(), peak.clone());
            async move {
                // Counted while the future lives (a timed-out one is dropped when cancelled).
                struct Running(Arc<AtomicUsize>);
                impl Drop for Running {
                    fn drop(&mut self) {
                        self.0.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                peak.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                let _running = Running(now);
                match x % 50 {
                    7 => Err(format!("no record for {x}")),
                    13 => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        Ok(x)
                    }
                    _ => {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        Ok(x)
                    }
                }
            }
        });
    let dead = looked_up.dead_letters::<u64>().map(|d| (d.input, d.error)).collect();
    let found = looked_up.collect();
    let result = env.execute("errors").unwrap().wait().unwrap();
    let want_found: Vec<u64> = (0..300).filter(|x| x % 50 != 7 && x % 50 != 13).collect();
    assert_eq!(sorted(found.take()), want_found);
    let dead: BTreeMap<u64, String> = dead.take().into_iter().collect();
    assert_eq!(
        dead.keys().copied().collect::<Vec<_>>(),
        (0..300).filter(|x| x % 50 == 7 || x % 50 == 13).collect::<Vec<_>>()
    );
    for (x, error) in &dead {
        let want = if x % 50 == 7 { format!("no record for {x}") } else { "timed out after 100ms".to_string() };
        assert_eq!(error, &want);
    }
    assert_eq!(result.metrics.total("AsyncMap", "dead_letters"), 12);
    assert!(most.load(Ordering::SeqCst) <= CAPACITY, "{} lookups ran at once", most.load(Ordering::SeqCst));
    assert_eq!(running.load(Ordering::SeqCst), 0, "timed-out lookups were cancelled");
}

#[test]
fn a_panicking_lookup_fails_the_job() {
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    env.from_iter(0..10u64)
        .map_async(4, Duration::from_secs(5), ResultOrder::Ordered, |x| async move {
            if x == 5 {
                panic!("lookup of {x} blew up");
            }
            Ok::<_, String>(x)
        })
        .collect();
    let error = env.execute("panics").unwrap().wait().unwrap_err().to_string();
    assert!(error.contains("the async function panicked: lookup of 5 blew up"), "{error}");
}

#[test]
fn lookups_run_on_the_services_runtime_when_given() {
    let service = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("service-worker")
        .enable_all()
        .build()
        .unwrap();
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.set_async_runtime(service.handle().clone());
    let threads = env
        .from_collection((0..100u64).collect())
        .map_async(10, Duration::from_secs(5), ResultOrder::Unordered, |_| async {
            tokio::task::yield_now().await;
            Ok::<_, String>(std::thread::current().name().unwrap_or("").to_string())
        })
        .collect();
    env.execute("service runtime").unwrap().wait().unwrap();
    let threads = threads.take();
    assert_eq!(threads.len(), 100);
    assert!(threads.iter().all(|t| t == "service-worker"), "{:?}", threads.iter().find(|t| *t != "service-worker"));
}

/// The job of the exactly-once tests: lookups of `0..n` (0 to 4 ms each), a failure once
/// after `fail_at` lookups have passed (if set), into an exactly-once `collect`.
fn enrich(env: &StreamEnvironment, n: u64, fail_at: Option<u64>, order: ResultOrder) -> Collected<u64> {
    let failed = Arc::new(AtomicBool::new(fail_at.is_none()));
    env.generate(Some(n), |i| i)
        .uid("numbers")
        .map_async(32, Duration::from_secs(10), order, lookup)
        .uid("lookups")
        .map(move |x: u64| {
            if Some(x / 10) == fail_at && !failed.swap(true, Ordering::Relaxed) {
                panic!("failure injected after lookup {}", x / 10);
            }
            x
        })
        .collect()
}

#[test]
fn results_are_exactly_once_across_a_failure() {
    for order in [ResultOrder::Ordered, ResultOrder::Unordered] {
        let env = StreamEnvironment::new();
        env.set_parallelism(2);
        env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(10)));
        env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 1, delay: Duration::from_millis(10) });
        let out = enrich(&env, 6_000, Some(4_000), order);
        let result = env.execute("exactly once").unwrap().wait().unwrap();
        assert_eq!(result.restarts, 1, "{order:?}");
        assert!(result.checkpoints > 2, "{order:?}: checkpoints were taken while lookups were in flight");
        assert_eq!(sorted(out.take()), (0..6_000).map(|x| x * 10 + 1).collect::<Vec<_>>(), "{order:?}");
    }
}

#[test]
fn results_are_exactly_once_across_a_savepoint_restored_at_another_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::on_request());
    let first = enrich(&env, 50_000, None, ResultOrder::Unordered);
    let job = env.execute("before").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let savepoint = job.stop_with_savepoint(dir.path().join("sp"), false).unwrap();
    job.wait().unwrap();
    let before = first.take();
    assert!(before.len() < 50_000, "the job was stopped mid-way ({} results)", before.len());

    let env = StreamEnvironment::new();
    env.set_parallelism(3);
    env.enable_checkpointing(CheckpointConfig::on_request());
    env.restore_from(&savepoint);
    let second = enrich(&env, 50_000, None, ResultOrder::Unordered);
    env.execute("after").unwrap().wait().unwrap();
    let all = sorted(before.into_iter().chain(second.take()).collect());
    assert_eq!(all, (0..50_000).map(|x| x * 10 + 1).collect::<Vec<_>>());
}
