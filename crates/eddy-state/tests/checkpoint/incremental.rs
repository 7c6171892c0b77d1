//! Incremental checkpoints: only changed chunks of keyed state are written, the rest is
//! taken over from earlier checkpoints, and restoring at any parallelism reads exactly what a full
//! checkpoint of the same state reads; `retain` keeps what kept checkpoints refer to, and
//! a damaged shared part is found and skipped like any damaged checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use eddy_core::key::KeyGroupRange;
use eddy_state::checkpoint::{
    write_incremental, write_snapshot, CheckpointDirectory, SnapshotMetadata, SnapshotReader, REWRITE_AFTER,
};
use eddy_state::{KeyedEntries, ListEntries, OperatorSnapshot, Redistribution, SnapshotKind};
use proptest::prelude::*;

use crate::fixture::{few_cases, header, open_sled};

/// An operator's keyed state as a model: `(state, key group, key) → value`.
type Model = BTreeMap<(String, u16, Vec<u8>), Vec<u8>>;

/// A model's parts: `(state, key group) → [(key, value)]`.
type Parts = BTreeMap<(String, u16), Vec<(Vec<u8>, Vec<u8>)>>;

/// Keyed entries: `(key group, key, value)`.
type Entries = Vec<(u16, Vec<u8>, Vec<u8>)>;

/// A change: in state `a` (or `b`), key group, key, and the new value or `None` (delete).
type Change = (bool, u16, Vec<u8>, Option<Vec<u8>>);

/// The operator snapshot of a model (entries in no particular order), with a list that
/// changes at every checkpoint.
fn operator(model: &Model, id: u64) -> OperatorSnapshot {
    let mut keyed: BTreeMap<&str, Entries> = BTreeMap::new();
    for ((state, key_group, key), value) in model.iter().rev() {
        keyed.entry(state).or_default().push((*key_group, key.clone(), value.clone()));
    }
    OperatorSnapshot {
        uid: "op".into(),
        name: "Op".into(),
        parallelism: 2,
        keyed: keyed.into_iter().map(|(state, entries)| KeyedEntries { state: state.into(), entries }).collect(),
        lists: vec![ListEntries {
            name: "offsets".into(),
            redistribution: Redistribution::Split,
            items: vec![vec![id.to_be_bytes().to_vec()], vec![]],
        }],
    }
}

/// The `(state, key group)` parts of a model with their entries.
fn parts(model: &Model) -> Parts {
    let mut parts = Parts::new();
    for ((state, key_group, key), value) in model {
        parts.entry((state.clone(), *key_group)).or_default().push((key.clone(), value.clone()));
    }
    parts
}

/// Every subtask's keyed entries at parallelism 2, then 3, then 1: a restore, a rescale up
/// and a rescale down.
fn restored(reader: &SnapshotReader, max_parallelism: usize) -> Vec<Vec<KeyedEntries>> {
    let mut out = Vec::new();
    for parallelism in [2, 3, 1] {
        for subtask in 0..parallelism {
            out.push(reader.keyed("op", KeyGroupRange::of_subtask(subtask, max_parallelism, parallelism)).unwrap());
        }
    }
    out
}

/// A change: upsert (`Some`) or delete (`None`) a key of state `a` or `b` in a key group.
fn change(max_parallelism: usize) -> impl Strategy<Value = Change> {
    let key = proptest::collection::vec(0u8..4, 1..3);
    let value = proptest::option::weighted(0.8, proptest::collection::vec(any::<u8>(), 0..4));
    (any::<bool>(), 0..max_parallelism as u16, key, value)
}

/// A number of key groups, at least 3 so parallelism 3 owns some.
fn key_groups() -> impl Strategy<Value = usize> {
    prop_oneof![3usize..=12, Just(128usize)]
}

/// Applies one interval's changes to the model.
fn apply(model: &mut Model, changes: &[Change]) {
    for (a, key_group, key, value) in changes {
        let at = ((if *a { "a" } else { "b" }).to_string(), *key_group, key.clone());
        match value {
            Some(value) => model.insert(at, value.clone()),
            None => model.remove(&at),
        };
    }
}

