//! A savepoint written before the keyed operators ran in one shell still restores: windows,
//! sessions, triggered windows and rolling aggregates kept their state in tables of their
//! own then, checkpointed under other names in their own encodings, and a restore converts
//! it into the keyed state store.
//!
//! `pre_shell/fixture.bin` holds the savepoint's operators, read back with `SnapshotReader`
//! and bincode-encoded, exactly as eddy wrote them at commit c2db98e: the job in
//! `pre_shell/job.rs` ran the first half of its events at parallelism 2 and was stopped with
//! a savepoint; `pre_shell/first_half.json` is what it emitted until then. This test writes
//! the operators back into a savepoint directory (the on-disk format is unchanged), restores
//! the same job at parallelism 3 and runs the rest: both halves together must be what a
//! sequential model of all events says.

#[path = "pre_shell/job.rs"]
mod job;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use eddy::prelude::*;
use eddy_state::checkpoint::write_snapshot;
use eddy_state::{OperatorSnapshot, SnapshotHeader};
use job::{event, Out, EVENTS, GAP_MS};

const FIXTURE: &[u8] = include_bytes!("pre_shell/fixture.bin");
const FIRST_HALF: &str = include_str!("pre_shell/first_half.json");

/// Everything the job emits for all events, but the early firings (their number depends on
/// when watermarks came), sorted; and each early window's final count.
fn model() -> (Vec<Out>, BTreeMap<(u64, i64), u64>) {
    let events: Vec<_> = (0..EVENTS).map(event).collect();
    let mut out = Vec::new();
    let mut tumbling: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    let mut sums: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    let mut early: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    let mut sessions: BTreeMap<(u64, u64), (i64, i64, u64)> = BTreeMap::new();
    let (mut seen, mut running): (BTreeMap<u64, u64>, BTreeMap<u64, u64>) = Default::default();
    let mut timers = BTreeSet::new();
    for (i, &(key, ts, value)) in events.iter().enumerate() {
        *tumbling.entry((key, ts - ts % 500)).or_default() += 1;
        *sums.entry((key, ts - ts % 300)).or_default() += value;
        *early.entry((key, ts - ts % 1_000)).or_default() += 1;
        let session = sessions.entry((key, i as u64 / 40)).or_insert((ts, ts, 0));
        session.1 = ts;
        session.2 += 1;
        let n = seen.entry(key).or_default();
        *n += 1;
        if *n % 3 == 0 {
            out.push(Out::Counted { key, count: *n });
        }
        out.push(Out::Processed { key, count: *n });
        let sum = running.entry(key).or_default();
        *sum += value;
        out.push(Out::Running { key, sum: *sum });
        timers.insert((key, ts - ts % 1_000 + 999));
    }
    out.extend(tumbling.into_iter().map(|((key, start), count)| Out::Tumbling { key, start, count }));
    out.extend(sums.into_iter().map(|((key, start), sum)| Out::Sum { key, start, sum }));
    out.extend(sessions.into_iter().map(|((key, _), (start, last, count))| Out::Session {
        key,
        start,
        end: last + GAP_MS,
        count,
    }));
    out.extend(timers.into_iter().map(|(key, at)| Out::Timer { key, at }));
    out.sort();
    (out, early)
}

#[test]
fn a_savepoint_of_the_operators_before_the_shell_restores_at_another_parallelism() {
    let ((header, operators), _): ((SnapshotHeader, Vec<OperatorSnapshot>), usize) =
        bincode::serde::decode_from_slice(FIXTURE, bincode::config::standard()).unwrap();
    // The fixture holds the old formats this test is about.
    let states: BTreeSet<(&str, &str)> =
        operators.iter().flat_map(|o| o.keyed.iter().map(move |k| (o.uid.as_str(), k.state.as_str()))).collect();
    for expected in [("tumbling", "windows"), ("sums", "windows"), ("sessions", "sessions"), ("counted", "windows")] {
        assert!(states.contains(&expected), "the fixture has no {expected:?}: {states:?}");
    }
    assert!(states.contains(&("early", "windows")) && states.contains(&("running", "running")), "{states:?}");
    assert!(states.contains(&("process", "_timers")), "{states:?}");
    let dir = tempfile::tempdir().unwrap();
    let savepoint = dir.path().join("savepoint");
    write_snapshot(&savepoint, header, &operators).unwrap();

    let env = StreamEnvironment::new();
    env.set_parallelism(3);
    env.enable_checkpointing(CheckpointConfig::on_request());
    env.restore_from(&savepoint);
    let out = Arc::new(Mutex::new(Vec::new()));
    job::build(&env, Arc::new(AtomicU64::new(EVENTS)), out.clone());
    env.execute("pre-shell savepoint, restored").unwrap().wait().unwrap();

    let first: Vec<Out> = serde_json::from_str(FIRST_HALF).unwrap();
    let second = out.lock().unwrap().clone();
    // The first run stopped after exactly the first half (one `Processed` per event).
    let processed = |out: &[Out]| out.iter().filter(|o| matches!(o, Out::Processed { .. })).count() as u64;
    assert_eq!((processed(&first), processed(&second)), (job::HALF, EVENTS - job::HALF));
    let (expected, early) = model();
    let (mut got, early_got): (Vec<Out>, Vec<Out>) =
        first.into_iter().chain(second).partition(|o| !matches!(o, Out::Early { .. }));
    got.sort();
    assert_eq!(got.len(), expected.len());
    for (got, expected) in got.iter().zip(&expected) {
        assert_eq!(got, expected);
    }
    // Early firings: counts only grow, and each window's last is its whole count.
    let mut last: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    for o in early_got {
        let Out::Early { key, start, count } = o else { unreachable!() };
        let previous = last.entry((key, start)).or_default();
        assert!(count <= early[&(key, start)]);
        *previous = (*previous).max(count);
    }
    assert_eq!(last, early);
}
