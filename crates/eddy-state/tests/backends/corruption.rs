//! Damaged bytes in a backend or a snapshot are errors, never panics.

use eddy_core::key_encoding::encode_key;
use eddy_state::backend::layout::EntryKey;
use eddy_state::{
    AggregatingStateDescriptor, KeyGroupSnapshot, KeyedStateStore, ListStateDescriptor, MapStateDescriptor,
    ReducingStateDescriptor, StateBackend, StateError, ValueStateDescriptor,
};
use proptest::prelude::*;

use crate::fixture::{runner, Fixture};
use crate::model::SumCount;

/// The backend key of `state` for the store's current key (and a map's user key).
fn entry_key<B: StateBackend>(store: &KeyedStateStore<B>, state: &str, user_key: Option<&str>) -> Vec<u8> {
    let key: String = store.current_key().unwrap().unwrap();
    let mut key_bytes = Vec::new();
    encode_key(&key, &mut key_bytes).unwrap();
    let mut user_bytes = Vec::new();
    if let Some(user_key) = user_key {
        encode_key(user_key, &mut user_bytes).unwrap();
    }
    let key_group = store.current_key_group().unwrap();
    EntryKey { key_group, state, key: &key_bytes, user_key: &user_bytes }.to_bytes().unwrap()
}

fn put_raw<B: StateBackend>(store: &KeyedStateStore<B>, key: &[u8], bytes: &[u8]) {
    store.with_backend(|backend| backend.put(key, bytes).unwrap()).unwrap();
}

/// Random bytes, and random bytes behind a plausible header.
fn damaged() -> impl Strategy<Value = Vec<u8>> {
    let tail = proptest::collection::vec(any::<u8>(), 0..48);
    prop_oneof![
        tail.clone(),
        tail.clone().prop_map(|t| [&[0u8][..], &t].concat()),
        (any::<i64>(), tail.clone()).prop_map(|(ts, t)| [&[1u8][..], &ts.to_be_bytes(), &t].concat()),
        tail.prop_map(|t| [&[t.len() as u8, 0u8][..], &t].concat()),
    ]
}

/// Whatever bytes sit under a state's key, every operation returns (Ok or Err) without
/// panicking, and the store stays usable.
pub fn arbitrary_stored_bytes_never_panic<F: Fixture>() {
    runner::<F>()
        .run(&damaged(), |bytes| {
            let (backend, _dir) = F::open(8);
            let store = KeyedStateStore::new(backend);
            let value = store.value_state(&ValueStateDescriptor::<(String, Vec<u64>)>::new("value")).unwrap();
            let list = store.list_state(&ListStateDescriptor::<String>::new("list")).unwrap();
            let map = store.map_state(&MapStateDescriptor::<String, Option<u128>>::new("map")).unwrap();
            let max = ReducingStateDescriptor::new("max", |a: char, b: char| a.max(b));
            let reducing = store.reducing_state(&max).unwrap();
            let sum_count = AggregatingStateDescriptor::new("agg", SumCount);
            let aggregating = store.aggregating_state(&sum_count).unwrap();
            store.set_current_key("k").unwrap();
            for (state, user_key) in [("value", None), ("list", None), ("map", Some("x")), ("max", None), ("agg", None)]
            {
                let key = entry_key(&store, state, user_key);
                put_raw(&store, &key, &bytes);
            }
            let _ = value.value();
            let _ = list.get();
            let _ = list.add("more".to_string());
            let _ = list.get();
            let _ = map.get(&"x".to_string());
            let _ = map.contains(&"x".to_string());
            let _ = map.is_empty();
            if let Ok(entries) = map.entries() {
                let _: Vec<_> = entries.collect();
            }
            let _ = reducing.add('q');
            let _ = reducing.get();
            let _ = aggregating.add(1);
            let _ = aggregating.get();
            for kg in 0..8 {
                let _ = store.snapshot_key_group(kg);
            }
            // Overwriting the damaged value makes the state whole again.
            value.update(("ok".to_string(), vec![1])).unwrap();
            prop_assert_eq!(value.value().unwrap(), Some(("ok".to_string(), vec![1])));
            Ok(())
        })
        .unwrap();
}

