//! Shared test data: headers, small operator snapshots, generated operators, file damage.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use eddy_state::backend::Change;
use eddy_state::checkpoint::write_snapshot;
use eddy_state::{KeyedEntries, ListEntries, OperatorSnapshot, Redistribution, SnapshotHeader, SnapshotKind};
use proptest::prelude::*;

/// A checkpoint header for job "job".
pub fn header(id: u64, max_parallelism: usize) -> SnapshotHeader {
    SnapshotHeader {
        job: "job".into(),
        id,
        kind: SnapshotKind::Checkpoint,
        created_ms: 1_700_000_000_000 + id as i64,
        max_parallelism,
        finished: false,
    }
}

/// A small operator with one keyed state (entries tagged with `tag`) and one split list.
pub fn small_operator(uid: &str, tag: u8) -> OperatorSnapshot {
    let entries = (0..40u16).map(|i| (i % 16, vec![tag, i as u8], vec![i as u8; 3])).collect();
    OperatorSnapshot {
        uid: uid.into(),
        name: format!("{uid} operator"),
        parallelism: 2,
        keyed: vec![KeyedEntries { state: "count".into(), entries }],
        lists: vec![ListEntries {
            name: "offsets".into(),
            redistribution: Redistribution::Split,
            items: vec![vec![vec![tag, 0]], vec![vec![tag, 1], vec![tag, 2]]],
        }],
    }
}

/// An operator whose states span several chunks per key group: by entry count in "count",
/// by bytes in "blobs".
pub fn chunky_operator() -> OperatorSnapshot {
    let count = (0..5000u32).map(|i| ((i % 2) as u16, i.to_be_bytes().to_vec(), vec![i as u8; 3])).collect();
    let blobs = (0..10u8).map(|i| (1, vec![i], vec![i; 20_000])).collect();
    OperatorSnapshot {
        uid: "chunky".into(),
        name: "Chunky".into(),
        parallelism: 2,
        keyed: vec![
            KeyedEntries { state: "count".into(), entries: count },
            KeyedEntries { state: "blobs".into(), entries: blobs },
        ],
        lists: vec![],
    }
}

/// Writes a small two-operator snapshot with id `id` into `dir`.
pub fn write_small(dir: &Path, id: u64) {
    let ops = [small_operator("source", id as u8), small_operator("counter", id as u8 + 100)];
    write_snapshot(dir, header(id, 16), &ops).unwrap();
}

/// The sled data file of a snapshot.
pub fn db_file(dir: &Path) -> PathBuf {
    dir.join("db")
}

/// The length of a file up to its last non-zero byte: sled pads segments with zeros, so
/// damage aimed at data must land before this.
pub fn used_len(file: &Path) -> usize {
    let bytes = std::fs::read(file).unwrap();
    bytes.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1)
}

/// Truncates a file to `len` bytes.
pub fn truncate(file: &Path, len: usize) {
    std::fs::OpenOptions::new().write(true).open(file).unwrap().set_len(len as u64).unwrap();
}

/// Overwrites `count` bytes at `at` with a pattern.
pub fn garble(file: &Path, at: usize, count: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    for (i, byte) in bytes[at..at + count].iter_mut().enumerate() {
        *byte ^= 0xA5u8.wrapping_add(i as u8);
    }
    std::fs::write(file, bytes).unwrap();
}

/// Opens a written snapshot's sled database directly, to change what is stored.
pub fn open_sled(dir: &Path) -> sled::Db {
    // The writer's or reader's just-dropped handle may hold sled's file lock for a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::Config::new().path(dir).open() {
            Ok(db) => return db,
            Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(e) => panic!("cannot reopen {}: {e}", dir.display()),
        }
    }
}

/// Removes the metadata of a written snapshot, as if the writer had stopped before it.
pub fn remove_metadata(dir: &Path) {
    let db = open_sled(dir);
    db.remove("metadata").unwrap();
    db.flush().unwrap();
}

/// The number of keyed chunks a snapshot stores.
pub fn keyed_chunks(dir: &Path) -> usize {
    open_sled(dir).open_tree("keyed").unwrap().len()
}

