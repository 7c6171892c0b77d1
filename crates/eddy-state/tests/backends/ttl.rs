//! TTL with a fake clock: expiry, refresh on read, per-element expiry, cleanup.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use eddy_state::{
    Clock, KeyedStateStore, ListStateDescriptor, ManualClock, MapStateDescriptor, ReducingStateDescriptor,
    StateBackend, StateTtlConfig, UpdateType, ValueStateDescriptor,
};
use proptest::prelude::*;

use crate::fixture::{runner, Fixture};

const TTL_MS: i64 = 10;

fn ttl(update_type: UpdateType) -> StateTtlConfig {
    StateTtlConfig::new(Duration::from_millis(TTL_MS as u64)).update_type(update_type)
}

#[derive(Debug, Clone)]
enum Op {
    SetKey(u8),
    Advance(i64),
    ValueUpdate(i32),
    ValueGet,
    ListAdd(i32),
    ListUpdate(Vec<i32>),
    ListGet,
    MapPut(u8, i32),
    MapGet(u8),
    MapContains(u8),
    MapRemove(u8),
    MapEntries,
    MapIsEmpty,
    ReduceAdd(i64),
    ReduceGet,
    CleanupAll,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u8..4).prop_map(Op::SetKey),
        3 => (0i64..8).prop_map(Op::Advance),
        1 => any::<i32>().prop_map(Op::ValueUpdate),
        1 => Just(Op::ValueGet),
        1 => any::<i32>().prop_map(Op::ListAdd),
        1 => proptest::collection::vec(any::<i32>(), 0..3).prop_map(Op::ListUpdate),
        1 => Just(Op::ListGet),
        1 => (0u8..5, any::<i32>()).prop_map(|(k, v)| Op::MapPut(k, v)),
        1 => (0u8..5).prop_map(Op::MapGet),
        1 => (0u8..5).prop_map(Op::MapContains),
        1 => (0u8..5).prop_map(Op::MapRemove),
        1 => Just(Op::MapEntries),
        1 => Just(Op::MapIsEmpty),
        1 => (-100i64..100).prop_map(Op::ReduceAdd),
        1 => Just(Op::ReduceGet),
        1 => Just(Op::CleanupAll),
    ]
}

/// A value with the time it was last refreshed.
type Stamped<T> = (T, i64);

/// One key's state in the model.
#[derive(Debug, Default)]
struct Model {
    value: Option<Stamped<i32>>,
    list: Vec<Stamped<i32>>,
    map: BTreeMap<u8, Stamped<i32>>,
    reduced: Option<Stamped<i64>>,
}

fn live(at: i64, now: i64) -> bool {
    at + TTL_MS > now
}

/// Reads a single value as TTL says: expired is gone, a read refreshes under OnReadAndWrite.
fn read<T: Clone>(slot: &mut Option<Stamped<T>>, now: i64, on_read: bool) -> Option<T> {
    match slot {
        Some((_, at)) if !live(*at, now) => {
            *slot = None;
            None
        }
        Some((v, at)) => {
            if on_read {
                *at = now;
            }
            Some(v.clone())
        }
        None => None,
    }
}