fn assert_corrupt<T: std::fmt::Debug>(result: Result<T, StateError>, state: &str) {
    match result {
        Err(e @ (StateError::Corrupted { .. } | StateError::Decode { .. })) => {
            assert!(e.to_string().contains(&format!("'{state}'")), "the error names the state: {e}");
        }
        other => panic!("expected a decode error for '{state}', got {other:?}"),
    }
}

/// Specific kinds of damage, each reported as an error that names the state.
pub fn damaged_bytes_are_errors_naming_the_state<F: Fixture>() {
    let (backend, _dir) = F::open(128);
    let store = KeyedStateStore::new(backend);
    let text = store.value_state(&ValueStateDescriptor::<String>::new("text")).unwrap();
    let list = store.list_state(&ListStateDescriptor::<u32>::new("numbers")).unwrap();
    let map = store.map_state(&MapStateDescriptor::<String, u32>::new("lookup")).unwrap();
    store.set_current_key("k").unwrap();
    let text_key = entry_key(&store, "text", None);

    let mut huge = vec![0u8, 253];
    huge.extend_from_slice(&(1u64 << 60).to_le_bytes());
    let damaged: [&[u8]; 5] = [
        &[],                       // empty
        &[7, 1, 2],                // unknown tag
        &[1, 0, 0, 0],             // a TTL header cut short
        &huge,                     // a string claiming 2^60 bytes
        &[0, 2, b'h', b'i', b'!'], // a trailing byte after "hi"
    ];
    for bytes in damaged {
        put_raw(&store, &text_key, bytes);
        assert_corrupt(text.value(), "text");
    }

    // A value written as one type and read as another.
    let number = store.value_state(&ValueStateDescriptor::<u64>::new("number")).unwrap();
    text.update("hello".to_string()).unwrap();
    let number_key = entry_key(&store, "number", None);
    let text_bytes = store.with_backend(|b| b.get(&text_key, <[u8]>::to_vec).unwrap().unwrap()).unwrap();
    put_raw(&store, &number_key, &text_bytes);
    assert_corrupt(number.value(), "number");

    // A list whose last element is cut short.
    list.add_all([1, 2, 3]).unwrap();
    let list_key = entry_key(&store, "numbers", None);
    let mut bytes = store.with_backend(|b| b.get(&list_key, <[u8]>::to_vec).unwrap().unwrap()).unwrap();
    bytes.pop();
    put_raw(&store, &list_key, &bytes);
    assert_corrupt(list.get(), "numbers");

    // A damaged map entry: get fails, and iteration yields the error as an item.
    map.put("good".to_string(), 1).unwrap();
    put_raw(&store, &entry_key(&store, "lookup", Some("bad")), &[9]);
    assert_corrupt(map.get(&"bad".to_string()), "lookup");
    let results: Vec<_> = map.entries().unwrap().collect();
    assert_eq!(results.len(), 2);
    assert!(results.iter().any(|r| matches!(r, Ok((k, 1)) if k == "good")));
    assert!(results.iter().any(Result::is_err));
}

/// A snapshot entry of another key group, or one whose key is not an entry key, is refused
/// before anything is loaded.
pub fn malformed_snapshots_are_refused<F: Fixture>() {
    let (backend, _dir) = F::open(128);
    let store = KeyedStateStore::new(backend);
    let v = store.value_state(&ValueStateDescriptor::<u32>::new("v")).unwrap();
    let kg = store.set_current_key("k").unwrap();
    v.update(1).unwrap();
    let good = store.snapshot_key_group(kg).unwrap();
    let other = (kg + 1) % 128;

    let misrouted = KeyGroupSnapshot { key_group: other, ..good.clone() };
    let err = store.restore_key_group(misrouted).unwrap_err();
    assert!(matches!(err, StateError::BadSnapshotEntry { .. }), "{err}");

    let mut garbage = good.clone();
    garbage.key_group = other;
    garbage.entries.push(((other as u16).to_be_bytes().to_vec(), vec![0]));
    garbage.entries.remove(0);
    assert!(matches!(store.restore_key_group(garbage).unwrap_err(), StateError::BadSnapshotEntry { .. }));

    // Nothing was loaded, and the good snapshot still restores.
    assert!(store.with_backend(|b| b.snapshot_key_group(other).unwrap()).unwrap().is_empty());
    store.restore_key_group(good).unwrap();
    assert_eq!(v.value().unwrap(), Some(1));
}
