//! Stop a job with a savepoint part-way through a replayable input and restore it at another
//! parallelism: the round trip the keyed-operator, join and sliding-window property tests
//! check against their sequential models.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eddy::prelude::*;

use crate::replayable::Event;

/// One run's environment and the output its job collects.
pub struct Run<O> {
    pub env: StreamEnvironment,
    pub out: Collected<O>,
}

/// A run's environment: parallelism, backend, checkpoints every 20 ms and restarts.
pub fn environment(parallelism: usize, sled: Option<&std::path::Path>) -> StreamEnvironment {
    let env = StreamEnvironment::new();
    env.set_parallelism(parallelism).set_batch_size(16).set_max_parallelism(16);
    if let Some(dir) = sled {
        env.set_state_dir(dir).set_state_cache_size(1 << 20);
    }
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)));
    env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 3, delay: Duration::ZERO });
    env
}

/// What [`stopped_and_restored`] runs: the job over the events (up to the limit), failing
/// once at the event the pair names, in the environment given.
pub trait Job<O>: Fn(&Arc<Vec<Event>>, &Arc<AtomicU64>, &Arc<(u64, AtomicBool)>, StreamEnvironment) -> Run<O> {}

impl<O, F> Job<O> for F where
    F: Fn(&Arc<Vec<Event>>, &Arc<AtomicU64>, &Arc<(u64, AtomicBool)>, StreamEnvironment) -> Run<O>
{
}

/// Runs `first` at `before` until about `cut` events, stops it with a savepoint, restores
/// `restored` (the same job, or one that differs only where a restore may) at `after` and
/// runs it to the end; returns both runs' output, sorted.
pub fn stopped_and_restored<O: Ord>(
    (first, restored): (impl Job<O>, impl Job<O>),
    events: Vec<Event>,
    (before, after): (usize, usize),
    cut: u64,
    fail_at: u64,
    sled: bool,
) -> Vec<O> {
    let dir = tempfile::tempdir().unwrap();
    let state = sled.then(|| dir.path().join("state"));
    let events = Arc::new(events);
    let fail = Arc::new((fail_at, AtomicBool::new(false)));
    let limit = Arc::new(AtomicU64::new(cut));
    let first = first(&events, &limit, &fail, environment(before, state.as_deref()));
    let handle = first.env.execute("stopped").unwrap();
    // A stop that meets the injected failure is not completed; the job restarts and goes on.
    let savepoint = loop {
        match handle.stop_with_savepoint(dir.path().join("savepoint"), false) {
            Ok(path) => break path,
            Err(e) if e.to_string().contains("not completed") => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("{e}"),
        }
    };
    handle.wait().unwrap();
    limit.store(u64::MAX, Ordering::SeqCst);
    let env = environment(after, state.as_deref());
    env.restore_from(&savepoint);
    let second = restored(&events, &limit, &fail, env);
    second.env.execute("restored").unwrap().wait().unwrap();
    let mut all = first.out.take();
    all.extend(second.out.take());
    all.sort();
    all
}
