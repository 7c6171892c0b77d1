//! Misuse that returns an error saying what to change.

use std::time::Duration;

use eddy_core::key::KeyGroupRange;
use eddy_state::{
    KeyedStateStore, ListStateDescriptor, MapStateDescriptor, StateError, StateKind, StateTtlConfig,
    ValueStateDescriptor,
};

use crate::fixture::Fixture;

/// A name is one state: opening it as another kind, type or TTL fails.
pub fn reusing_a_name_with_another_kind_type_or_ttl_is_an_error<F: Fixture>() {
    let (backend, _dir) = F::open(128);
    let store = KeyedStateStore::new(backend);
    store.value_state(&ValueStateDescriptor::<u64>::new("count")).unwrap();
    let err = store.list_state(&ListStateDescriptor::<u64>::new("count")).map(drop).unwrap_err();
    assert!(
        matches!(err, StateError::KindMismatch { registered: StateKind::Value, requested: StateKind::List, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("give the list state another name"), "{err}");
    let err = store.value_state(&ValueStateDescriptor::<String>::new("count")).map(drop).unwrap_err();
    assert!(matches!(err, StateError::TypeMismatch { .. }), "{err}");
    let ttl = StateTtlConfig::new(Duration::from_secs(1));
    let err = store.value_state(&ValueStateDescriptor::<u64>::new("count").with_ttl(ttl)).map(drop).unwrap_err();
    assert!(matches!(err, StateError::TtlMismatch { .. }), "{err}");
    let err = store.map_state(&MapStateDescriptor::<u8, u64>::new("count")).map(drop).unwrap_err();
    assert!(matches!(err, StateError::KindMismatch { .. }), "{err}");
    // The original still opens.
    store.value_state(&ValueStateDescriptor::<u64>::new("count")).unwrap();
}

/// A store owning part of the key groups refuses keys and snapshots of the others.
pub fn keys_outside_the_store_key_groups_are_refused<F: Fixture>() {
    let (backend, _dir) = F::open(128);
    let range = KeyGroupRange::of_subtask(0, 128, 2);
    let store = KeyedStateStore::with_key_groups(backend, range).unwrap();
    let mut refused = 0;
    for i in 0..50 {
        match store.set_current_key(&i) {
            Ok(kg) => assert!(range.contains(kg)),
            Err(StateError::KeyGroupOutOfRange { key_group, start: 0, end: 63 }) => {
                assert!(key_group >= 64);
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(refused > 0);
    assert!(matches!(store.snapshot_key_group(100), Err(StateError::KeyGroupOutOfRange { .. })));
    let (backend, _dir2) = F::open(128);
    let bad = KeyGroupRange { start: 0, end: 128 };
    let err = KeyedStateStore::with_key_groups(backend, bad).map(drop).unwrap_err();
    assert!(matches!(err, StateError::InvalidKeyGroupRange { end: 128, max_parallelism: 128, .. }), "{err}");
}

/// Using state before the operator set a key is an error, not a panic.
pub fn state_before_a_current_key_is_an_error<F: Fixture>() {
    let (backend, _dir) = F::open(128);
    let store = KeyedStateStore::new(backend);
    let v = store.value_state(&ValueStateDescriptor::<u64>::new("v")).unwrap();
    let err = v.value().unwrap_err();
    assert!(matches!(err, StateError::NoCurrentKey { .. }), "{err}");
    assert!(err.to_string().contains("set_current_key"), "{err}");
    assert!(store.register_timer(eddy_state::TimeDomain::EventTime, 1, &()).is_err());
}
