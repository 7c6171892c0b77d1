//! Namespaced state against the obvious model, a `BTreeMap` from (namespace, key) to value,
//! through random updates, whole-namespace visits, and snapshots restored into a fresh store.

use std::collections::BTreeMap;

use eddy_core::key::{key_group, KeyGroupRange, KeyHasher};
use eddy_state::{KeyedStateStore, NamespacedStateDescriptor, StateError, TimeDomain};
use proptest::prelude::*;

use crate::fixture::{runner, Fixture};

type Model = BTreeMap<(u8, String), u32>;

#[derive(Debug, Clone)]
enum Op {
    /// Adds to a key's value (created as 0).
    Add(u8, u8, u32),
    Put(u8, u8, u32),
    Take(u8, u8),
    Get(u8, u8),
    /// Removes a namespace, checking what it held.
    Drain(u8),
    /// Doubles every value of a namespace.
    Double(u8),
    Namespaces,
    /// Snapshots every key group into a fresh store, which the test goes on with.
    Restore,
}

fn op() -> impl Strategy<Value = Op> {
    let ns = 0u8..4;
    let key = 0u8..12;
    prop_oneof![
        6 => (ns.clone(), key.clone(), 1u32..50).prop_map(|(n, k, v)| Op::Add(n, k, v)),
        2 => (ns.clone(), key.clone(), 0u32..1000).prop_map(|(n, k, v)| Op::Put(n, k, v)),
        2 => (ns.clone(), key.clone()).prop_map(|(n, k)| Op::Take(n, k)),
        2 => (ns.clone(), key).prop_map(|(n, k)| Op::Get(n, k)),
        1 => ns.clone().prop_map(Op::Drain),
        1 => ns.prop_map(Op::Double),
        1 => Just(Op::Namespaces),
        1 => Just(Op::Restore),
    ]
}

fn key(k: u8) -> String {
    format!("key-{k}")
}

fn descriptor() -> NamespacedStateDescriptor<u8, String, u32> {
    NamespacedStateDescriptor::new("per-window")
}

/// Every operation's answer and every namespace's contents match the model, on either
/// backend, across snapshots restored into fresh stores.
pub fn namespaced_state_matches_a_model<F: Fixture>() {
    runner::<F>()
        .run(&proptest::collection::vec(op(), 1..80), |ops| {
            let (backend, mut dir) = F::open(16);
            let mut store = KeyedStateStore::new(backend);
            let mut model = Model::new();
            for op in ops {
                let state = store.namespaced_state(&descriptor()).unwrap();
                match op {
                    Op::Add(n, k, v) => {
                        let created = state.update(
                            &store,
                            &n,
                            &key(k),
                            || 0,
                            |value, fresh| {
                                *value += v;
                                fresh
                            },
                        );
                        prop_assert_eq!(created.unwrap(), !model.contains_key(&(n, key(k))));
                        *model.entry((n, key(k))).or_default() += v;
                    }
                    Op::Put(n, k, v) => {
                        state.put(&store, &n, &key(k), v).unwrap();
                        model.insert((n, key(k)), v);
                    }
                    Op::Take(n, k) => {
                        prop_assert_eq!(state.take(&store, &n, &key(k)).unwrap(), model.remove(&(n, key(k))))
                    }
                    Op::Get(n, k) => {
                        prop_assert_eq!(state.get(&store, &n, &key(k)).unwrap(), model.get(&(n, key(k))).copied())
                    }
                    Op::Drain(n) => {
                        let mut drained = Vec::new();
                        state
                            .drain_namespace(&store, &n, |k, v| {
                                drained.push((k, v));
                                Ok::<_, StateError>(())
                            })
                            .unwrap();
                        drained.sort();
                        let expected: Vec<(String, u32)> =
                            model.iter().filter(|((m, _), _)| *m == n).map(|((_, k), v)| (k.clone(), *v)).collect();
                        prop_assert_eq!(drained, expected);
                        model.retain(|(m, _), _| *m != n);
                    }
                    Op::Double(n) => {
                        state
                            .update_namespace(&store, &n, |_, v| {
                                *v *= 2;
                                Ok::<_, StateError>(())
                            })
                            .unwrap();
                        model.iter_mut().filter(|((m, _), _)| *m == n).for_each(|(_, v)| *v *= 2);
                    }
                    Op::Namespaces => {
                        let mut expected: Vec<u8> = model.keys().map(|(n, _)| *n).collect();
                        expected.dedup();
                        prop_assert_eq!(state.namespaces(&store).unwrap(), expected);
                        for n in 0..4u8 {
                            let peeked = state.peek_namespace(&store, &n).unwrap();
                            let values: Vec<u32> =
                                model.iter().filter(|((m, _), _)| *m == n).map(|(_, v)| *v).collect();
                            prop_assert_eq!(peeked.is_some(), !values.is_empty());
                            prop_assert!(peeked.is_none_or(|v| values.contains(&v)));
                        }
                    }
                    Op::Restore => {
                        let snapshots = store.snapshot_key_groups().unwrap();
                        let (backend, new_dir) = F::open(16);
                        let restored = KeyedStateStore::new(backend);
                        for snapshot in snapshots {
                            restored.restore_key_group(snapshot).unwrap();
                        }
                        store = restored;
                        dir = new_dir;
                    }
                }
            }
            let state = store.namespaced_state(&descriptor()).unwrap();
            for n in 0..4u8 {
                for k in 0..12u8 {
                    prop_assert_eq!(state.get(&store, &n, &key(k)).unwrap(), model.get(&(n, key(k))).copied());
                }
            }
            // A handle belongs to the store it was opened from.
            let (other, other_dir) = F::open(16);
            let other = KeyedStateStore::new(other);
            let err = state.get(&other, &0, &key(0)).unwrap_err();
            prop_assert!(matches!(err, StateError::ForeignStore { .. }), "{}", err);
            drop((dir, other_dir));
            Ok(())
        })
        .unwrap();
}