proptest! {
    #![proptest_config(few_cases(12))]

    /// A chain of incremental checkpoints, with `retain` after each: every checkpoint kept
    /// verifies and restores at parallelism 2, 3 and 1 exactly what a full checkpoint of the
    /// same state restores; a part that did not change since the last checkpoint stores
    /// nothing, and no chunk is stored that the last checkpoint had.
    #[test]
    fn an_incremental_chain_restores_what_full_checkpoints_do(
        (max_parallelism, initial, intervals, keep) in key_groups().prop_flat_map(|mp| (
            Just(mp),
            proptest::collection::vec(change(mp), 0..40),
            proptest::collection::vec(proptest::collection::vec(change(mp), 0..4), 1..6),
            1usize..4,
        ))
    ) {
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = CheckpointDirectory::open(dir.path().join("chk")).unwrap();
        let full = dir.path().join("full");
        let mut model = Model::new();
        apply(&mut model, &initial);
        let mut models = BTreeMap::new();
        let mut base: Option<SnapshotMetadata> = None;
        let mut previous = Parts::new();
        for (i, changes) in std::iter::once(&Vec::new()).chain(&intervals).enumerate() {
            let id = i as u64 + 1;
            apply(&mut model, changes);
            let op = operator(&model, id);
            let path = checkpoints.path_for(id);
            let written = match &base {
                None => write_snapshot(&path, header(id, max_parallelism), &[op]).unwrap(),
                Some(base) => write_incremental(&path, header(id, max_parallelism), &[op], base).unwrap(),
            };
            let now = parts(&model);
            if let Some(base) = &base {
                let had: BTreeSet<(&str, u16, u64)> = base.operators.iter().flat_map(|op| &op.parts)
                    .flat_map(|part| part.chunks.iter().map(|chunk| (part.state.as_str(), part.key_group, chunk.checksum)))
                    .collect();
                for part in written.operators.iter().flat_map(|op| &op.parts) {
                    let unchanged = previous.get(&(part.state.clone(), part.key_group)) == now.get(&(part.state.clone(), part.key_group));
                    for chunk in part.chunks.iter().filter(|chunk| chunk.stored_in == id) {
                        prop_assert!(!unchanged, "an unchanged part stores chunk {}", chunk.number);
                        prop_assert!(!had.contains(&(part.state.as_str(), part.key_group, chunk.checksum)));
                    }
                }
            }
            previous = now;
            base = Some(written);
            models.insert(id, model.clone());
            checkpoints.retain(keep).unwrap();
        }
        let kept = checkpoints.ids().unwrap();
        prop_assert!(kept.len() >= keep.min(models.len()));
        for id in kept.iter().rev().take(keep) {
            let reader = SnapshotReader::open(checkpoints.path_for(*id)).unwrap();
            reader.verify().unwrap();
            let full_path = full.join(id.to_string());
            write_snapshot(&full_path, header(*id, max_parallelism), &[operator(&models[id], *id)]).unwrap();
            let full_reader = SnapshotReader::open(&full_path).unwrap();
            prop_assert_eq!(restored(&reader, max_parallelism), restored(&full_reader, max_parallelism));
            prop_assert_eq!(reader.list("op", "offsets").unwrap(), full_reader.list("op", "offsets").unwrap());
        }
    }
}

/// 8 key groups, 50 keys each, of one state: the key group of a key is its first byte.
fn eight_groups(tag: u8) -> Model {
    let mut model = Model::new();
    for key_group in 0..8u16 {
        for key in 0..50u8 {
            model.insert(("count".into(), key_group, vec![key_group as u8, key]), vec![tag; 10]);
        }
    }
    model
}

/// Writes checkpoints 1 (full), 2 (key group 0 changed) and 3 (key group 1 changed).
fn chain(checkpoints: &CheckpointDirectory) -> Vec<SnapshotMetadata> {
    let mut model = eight_groups(1);
    let mut written = vec![write_snapshot(&checkpoints.path_for(1), header(1, 8), &[operator(&model, 1)]).unwrap()];
    for id in 2..=3u64 {
        model.insert(("count".into(), id as u16 - 2, vec![0, 0]), vec![id as u8]);
        let base = written.last().unwrap();
        written
            .push(write_incremental(&checkpoints.path_for(id), header(id, 8), &[operator(&model, id)], base).unwrap());
    }
    written
}

