//! What is written reads back: keyed entries by any key-group range, lists, metadata.

use eddy_core::key::KeyGroupRange;
use eddy_state::checkpoint::{write_snapshot, SnapshotReader, StoredStateKind, FORMAT_VERSION, MAGIC};
use eddy_state::{KeyedEntries, OperatorSnapshot};
use proptest::prelude::*;

use crate::fixture::{few_cases, header, max_parallelism, operators};

/// The model: the operator's keyed states, each filtered to `range` and sorted as a scan
/// returns them (key group, then key).
fn model_keyed(op: &OperatorSnapshot, range: KeyGroupRange) -> Vec<KeyedEntries> {
    op.keyed
        .iter()
        .map(|state| {
            let mut entries: Vec<_> =
                state.entries.iter().filter(|e| range.contains(usize::from(e.0))).cloned().collect();
            entries.sort();
            KeyedEntries { state: state.state.clone(), entries }
        })
        .collect()
}

/// Random operators, and random key-group ranges (some empty, some past the key groups).
fn case() -> impl Strategy<Value = (usize, Vec<OperatorSnapshot>, Vec<(usize, usize)>)> {
    max_parallelism().prop_flat_map(|max_p| {
        let range = (0..max_p + 2, 0..max_p + 2);
        (Just(max_p), operators(max_p), proptest::collection::vec(range, 1..4))
    })
}

proptest! {
    #![proptest_config(few_cases(24))]

    #[test]
    fn keyed_entries_read_back_by_any_key_group_range((max_p, ops, ranges) in case()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot");
        let written = write_snapshot(&path, header(3, max_p), &ops).unwrap();
        let reader = SnapshotReader::open(&path).unwrap();
        prop_assert_eq!(reader.metadata(), &written);
        reader.verify().unwrap();
        for op in &ops {
            for (start, end) in &ranges {
                let range = KeyGroupRange { start: *start, end: *end };
                prop_assert_eq!(reader.keyed(&op.uid, range).unwrap(), model_keyed(op, range));
            }
            // The subtasks of any parallelism together read back every entry exactly once.
            let p = ranges[0].0 % max_p + 1;
            let mut union: Vec<_> = (0..p)
                .flat_map(|s| reader.keyed(&op.uid, KeyGroupRange::of_subtask(s, max_p, p)).unwrap())
                .flat_map(|k| k.entries.into_iter().map(move |e| (k.state.clone(), e)))
                .collect();
            union.sort();
            let mut all: Vec<_> =
                op.keyed.iter().flat_map(|k| k.entries.iter().map(|e| (k.state.clone(), e.clone()))).collect();
            all.sort();
            prop_assert_eq!(union, all);
            for list in &op.lists {
                prop_assert_eq!(reader.list(&op.uid, &list.name).unwrap(), list.items.clone());
            }
        }
    }
}

#[test]
fn metadata_describes_operators_and_states() {
    let dir = tempfile::tempdir().unwrap();
    let ops = [crate::fixture::small_operator("source", 1)];
    let metadata = write_snapshot(dir.path(), header(9, 16), &ops).unwrap();
    assert_eq!(metadata.magic, MAGIC);
    assert_eq!(metadata.format_version, FORMAT_VERSION);
    assert_eq!(metadata.header.id, 9);
    assert_eq!(metadata.fingerprint, eddy_state::checkpoint::fingerprint(["source"]));
    let op = &metadata.operators[0];
    assert_eq!((op.uid.as_str(), op.name.as_str(), op.parallelism), ("source", "source operator", 2));
    let count = op.state("count").unwrap();
    assert_eq!(count.entries, 40);
    assert_eq!(count.bytes, 40 * 5);
    assert_eq!(count.kind, StoredStateKind::Keyed { key_groups: Some((0, 15)), key_group_count: 16 });
    let offsets = op.state("offsets").unwrap();
    assert_eq!(offsets.entries, 3);
    assert!(matches!(offsets.kind, StoredStateKind::List { subtasks: 2, .. }));
    assert_eq!(metadata.entries(), 43);
}

#[test]
fn unknown_operators_and_lists_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_snapshot(dir.path(), header(1, 16), &[crate::fixture::small_operator("source", 1)]).unwrap();
    let reader = SnapshotReader::open(dir.path()).unwrap();
    assert!(reader.operator("nope").is_none());
    let err = reader.keyed("nope", KeyGroupRange { start: 0, end: 15 }).unwrap_err().to_string();
    assert!(err.contains("no operator with uid 'nope'"), "{err}");
    let err = reader.list("source", "count").unwrap_err().to_string();
    assert!(err.contains("no list named 'count'"), "{err}");
}

#[test]
fn readers_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SnapshotReader>();
}

#[test]
fn a_snapshot_reopens_right_after_its_reader_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    crate::fixture::write_small(dir.path(), 1);
    for _ in 0..3 {
        let reader = SnapshotReader::open(dir.path()).unwrap();
        reader.verify().unwrap();
    }
}

#[test]
fn states_spanning_several_chunks_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let op = crate::fixture::chunky_operator();
    let written = write_snapshot(dir.path(), header(1, 4), std::slice::from_ref(&op)).unwrap();
    let count = written.operators[0].state("count").unwrap();
    // The metadata counts entries and their bytes, not chunks.
    assert_eq!((count.entries, count.bytes), (5000, 5000 * 7));
    assert_eq!(count.kind, StoredStateKind::Keyed { key_groups: Some((0, 1)), key_group_count: 2 });
    {
        let reader = SnapshotReader::open(dir.path()).unwrap();
        reader.verify().unwrap();
        for (start, end) in [(0, 3), (0, 0), (1, 1), (1, 3), (2, 3)] {
            let range = KeyGroupRange { start, end };
            assert_eq!(reader.keyed("chunky", range).unwrap(), model_keyed(&op, range), "{range:?}");
        }
    }
    // 2500 entries per key group make at least 3 chunks each (1024 entries at most), 10
    // values of 20 kB at least 3 (64 KiB); chunks also end after keys whose hash says so.
    let chunks: Vec<_> = written.operators[0].parts.iter().flat_map(|part| &part.chunks).collect();
    assert!(chunks.len() >= 3 + 3 + 3 && chunks.iter().all(|chunk| chunk.entries <= 1024), "{chunks:?}");
    assert_eq!(crate::fixture::keyed_chunks(dir.path()), chunks.len());
}
