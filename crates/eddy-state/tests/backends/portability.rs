//! Both backends hold the same bytes: a snapshot of one restores into the other.

use eddy_state::{
    HeapBackend, KeyedStateStore, ListStateDescriptor, MapStateDescriptor, NamespacedStateDescriptor, SledBackend,
    StateBackend, TimeDomain, ValueStateDescriptor,
};

/// Fills a store with a bit of every kind of state.
fn fill<B: StateBackend>(store: &KeyedStateStore<B>) {
    let value = store.value_state(&ValueStateDescriptor::<String>::new("name")).unwrap();
    let list = store.list_state(&ListStateDescriptor::<u64>::new("amounts")).unwrap();
    let map = store.map_state(&MapStateDescriptor::<u16, bool>::new("flags")).unwrap();
    // Named to sort between the others, so the heap's typed entries must merge into place.
    let windows = store.namespaced_state(&NamespacedStateDescriptor::<i64, u64, u64>::new("b-windows")).unwrap();
    for i in 0..300u64 {
        store.set_current_key(&(i % 37)).unwrap();
        value.update(format!("name-{i}")).unwrap();
        list.add(i).unwrap();
        map.put((i % 11) as u16, i % 2 == 0).unwrap();
        windows.update(store, &((i % 5) as i64 * 1000), &(i % 37), || 0, |n, _| *n += i).unwrap();
        store.register_timer(TimeDomain::EventTime, (i % 7) as i64, &(i % 3)).unwrap();
    }
}

#[test]
fn heap_and_sled_snapshots_are_byte_identical_and_interchangeable() {
    let heap = KeyedStateStore::new(HeapBackend::new(32).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let sled = KeyedStateStore::new(SledBackend::open(dir.path(), 32).unwrap());
    fill(&heap);
    fill(&sled);
    let dir2 = tempfile::tempdir().unwrap();
    let from_heap = KeyedStateStore::new(SledBackend::open(dir2.path(), 32).unwrap());
    let from_sled = KeyedStateStore::new(HeapBackend::new(32).unwrap());
    for kg in 0..32 {
        let h = heap.snapshot_key_group(kg).unwrap();
        let s = sled.snapshot_key_group(kg).unwrap();
        assert_eq!(h, s, "key group {kg}");
        from_heap.restore_key_group(h).unwrap();
        from_sled.restore_key_group(s).unwrap();
    }
    for kg in 0..32 {
        assert_eq!(from_heap.snapshot_key_group(kg).unwrap(), from_sled.snapshot_key_group(kg).unwrap());
    }
    let value = from_heap.value_state(&ValueStateDescriptor::<String>::new("name")).unwrap();
    from_heap.set_current_key(&5u64).unwrap();
    assert_eq!(value.value().unwrap().as_deref(), Some("name-264"));
    // Opening the namespaced state on the heap decodes it into a typed table: the snapshot
    // stays the same bytes.
    let descriptor = NamespacedStateDescriptor::<i64, u64, u64>::new("b-windows");
    let windows = from_sled.namespaced_state(&descriptor).unwrap();
    assert_eq!(windows.get(&from_sled, &2000, &5).unwrap(), Some((0..300).filter(|i| i % 37 == 5 && i % 5 == 2).sum()));
    for kg in 0..32 {
        assert_eq!(from_heap.snapshot_key_group(kg).unwrap(), from_sled.snapshot_key_group(kg).unwrap());
    }
}

#[test]
fn a_sled_directory_remembers_its_key_groups() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyedStateStore::new(SledBackend::open(dir.path(), 64).unwrap());
    let value = store.value_state(&ValueStateDescriptor::<u32>::new("v")).unwrap();
    store.set_current_key("k").unwrap();
    value.update(3).unwrap();
    drop(store.into_backend());
    let err = SledBackend::open(dir.path(), 128).unwrap_err();
    assert!(err.to_string().contains("open it with max_parallelism 64"), "{err}");
    let reopened = KeyedStateStore::new(SledBackend::open(dir.path(), 64).unwrap());
    let value = reopened.value_state(&ValueStateDescriptor::<u32>::new("v")).unwrap();
    reopened.set_current_key("k").unwrap();
    assert_eq!(value.value().unwrap(), Some(3));
}

#[test]
fn max_parallelism_must_fit_the_key_layout() {
    assert!(HeapBackend::new(0).is_err());
    assert!(HeapBackend::new(65_537).is_err());
    assert!(HeapBackend::new(65_536).is_ok());
}

#[test]
fn the_store_picks_the_same_key_group_as_eddy_core() {
    use eddy_core::key::{key_group, KeyHasher};
    let store = KeyedStateStore::new(HeapBackend::new(128).unwrap());
    let mut hasher = KeyHasher::default();
    for i in 0..1_000u32 {
        let key = (format!("k{i}"), i, i % 3 == 0);
        assert_eq!(store.set_current_key(&key).unwrap(), key_group(hasher.hash(&key).unwrap(), 128));
    }
}
