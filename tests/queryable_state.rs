//! Queryable state as a service reads it: by key and by scan, from other threads and async
//! tasks, while the job writes the state and takes checkpoints, with the heap and the sled
//! backend. Every value read must be one the key really had at some point (a prefix sum of
//! its records, computed plainly), never going back, and the last ones must be the totals.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy::prelude::*;

const KEYS: u64 = 10;

/// The running totals a key goes through: records `i` with `i % KEYS == key`, in order.
fn prefix_sums(n: u64) -> BTreeMap<u64, Vec<u64>> {
    let mut sums: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for i in 0..n {
        let sums = sums.entry(i % KEYS).or_default();
        sums.push(sums.last().copied().unwrap_or(0) + i);
    }
    sums
}

/// A job summing records per key in a value state "total" of operator "totals", emitting
/// each new total; sources at parallelism 2 keep each key's records in order (a key's
/// records all come from one source subtask).
fn totals_job(env: &StreamEnvironment, n: Option<u64>) -> Collected<(u64, u64)> {
    let total = ValueStateDescriptor::<u64>::new("total");
    env.generate(n, |i| i)
        .set_parallelism(2)
        .uid("numbers")
        .map(|i: u64| {
            if i % 1_000 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
            i
        })
        .set_parallelism(2)
        .key_by(|i: &u64| i % KEYS)
        .process(move |i: &u64, ctx: &mut KeyedContext<'_, u64, (u64, u64)>| {
            let state = ctx.state().value_state(&total)?;
            let sum = state.value()?.unwrap_or(0) + i;
            state.update(sum)?;
            ctx.collect((i % KEYS, sum));
            Ok(())
        })
        .uid("totals")
        .collect()
}