#[test]
fn an_incremental_checkpoint_stores_only_the_changed_key_groups() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    let written = chain(&checkpoints);
    assert!(!written[0].is_incremental());
    assert_eq!(written[0].added_bytes(), written[0].bytes());
    let third = &written[2];
    assert!(third.is_incremental());
    assert_eq!(third.references(), vec![1, 2]);
    // Only key group 1 changed (a key added: 51 entries), and the 8-byte list item is new.
    let stored: Vec<(u16, u64)> = third.operators[0]
        .parts
        .iter()
        .flat_map(|part| {
            part.chunks.iter().filter(|chunk| chunk.stored_in == 3).map(|chunk| (part.key_group, chunk.bytes))
        })
        .collect();
    assert!(!stored.is_empty() && stored.iter().all(|(key_group, _)| *key_group == 1), "{stored:?}");
    assert_eq!(third.added_bytes(), stored.iter().map(|(_, bytes)| bytes).sum::<u64>() + 8);
    assert_eq!(open_sled(&checkpoints.path_for(3)).open_tree("keyed").unwrap().len(), stored.len());
    let reader = SnapshotReader::open(checkpoints.path_for(3)).unwrap();
    reader.verify().unwrap();
    assert_eq!(reader.keyed("op", KeyGroupRange { start: 0, end: 7 }).unwrap()[0].entries.len(), 401);
}

#[test]
fn a_changed_or_added_key_rewrites_the_chunks_around_it_not_its_key_group() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    // 20 000 keys in one key group: dozens of chunks.
    let mut model: Model =
        (0..20_000u32).map(|i| (("count".to_string(), 0, i.to_be_bytes().to_vec()), vec![1; 8])).collect();
    let first = write_snapshot(&checkpoints.path_for(1), header(1, 1), &[operator(&model, 1)]).unwrap();
    let chunks = first.operators[0].parts[0].chunks.len();
    assert!(chunks > 20, "{chunks} chunks");
    model.insert(("count".into(), 0, 10_000u32.to_be_bytes().to_vec()), vec![2; 8]);
    let second = write_incremental(&checkpoints.path_for(2), header(2, 1), &[operator(&model, 2)], &first).unwrap();
    let stored = |written: &SnapshotMetadata, id| {
        written.operators[0].parts[0].chunks.iter().filter(|chunk| chunk.stored_in == id).count()
    };
    assert_eq!(stored(&second, 2), 1, "a changed value rewrites its chunk");
    // A key inserted in the middle: chunk boundaries follow the keys, so the chunks after it
    // are the same as before.
    model.insert(("count".into(), 0, [0, 0, 0x27, 0x10, 7].to_vec()), vec![3; 8]);
    let third = write_incremental(&checkpoints.path_for(3), header(3, 1), &[operator(&model, 3)], &second).unwrap();
    assert!((1..=2).contains(&stored(&third, 3)), "{} chunks rewritten", stored(&third, 3));
    let reader = SnapshotReader::open(checkpoints.path_for(3)).unwrap();
    reader.verify().unwrap();
    let entries = &reader.keyed("op", KeyGroupRange { start: 0, end: 0 }).unwrap()[0].entries;
    let expected: Vec<_> =
        model.iter().map(|((_, key_group, key), value)| (*key_group, key.clone(), value.clone())).collect();
    assert_eq!(entries, &expected);
}