/// A proptest config with few cases: every case writes a sled database. `PROPTEST_CASES`
/// overrides the number, for a long run that hunts for a rare failure.
pub fn few_cases(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// A number of key groups: a few, or around 256 so key groups cross a byte boundary.
pub fn max_parallelism() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..=8, 250usize..=300]
}

/// Random operators (unique uids, unique state and list names) for `max_parallelism`.
pub fn operators(max_parallelism: usize) -> impl Strategy<Value = Vec<OperatorSnapshot>> {
    let uid = "[a-c]{0,3}";
    proptest::collection::btree_map(uid, operator_body(max_parallelism), 0..4).prop_map(|ops| {
        ops.into_iter()
            .map(|(uid, mut op)| {
                op.uid = uid;
                op
            })
            .collect()
    })
}

/// One operator without its uid.
fn operator_body(max_parallelism: usize) -> impl Strategy<Value = OperatorSnapshot> {
    let keyed = proptest::collection::btree_map("[a-d]{1,3}", keyed_entries(max_parallelism), 0..3);
    let lists = proptest::collection::btree_map("[a-d]{1,3}", list_items(), 0..3);
    ("[A-Za-z ]{0,8}", 1usize..8, keyed, lists).prop_map(|(name, parallelism, keyed, lists)| OperatorSnapshot {
        uid: String::new(),
        name,
        parallelism,
        keyed: keyed.into_iter().map(|(state, entries)| KeyedEntries { state, entries }).collect(),
        lists: lists
            .into_iter()
            .map(|(name, (redistribution, items))| ListEntries { name, redistribution, items })
            .collect(),
    })
}

/// A state's entries with unique (key group, key), handed over in reverse order to show
/// the writer does not rely on input order. Most states are small; some have over 1024
/// entries in a key group, or values of kilobytes, so that they span several chunks.
fn keyed_entries(max_parallelism: usize) -> impl Strategy<Value = Vec<(u16, Vec<u8>, Vec<u8>)>> {
    let small = (0..max_parallelism as u16, proptest::collection::vec(any::<u8>(), 0..6));
    // At least 2100 entries over at most 2 key groups: one has more than 1024.
    let crowded = (0..max_parallelism.min(2) as u16, proptest::collection::vec(any::<u8>(), 2..6));
    let byte = proptest::collection::vec(any::<u8>(), 0..8);
    let kilobytes = proptest::collection::vec(any::<u8>(), 0..40_000);
    prop_oneof![
        8 => proptest::collection::btree_map(small.clone(), byte.clone(), 0..20),
        1 => proptest::collection::btree_map(crowded, byte, 2100..2600),
        1 => proptest::collection::btree_map(small, kilobytes, 1..12),
    ]
    .prop_map(|entries: BTreeMap<_, _>| {
        entries.into_iter().rev().map(|((key_group, key), value)| (key_group, key, value)).collect()
    })
}

/// A list's redistribution mode and items per old subtask.
pub fn list_items() -> impl Strategy<Value = (Redistribution, Vec<Vec<Vec<u8>>>)> {
    let mode = prop_oneof![Just(Redistribution::Split), Just(Redistribution::Broadcast)];
    let item = proptest::collection::vec(any::<u8>(), 0..5);
    (mode, proptest::collection::vec(proptest::collection::vec(item, 0..4), 0..4))
}

/// The backend entries `then` (those at the base checkpoint) with `changes` applied, or
/// the first change whose `before` is not the length `then` holds for its key.
pub fn apply_changes(
    then: &BTreeMap<Vec<u8>, Vec<u8>>,
    changes: &[Change],
) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, TestCaseError> {
    let mut applied = then.clone();
    for change in changes {
        prop_assert_eq!(change.before, then.get(&change.key).map(|v| v.len() as u32));
        match &change.value {
            Some(value) => applied.insert(change.key.clone(), value.clone()),
            None => applied.remove(&change.key),
        };
    }
    Ok(applied)
}