/// A namespaced state, user state and timers of two subtasks restore into three, each entry
/// in the subtask that now owns its key's group; snapshots taken per key group and all at
/// once agree.
pub fn namespaced_state_rescales_with_its_keys<F: Fixture>() {
    const MAX: usize = 64;
    let group_of = |i: u32| key_group(KeyHasher::default().hash(&key(i as u8)).unwrap(), MAX);
    let mut dirs = Vec::new();
    let mut snapshots = Vec::new();
    for subtask in 0..2 {
        let range = KeyGroupRange::of_subtask(subtask, MAX, 2);
        let (backend, dir) = F::open(MAX);
        dirs.push(dir);
        let store = KeyedStateStore::with_key_groups(backend, range).unwrap();
        let state = store.namespaced_state(&descriptor()).unwrap();
        for i in (0..200u32).filter(|&i| range.contains(group_of(i))) {
            state.update(&store, &((i % 3) as u8), &key(i as u8), || 0, |v, _| *v += i).unwrap();
            store.set_current_key(&key(i as u8)).unwrap();
            store.register_timer(TimeDomain::EventTime, i64::from(i % 7), &()).unwrap();
        }
        let all = store.snapshot_key_groups().unwrap();
        let one_by_one: Vec<_> = (range.start..=range.end).map(|kg| store.snapshot_key_group(kg).unwrap()).collect();
        assert_eq!(all, one_by_one);
        snapshots.extend(all);
    }
    let mut found = BTreeMap::new();
    let mut timers = 0;
    for subtask in 0..3 {
        let range = KeyGroupRange::of_subtask(subtask, MAX, 3);
        let (backend, dir) = F::open(MAX);
        dirs.push(dir);
        let store = KeyedStateStore::with_key_groups(backend, range).unwrap();
        for snapshot in snapshots.iter().filter(|s| range.contains(s.key_group)) {
            store.restore_key_group(snapshot.clone()).unwrap();
        }
        let state = store.namespaced_state(&descriptor()).unwrap();
        for n in state.namespaces(&store).unwrap() {
            state
                .drain_namespace(&store, &n, |k, v| {
                    let i: u32 = k.trim_start_matches("key-").parse().unwrap();
                    assert!(range.contains(group_of(i)), "{k} restored into subtask {subtask}");
                    assert!(found.insert((n, k), v).is_none());
                    Ok::<_, StateError>(())
                })
                .unwrap();
        }
        while let Some(timer) = store.pop_due_timer(TimeDomain::EventTime, i64::MAX).unwrap() {
            assert!(range.contains(timer.key_group));
            timers += 1;
        }
    }
    let mut expected = BTreeMap::new();
    let mut expected_timers = std::collections::BTreeSet::new();
    for i in 0..200u32 {
        *expected.entry(((i % 3) as u8, key(i as u8))).or_insert(0) += i;
        expected_timers.insert((i % 7, key(i as u8)));
    }
    assert_eq!(found, expected);
    assert_eq!(timers, expected_timers.len());
}