#[test]
fn chunks_older_than_rewrite_after_are_written_again_so_old_checkpoints_can_go() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    let model = eight_groups(1);
    let mut base = write_snapshot(&checkpoints.path_for(1), header(1, 8), &[operator(&model, 1)]).unwrap();
    for id in 2..=REWRITE_AFTER + 3 {
        base = write_incremental(&checkpoints.path_for(id), header(id, 8), &[operator(&model, id)], &base).unwrap();
        // Nothing changed: everything is taken over, until checkpoint 1 is too old.
        let rewritten = id == REWRITE_AFTER + 2;
        assert_eq!(base.is_incremental(), !rewritten, "checkpoint {id}");
        let oldest = base.references().first().copied().unwrap_or(id);
        assert!(id - oldest <= REWRITE_AFTER, "checkpoint {id} refers to {oldest}");
        checkpoints.retain(1).unwrap();
    }
    // Checkpoint 1 is no longer referenced, so retain deleted it; the newest still restores.
    assert_eq!(checkpoints.ids().unwrap(), vec![REWRITE_AFTER + 2, REWRITE_AFTER + 3]);
    let reader = SnapshotReader::open(checkpoints.path_for(REWRITE_AFTER + 3)).unwrap();
    reader.verify().unwrap();
    assert_eq!(reader.keyed("op", KeyGroupRange { start: 0, end: 7 }).unwrap()[0].entries.len(), 400);
}

#[test]
fn retain_keeps_the_checkpoints_that_kept_ones_take_parts_from() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    chain(&checkpoints);
    checkpoints.retain(1).unwrap();
    // 3 takes parts from 1 and 2: nothing can go.
    assert_eq!(checkpoints.ids().unwrap(), vec![1, 2, 3]);
    // A full checkpoint 4 takes nothing: the others go.
    write_snapshot(&checkpoints.path_for(4), header(4, 8), &[operator(&eight_groups(4), 4)]).unwrap();
    checkpoints.retain(1).unwrap();
    assert_eq!(checkpoints.ids().unwrap(), vec![4]);
}

/// Overwrites the first keyed chunk of the snapshot at `dir` with other bytes that still
/// parse: only the checksums can tell.
fn change_first_chunk(dir: &Path) {
    let db = open_sled(dir);
    let keyed = db.open_tree("keyed").unwrap();
    let (key, value) = keyed.iter().next().unwrap().unwrap();
    let mut bytes = value.to_vec();
    *bytes.last_mut().unwrap() ^= 0xff;
    keyed.insert(key, bytes).unwrap();
    db.flush().unwrap();
}

#[test]
fn a_damaged_shared_part_is_found_and_recovery_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    chain(&checkpoints);
    // Checkpoint 2 stores key group 0, which checkpoint 3 takes over.
    change_first_chunk(&checkpoints.path_for(2));
    let reader = SnapshotReader::open(checkpoints.path_for(3)).unwrap();
    let err = reader.verify().unwrap_err().to_string();
    assert!(err.contains("key group 0, taken over from checkpoint 2") && err.contains("checksum"), "{err}");
    let err = reader.keyed("op", KeyGroupRange { start: 0, end: 0 }).unwrap_err().to_string();
    assert!(err.contains("checksum"), "{err}");
    // Key groups stored elsewhere still read.
    assert_eq!(reader.keyed("op", KeyGroupRange { start: 1, end: 7 }).unwrap()[0].entries.len(), 351);
    drop(reader);
    let (reader, warnings) = checkpoints.latest_valid().unwrap().unwrap();
    assert_eq!(reader.metadata().header.id, 1, "{warnings:?}");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("skipped checkpoint 3"), "{warnings:?}");
}

#[test]
fn a_missing_shared_checkpoint_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    chain(&checkpoints);
    std::fs::remove_dir_all(checkpoints.path_for(1)).unwrap();
    let err = SnapshotReader::open(checkpoints.path_for(3)).unwrap().verify().unwrap_err().to_string();
    assert!(err.contains("taken over from checkpoint 1") && err.contains("cannot be read"), "{err}");
    assert!(checkpoints.latest_valid().is_err());
}

#[test]
fn savepoints_are_never_incremental() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    let written = chain(&checkpoints);
    let mut savepoint = header(4, 8);
    savepoint.kind = SnapshotKind::Savepoint;
    let err = write_incremental(&dir.path().join("sp"), savepoint, &[operator(&eight_groups(1), 4)], &written[2])
        .unwrap_err()
        .to_string();
    assert!(err.contains("write savepoints in full"), "{err}");
    let err = write_incremental(&checkpoints.path_for(2), header(2, 8), &[], &written[2]).unwrap_err().to_string();
    assert!(err.contains("the base must be older"), "{err}");
}