/// TTL states under random operations and clock moves match a model that stamps each
/// value, list element and map entry.
pub fn ttl_states_match_a_model_with_a_fake_clock<F: Fixture>() {
    let ops = proptest::collection::vec(op(), 1..80);
    let update = prop_oneof![Just(UpdateType::OnCreateAndWrite), Just(UpdateType::OnReadAndWrite)];
    let cleanup = 0usize..4;
    runner::<F>()
        .run(&(ops, update, cleanup), |(ops, update, cleanup)| {
            let on_read = update == UpdateType::OnReadAndWrite;
            let (backend, _dir) = F::open(16);
            let clock = ManualClock::new(1_000);
            let store = KeyedStateStore::new(backend).with_clock(clock.clone());
            let ttl = ttl(update).cleanup_incrementally(cleanup);
            let value = store.value_state(&ValueStateDescriptor::<i32>::new("value").with_ttl(ttl)).unwrap();
            let list = store.list_state(&ListStateDescriptor::<i32>::new("list").with_ttl(ttl)).unwrap();
            let map = store.map_state(&MapStateDescriptor::<u8, i32>::new("map").with_ttl(ttl)).unwrap();
            let sum = ReducingStateDescriptor::new("sum", |a: i64, b: i64| a + b).with_ttl(ttl);
            let reducing = store.reducing_state(&sum).unwrap();

            let mut models: HashMap<u8, Model> = HashMap::new();
            let mut current = 0u8;
            store.set_current_key(&current).unwrap();
            for op in ops {
                let now = clock.now_ms();
                let model = models.entry(current).or_default();
                match op {
                    Op::SetKey(n) => {
                        current = n;
                        store.set_current_key(&n).unwrap();
                    }
                    Op::Advance(ms) => clock.set(now + ms),
                    Op::ValueUpdate(v) => {
                        value.update(v).unwrap();
                        model.value = Some((v, now));
                    }
                    Op::ValueGet => prop_assert_eq!(value.value().unwrap(), read(&mut model.value, now, on_read)),
                    Op::ListAdd(v) => {
                        list.add(v).unwrap();
                        model.list.push((v, now));
                    }
                    Op::ListUpdate(vs) => {
                        list.update(&vs).unwrap();
                        model.list = vs.into_iter().map(|v| (v, now)).collect();
                    }
                    Op::ListGet => {
                        model.list.retain(|(_, at)| live(*at, now));
                        if on_read {
                            model.list.iter_mut().for_each(|(_, at)| *at = now);
                        }
                        let expected: Vec<i32> = model.list.iter().map(|(v, _)| *v).collect();
                        prop_assert_eq!(list.get().unwrap(), expected);
                    }
                    Op::MapPut(k, v) => {
                        map.put(k, v).unwrap();
                        model.map.insert(k, (v, now));
                    }
                    Op::MapGet(k) | Op::MapContains(k) => {
                        let mut slot = model.map.remove(&k);
                        let expected = read(&mut slot, now, on_read);
                        if let Some(entry) = slot {
                            model.map.insert(k, entry);
                        }
                        if matches!(op, Op::MapGet(_)) {
                            prop_assert_eq!(map.get(&k).unwrap(), expected);
                        } else {
                            prop_assert_eq!(map.contains(&k).unwrap(), expected.is_some());
                        }
                    }
                    Op::MapRemove(k) => {
                        map.remove(&k).unwrap();
                        model.map.remove(&k);
                    }
                    Op::MapEntries => {
                        model.map.retain(|_, (_, at)| live(*at, now));
                        if on_read {
                            model.map.values_mut().for_each(|(_, at)| *at = now);
                        }
                        let mut entries: Vec<(u8, i32)> = map.entries().unwrap().map(Result::unwrap).collect();
                        entries.sort();
                        let expected: Vec<(u8, i32)> = model.map.iter().map(|(k, (v, _))| (*k, *v)).collect();
                        prop_assert_eq!(entries, expected);
                    }
                    Op::MapIsEmpty => {
                        let expected = !model.map.values().any(|(_, at)| live(*at, now));
                        prop_assert_eq!(map.is_empty().unwrap(), expected);
                    }
                    Op::ReduceAdd(v) => {
                        reducing.add(v).unwrap();
                        let old = model.reduced.filter(|(_, at)| live(*at, now)).map(|(old, _)| old);
                        model.reduced = Some((old.map_or(v, |old| old + v), now));
                    }
                    Op::ReduceGet => {
                        prop_assert_eq!(reducing.get().unwrap(), read(&mut model.reduced, now, on_read))
                    }
                    Op::CleanupAll => {
                        for key_group in 0..16 {
                            store.cleanup_expired(key_group).unwrap();
                        }
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

/// Under OnCreateAndWrite a value dies `ttl` after its last write, however often it is read.
pub fn on_create_and_write_expires_despite_reads<F: Fixture>() {
    let (backend, _dir) = F::open(128);
    let clock = ManualClock::new(0);
    let store = KeyedStateStore::new(backend).with_clock(clock.clone());
    let descriptor = ValueStateDescriptor::<String>::new("session").with_ttl(ttl(UpdateType::OnCreateAndWrite));
    let session = store.value_state(&descriptor).unwrap();
    store.set_current_key("user").unwrap();
    session.update("started".to_string()).unwrap();
    for t in [3, 6, 9] {
        clock.set(t);
        assert_eq!(session.value().unwrap().as_deref(), Some("started"), "at {t}");
    }
    clock.set(10);
    assert_eq!(session.value().unwrap(), None, "expired exactly ttl after the write");
    // A write brings it back with a fresh timestamp.
    session.update("again".to_string()).unwrap();
    clock.set(19);
    assert_eq!(session.value().unwrap().as_deref(), Some("again"));
    clock.set(20);
    assert_eq!(session.value().unwrap(), None);
}

/// Under OnReadAndWrite every read restarts the clock.
pub fn on_read_and_write_reads_keep_values_alive<F: Fixture>() {
    let (backend, _dir) = F::open(128);
    let clock = ManualClock::new(0);
    let store = KeyedStateStore::new(backend).with_clock(clock.clone());
    let descriptor = ValueStateDescriptor::<u32>::new("hits").with_ttl(ttl(UpdateType::OnReadAndWrite));
    let hits = store.value_state(&descriptor).unwrap();
    store.set_current_key("user").unwrap();
    hits.update(1).unwrap();
    for t in [9, 18, 27, 36] {
        clock.set(t);
        assert_eq!(hits.value().unwrap(), Some(1), "a read 9 ms after the last access, at {t}");
    }
    clock.set(46);
    assert_eq!(hits.value().unwrap(), None, "10 ms without access");
}

/// List elements and map entries carry their own timestamps.
pub fn list_elements_and_map_entries_expire_one_by_one<F: Fixture>() {
    let (backend, _dir) = F::open(128);
    let clock = ManualClock::new(100);
    let store = KeyedStateStore::new(backend).with_clock(clock.clone());
    let ttl = ttl(UpdateType::OnCreateAndWrite);
    let list = store.list_state(&ListStateDescriptor::<String>::new("events").with_ttl(ttl)).unwrap();
    let map = store.map_state(&MapStateDescriptor::<String, u32>::new("prices").with_ttl(ttl)).unwrap();
    store.set_current_key("k").unwrap();
    list.add("early".to_string()).unwrap();
    map.put("early".to_string(), 1).unwrap();
    clock.set(105);
    list.add("late".to_string()).unwrap();
    map.put("late".to_string(), 2).unwrap();
    clock.set(110);
    assert_eq!(list.get().unwrap(), ["late"]);
    assert_eq!(map.get(&"early".to_string()).unwrap(), None);
    assert_eq!(map.entries().unwrap().map(Result::unwrap).collect::<Vec<_>>(), [("late".to_string(), 2)]);
    clock.set(115);
    assert!(list.get().unwrap().is_empty());
    assert!(map.is_empty().unwrap());
    // Nothing of the key is left in the backend once reads have seen it all expire.
    let kg = store.current_key_group().unwrap();
    assert!(store.with_backend(|b| b.snapshot_key_group(kg).unwrap()).unwrap().is_empty());
}

/// Keys that are never read again are still removed, a few entries per access.
pub fn incremental_cleanup_removes_keys_nobody_reads<F: Fixture>() {
    let (backend, _dir) = F::open(4);
    let clock = ManualClock::new(0);
    let store = KeyedStateStore::new(backend).with_clock(clock.clone());
    let descriptor = ValueStateDescriptor::<u32>::new("v").with_ttl(ttl(UpdateType::OnCreateAndWrite));
    let v = store.value_state(&descriptor).unwrap();
    for key in 0..100u32 {
        store.set_current_key(&key).unwrap();
        v.update(key).unwrap();
    }
    let stored = |store: &KeyedStateStore<F::Backend>| {
        (0..4).map(|kg| store.with_backend(|b| b.snapshot_key_group(kg).unwrap().len()).unwrap()).sum::<usize>()
    };
    assert_eq!(stored(&store), 100);
    clock.set(50);
    // Touch one key only, many times: the cleanup cursor walks the other 99.
    store.set_current_key("busy").unwrap();
    for _ in 0..60 {
        v.update(1).unwrap();
    }
    assert_eq!(stored(&store), 1, "only the busy key is left");
}

/// A snapshot first removes what has expired, so checkpoints carry only live state.
pub fn snapshots_leave_expired_state_out<F: Fixture>() {
    let (backend, _dir) = F::open(1);
    let clock = ManualClock::new(0);
    let store = KeyedStateStore::new(backend).with_clock(clock.clone());
    let ttl = ttl(UpdateType::OnCreateAndWrite).cleanup_incrementally(0);
    let value = store.value_state(&ValueStateDescriptor::<u32>::new("v").with_ttl(ttl)).unwrap();
    let list = store.list_state(&ListStateDescriptor::<u32>::new("l").with_ttl(ttl)).unwrap();
    for key in 0..10u32 {
        store.set_current_key(&key).unwrap();
        value.update(key).unwrap();
        list.add(key).unwrap();
    }
    clock.set(5);
    store.set_current_key(&0u32).unwrap();
    list.add(100).unwrap();
    store.set_current_key(&1u32).unwrap();
    value.update(101).unwrap();
    clock.set(12);
    let snapshot = store.snapshot_key_group(0).unwrap();
    // Key 0 keeps the list element added at 5; key 1 keeps the value written at 5.
    assert_eq!(snapshot.entries.len(), 2, "{snapshot:?}");
    assert_eq!(list.get().unwrap(), Vec::<u32>::new());
    store.set_current_key(&0u32).unwrap();
    assert_eq!(list.get().unwrap(), [100]);
}

/// State written without a TTL and restored under a descriptor with one counts as accessed
/// at its first read, then expires normally.
pub fn a_state_gains_a_ttl_across_a_restore<F: Fixture>() {
    let (backend, _dir) = F::open(1);
    let store = KeyedStateStore::new(backend);
    let plain = store.value_state(&ValueStateDescriptor::<u32>::new("v")).unwrap();
    store.set_current_key("k").unwrap();
    plain.update(7).unwrap();
    let snapshot = store.snapshot_key_group(0).unwrap();

    let (backend, _dir2) = F::open(1);
    let clock = ManualClock::new(1_000);
    let restored = KeyedStateStore::new(backend).with_clock(clock.clone());
    restored.restore_key_group(snapshot).unwrap();
    let descriptor = ValueStateDescriptor::<u32>::new("v").with_ttl(ttl(UpdateType::OnCreateAndWrite));
    let timed = restored.value_state(&descriptor).unwrap();
    restored.set_current_key("k").unwrap();
    assert_eq!(timed.value().unwrap(), Some(7));
    clock.set(1_009);
    assert_eq!(timed.value().unwrap(), Some(7));
    clock.set(1_010);
    assert_eq!(timed.value().unwrap(), None);
}
