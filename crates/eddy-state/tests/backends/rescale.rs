//! Rescaling: snapshot per key group at one parallelism, restore by range at another.

use eddy_core::key::{key_group, subtask_for_key_group, KeyGroupRange, KeyHasher};
use eddy_state::{
    KeyGroupSnapshot, KeyedStateStore, ListStateDescriptor, MapStateDescriptor, StateBackend, StateError, TimeDomain,
    ValueStateDescriptor,
};

use crate::fixture::Fixture;

const MAX_PARALLELISM: usize = 128;
const KEYS: u32 = 2_000;

fn user(i: u32) -> String {
    format!("user-{i}")
}

fn key_group_of(i: u32) -> usize {
    key_group(KeyHasher::default().hash(&user(i)).unwrap(), MAX_PARALLELISM)
}

/// Two subtasks own key groups 0..=63 and 64..=127; every key group is snapshotted by its
/// owner and restored into whichever of three new subtasks owns it now. Every key's value,
/// list, map and timer is found in exactly that subtask, and nowhere else.
pub fn snapshot_at_parallelism_2_restores_at_parallelism_3<F: Fixture>() {
    let count = ValueStateDescriptor::<u32>::new("count");
    let history = ListStateDescriptor::<u32>::new("history");
    let tags = MapStateDescriptor::<String, u32>::new("tags");

    // Parallelism 2: write each key's state in the subtask that owns its key group.
    let mut dirs = Vec::new();
    let old: Vec<KeyedStateStore<F::Backend>> = (0..2)
        .map(|subtask| {
            let (backend, dir) = F::open(MAX_PARALLELISM);
            dirs.push(dir);
            KeyedStateStore::with_key_groups(backend, KeyGroupRange::of_subtask(subtask, MAX_PARALLELISM, 2)).unwrap()
        })
        .collect();
    for i in 0..KEYS {
        let store = &old[subtask_for_key_group(key_group_of(i), MAX_PARALLELISM, 2)];
        assert_eq!(store.set_current_key(&user(i)).unwrap(), key_group_of(i));
        store.value_state(&count).unwrap().update(i).unwrap();
        store.list_state(&history).unwrap().add_all([i, i + 1]).unwrap();
        store.map_state(&tags).unwrap().put(format!("tag-{}", i % 7), i).unwrap();
        store.register_timer(TimeDomain::EventTime, i64::from(i), &()).unwrap();
    }

    // The checkpoint: one snapshot per key group, taken by the subtask that owns it.
    let snapshots: Vec<KeyGroupSnapshot> = (0..MAX_PARALLELISM)
        .map(|kg| old[subtask_for_key_group(kg, MAX_PARALLELISM, 2)].snapshot_key_group(kg).unwrap())
        .collect();
    assert_eq!(snapshots.iter().map(|s| s.timers.len()).sum::<usize>(), KEYS as usize);

    // Parallelism 3: each new subtask restores the key groups of its range.
    let new: Vec<KeyedStateStore<F::Backend>> = (0..3)
        .map(|subtask| {
            let range = KeyGroupRange::of_subtask(subtask, MAX_PARALLELISM, 3);
            let (backend, dir) = F::open(MAX_PARALLELISM);
            dirs.push(dir);
            let store = KeyedStateStore::with_key_groups(backend, range).unwrap();
            for snapshot in &snapshots[range.start..=range.end] {
                store.restore_key_group(snapshot.clone()).unwrap();
            }
            store
        })
        .collect();

    for i in 0..KEYS {
        let kg = key_group_of(i);
        let owner = subtask_for_key_group(kg, MAX_PARALLELISM, 3);
        for (subtask, store) in new.iter().enumerate() {
            if subtask == owner {
                store.set_current_key(&user(i)).unwrap();
                assert_eq!(store.value_state(&count).unwrap().value().unwrap(), Some(i));
                assert_eq!(store.list_state(&history).unwrap().get().unwrap(), [i, i + 1]);
                let tags = store.map_state(&tags).unwrap();
                assert_eq!(tags.get(&format!("tag-{}", i % 7)).unwrap(), Some(i));
            } else {
                // Not here: the key is refused, and the backend holds nothing of its key group.
                let err = store.set_current_key(&user(i)).unwrap_err();
                assert!(matches!(err, StateError::KeyGroupOutOfRange { .. }), "{err}");
                assert!(store.with_backend(|b| b.snapshot_key_group(kg).unwrap()).unwrap().is_empty());
            }
        }
    }

    // Every timer fires once, in the subtask that owns its key.
    let mut fired = 0;
    for (subtask, store) in new.iter().enumerate() {
        while let Some(timer) = store.pop_due_timer(TimeDomain::EventTime, i64::MAX).unwrap() {
            let key: String = timer.key().unwrap();
            let i: u32 = key.trim_start_matches("user-").parse().unwrap();
            assert_eq!(timer.timer.timestamp, i64::from(i));
            assert_eq!(subtask_for_key_group(key_group_of(i), MAX_PARALLELISM, 3), subtask);
            fired += 1;
        }
    }
    assert_eq!(fired, KEYS);
}