fn reads_during_writes_and_checkpoints(state_dir: Option<&std::path::Path>) {
    const N: u64 = 300_000;
    let model = Arc::new(prefix_sums(N));
    let env = StreamEnvironment::new();
    env.set_parallelism(3);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(5)));
    if let Some(dir) = state_dir {
        env.set_state_dir(dir);
    }
    let emitted = totals_job(&env, Some(N));
    let job = env.execute("queried").unwrap();
    let totals = job.state::<u64, u64>("totals", "total").unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|reader| {
            let (totals, model, done) = (totals.clone(), model.clone(), done.clone());
            std::thread::spawn(move || {
                let mut last = [0u64; KEYS as usize];
                let mut reads = 0;
                while !done.load(Ordering::Relaxed) {
                    let key = (reads + reader) % KEYS;
                    let Ok(value) = totals.get(&key) else { break }; // the job has ended
                    if let Some(value) = value {
                        assert!(
                            model[&key].binary_search(&value).is_ok(),
                            "key {key}: {value} is no total it ever had"
                        );
                        assert!(
                            value >= last[key as usize],
                            "key {key} went back from {} to {value}",
                            last[key as usize]
                        );
                        last[key as usize] = value;
                    }
                    if reads % 50 == 0 {
                        if let Ok(all) = totals.scan() {
                            assert!(all.len() <= KEYS as usize);
                            for (key, value) in all {
                                assert!(model[&key].binary_search(&value).is_ok(), "scan: key {key}: {value}");
                            }
                        }
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let start = Instant::now();
    while !job.is_finished() {
        assert!(start.elapsed() < Duration::from_secs(120), "the job hung");
        std::thread::sleep(Duration::from_millis(10));
    }
    let result = job.clone().wait().unwrap();
    done.store(true, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 100, "only {reads} reads while the job ran");
    assert!(result.checkpoints > 10, "only {} checkpoints while it was read", result.checkpoints);
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    for (key, sum) in emitted.take() {
        let entry = last.entry(key).or_default();
        *entry = (*entry).max(sum);
    }
    let want: BTreeMap<u64, u64> = model.iter().map(|(k, sums)| (*k, *sums.last().unwrap())).collect();
    assert_eq!(last, want);
    let after = totals.get(&1);
    assert!(matches!(after, Err(QueryError::Unavailable { .. })), "a finished job answers nothing: {after:?}");
}

#[test]
fn reads_during_writes_and_checkpoints_see_only_real_totals_on_the_heap() {
    reads_during_writes_and_checkpoints(None);
}

#[test]
fn reads_during_writes_and_checkpoints_see_only_real_totals_in_sled() {
    let dir = tempfile::tempdir().unwrap();
    reads_during_writes_and_checkpoints(Some(dir.path()));
}

/// A job over a channel the test controls, so it can read a state that no longer changes.
fn settled(records: &[(String, i64)]) -> (JobHandle, crossbeam_channel::Sender<(String, i64)>) {
    let (sender, receiver) = crossbeam_channel::bounded(64);
    let env = StreamEnvironment::new();
    env.set_parallelism(3);
    let sums = ValueStateDescriptor::<i64>::new("sum");
    let seen = ListStateDescriptor::<i64>::new("seen");
    env.from_channel(receiver)
        .key_by(|r: &(String, i64)| r.0.clone())
        .process(move |r: &(String, i64), ctx: &mut KeyedContext<'_, String, ()>| {
            let sum = ctx.state().value_state(&sums)?;
            sum.update(sum.value()?.unwrap_or(0) + r.1)?;
            ctx.state().list_state(&seen)?.add(r.1)?;
            Ok(())
        })
        .uid("sums");
    let job = env.execute("settled").unwrap();
    for record in records {
        sender.send(record.clone()).unwrap();
    }
    (job, sender)
}

fn eventually<T: PartialEq + std::fmt::Debug>(want: T, mut read: impl FnMut() -> T) {
    let start = Instant::now();
    loop {
        let got = read();
        if got == want {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "still {got:?}, want {want:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn get_and_scans_answer_by_key_and_by_range() {
    let records: Vec<(String, i64)> = (0..200).map(|i| (format!("k{:02}", i % 25), i)).collect();
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for (key, value) in &records {
        *want.entry(key.clone()).or_default() += value;
    }
    let (job, sender) = settled(&records);
    let sums = job.state::<String, i64>("sums", "sum").unwrap();
    eventually(want.clone().into_iter().collect::<Vec<_>>(), || {
        let mut all = sums.scan().unwrap();
        all.sort();
        all
    });
    assert_eq!(sums.get(&"k07".to_string()).unwrap(), Some(want["k07"]));
    assert_eq!(sums.get(&"nobody".to_string()).unwrap(), None);
    let range = sums.scan_range("k10".to_string().."k13".to_string()).unwrap();
    let want_range: Vec<(String, i64)> =
        want.range("k10".to_string().."k13".to_string()).map(|(k, v)| (k.clone(), *v)).collect();
    assert_eq!(range, want_range);
    drop(sender);
    job.wait().unwrap();
}

#[test]
fn misaddressed_reads_say_what_to_change() {
    let (job, sender) = settled(&[("a".to_string(), 1)]);
    let sums = job.state::<String, i64>("sums", "sum").unwrap();
    eventually(Some(1), || sums.get(&"a".to_string()).unwrap());
    match job.state::<String, i64>("summs", "sum") {
        Err(QueryError::UnknownOperator { uid, known }) => {
            assert_eq!((uid.as_str(), known.as_str()), ("summs", "sums"))
        }
        other => panic!("expected an unknown operator, got {:?}", other.err()),
    }
    let wrong_type = job.state::<String, String>("sums", "sum").unwrap().get(&"a".to_string());
    assert!(
        matches!(&wrong_type, Err(QueryError::TypeMismatch { registered: "i64", requested, .. }) if requested.ends_with("String")),
        "{wrong_type:?}"
    );
    let list = job.state::<String, i64>("sums", "seen").unwrap().get(&"a".to_string());
    let message = list.unwrap_err().to_string();
    assert!(message.contains("'seen' is a list state"), "{message}");
    drop(sender);
    job.wait().unwrap();
}

#[test]
fn expired_values_are_not_returned() {
    let (sender, receiver) = crossbeam_channel::bounded(8);
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let last = ValueStateDescriptor::<u32>::new("last").with_ttl(StateTtlConfig::new(Duration::from_millis(300)));
    env.from_channel(receiver)
        .key_by(|x: &u32| x % 2)
        .process(move |x: &u32, ctx: &mut KeyedContext<'_, u32, ()>| {
            ctx.state().value_state(&last)?.update(*x)?;
            Ok(())
        })
        .uid("last");
    let job = env.execute("ttl").unwrap();
    sender.send(7).unwrap();
    let last = job.state::<u32, u32>("last", "last").unwrap();
    eventually(Some(7), || last.get(&1).unwrap());
    // Reads do not refresh the value: it expires 300 ms after it was written.
    eventually(None, || last.get(&1).unwrap());
    drop(sender);
    job.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_reads_leave_the_runtime_free() {
    let (sender, receiver) = tokio::sync::mpsc::channel(8);
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let count = ValueStateDescriptor::<u64>::new("count");
    env.from_channel(receiver)
        .key_by(|w: &String| w.clone())
        .process(move |_: &String, ctx: &mut KeyedContext<'_, String, ()>| {
            let state = ctx.state().value_state(&count)?;
            state.update(state.value()?.unwrap_or(0) + 1)?;
            Ok(())
        })
        .uid("counts");
    let job = env.execute("async reads").unwrap();
    for word in ["to", "be", "or", "not", "to", "be"] {
        sender.send(word.to_string()).await.unwrap();
    }
    let counts = job.state::<String, u64>("counts", "count").unwrap();
    let start = Instant::now();
    while counts.get_async(&"to".to_string()).await.unwrap() != Some(2) {
        assert!(start.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut all = counts.scan_async().await.unwrap();
    all.sort();
    assert_eq!(all, vec![("be".into(), 2), ("not".into(), 1), ("or".into(), 1), ("to".into(), 2)]);
    drop(sender);
    job.await.unwrap();
}

/// Every keyed operator runs in the one shell, so a window or a rolling aggregate with a uid
/// can be addressed too; its own state (namespaced, a live table on the heap, entries in
/// sled) is refused alike on both backends, with the reason.
fn an_operators_own_state_is_refused(state_dir: Option<&std::path::Path>) {
    let (sender, receiver) = crossbeam_channel::bounded(16);
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    if let Some(dir) = state_dir {
        env.set_state_dir(dir);
    }
    let sums =
        env.from_channel(receiver).key_by(|r: &(String, i64)| r.0.clone()).sum(|r| &mut r.1).uid("rolling").collect();
    let job = env.execute("rolling").unwrap();
    sender.send(("a".to_string(), 2)).unwrap();
    let read = job.state::<String, (String, i64)>("rolling", "rolling").unwrap();
    let message = read.get(&"a".to_string()).unwrap_err().to_string();
    assert!(message.contains("'rolling' is a namespaced state"), "{message}");
    drop(sender);
    job.wait().unwrap();
    assert_eq!(sums.take(), vec![("a".to_string(), 2)]);
}

#[test]
fn an_operators_own_state_is_refused_on_the_heap() {
    an_operators_own_state_is_refused(None);
}

#[test]
fn an_operators_own_state_is_refused_in_sled() {
    let dir = tempfile::tempdir().unwrap();
    an_operators_own_state_is_refused(Some(dir.path()));
}
