//! Incremental checkpoints from a changelog: a chain of deltas on top of chunks, with parts
//! materialised now and then, restores at parallelism 2, 3 and 1 exactly what a full
//! checkpoint of the same state does; a checkpoint that failed is made up for by the next
//! one; a damaged delta is found and skipped like any damaged checkpoint.

use std::collections::BTreeMap;

use eddy_core::key::KeyGroupRange;
use eddy_state::checkpoint::{
    write_changelog, write_snapshot, CheckpointDirectory, SnapshotMetadata, SnapshotReader, MATERIALIZE_AFTER,
};
use eddy_state::{
    KeyedChange, KeyedEntries, ListEntries, OperatorChanges, OperatorSnapshot, Redistribution, StateChanges,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use crate::fixture::{apply_changes, few_cases, header, open_sled};

/// An operator's keyed state as a model: `(state, key group, key) → value`.
type Model = BTreeMap<(String, u16, Vec<u8>), Vec<u8>>;

/// Keyed entries: `(key group, key, value)`.
type Entries = Vec<(u16, Vec<u8>, Vec<u8>)>;

/// A store's backend entries: `key → value`.
type BackendEntries = BTreeMap<Vec<u8>, Vec<u8>>;

/// A change: in state `a` (or `b`), key group, key, and the new value or `None` (delete).
type Change = (bool, u16, Vec<u8>, Option<Vec<u8>>);

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

/// The list every snapshot of the operator has.
fn offsets(id: u64) -> Vec<ListEntries> {
    vec![ListEntries {
        name: "offsets".into(),
        redistribution: Redistribution::Split,
        items: vec![vec![id.to_be_bytes().to_vec()], vec![]],
    }]
}

/// The full operator snapshot of the entries of `model` that `keep` selects.
fn operator(model: &Model, id: u64, keep: impl Fn(&str, u16) -> bool) -> OperatorSnapshot {
    let mut keyed: BTreeMap<&str, Entries> = BTreeMap::new();
    for ((state, key_group, key), value) in model.iter().rev().filter(|((s, kg, _), _)| keep(s, *kg)) {
        keyed.entry(state).or_default().push((*key_group, key.clone(), value.clone()));
    }
    OperatorSnapshot {
        uid: "op".into(),
        name: "Op".into(),
        parallelism: 2,
        keyed: keyed.into_iter().map(|(state, entries)| KeyedEntries { state: state.into(), entries }).collect(),
        lists: offsets(id),
    }
}

/// What a task hands over: the entries of `now` that differ from `base`, with the lengths
/// they had in `base`, except in the parts `changes` replaces, which `operator` gives in full.
fn changes_since(base: &Model, now: &Model, replaced: &OperatorChanges) -> Vec<StateChanges> {
    let mut by_state: BTreeMap<&str, Vec<KeyedChange>> = BTreeMap::new();
    let keys = base.keys().chain(now.keys()).collect::<std::collections::BTreeSet<_>>();
    for at @ (state, key_group, key) in keys {
        let (before, value) = (base.get(at), now.get(at));
        if before == value || replaced.replaces(state, (*key_group).into()) {
            continue;
        }
        by_state.entry(state).or_default().push(KeyedChange {
            key_group: *key_group,
            key: key.clone(),
            value: value.cloned(),
            before: before.map(|v| v.len() as u32),
        });
    }
    by_state.into_iter().map(|(state, changes)| StateChanges { state: state.into(), changes }).collect()
}

/// Every subtask's keyed entries at parallelism 2, then 3, then 1, by state name.
fn restored(reader: &SnapshotReader, max_parallelism: usize) -> Vec<Vec<KeyedEntries>> {
    let mut out = Vec::new();
    for parallelism in [2, 3, 1] {
        for subtask in 0..parallelism {
            let mut states =
                reader.keyed("op", KeyGroupRange::of_subtask(subtask, max_parallelism, parallelism)).unwrap();
            states.sort_by(|a, b| a.state.cmp(&b.state));
            out.push(states);
        }
    }
    out
}

/// A change: upsert (`Some`) or delete (`None`) a key of state `a` or `b` in a key group.
fn change(max_parallelism: usize) -> impl Strategy<Value = Change> {
    let key = proptest::collection::vec(0u8..8, 1..3);
    let value = proptest::option::weighted(0.8, proptest::collection::vec(any::<u8>(), 0..4));
    (any::<bool>(), 0..max_parallelism as u16, key, value)
}

/// What one interval does: its changes, whether its checkpoint fails, and what it gives in
/// full (nothing, state `b`, or the key groups of subtask 0 of 2).
#[derive(Debug, Clone)]
struct Interval {
    changes: Vec<Change>,
    fails: bool,
    full: u8,
}

fn interval(max_parallelism: usize) -> impl Strategy<Value = Interval> {
    let full = prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)];
    (proptest::collection::vec(change(max_parallelism), 0..12), proptest::bool::weighted(0.15), full)
        .prop_map(|(changes, fails, full)| Interval { changes, fails, full })
}

/// [`few_cases`], keeping the seeds of failures in `tests/proptest-regressions/` so
/// that a failure CI finds once is replayed on every run after.
fn few_cases_kept(cases: u32) -> ProptestConfig {
    let kept = FileFailurePersistence::SourceParallel("proptest-regressions");
    ProptestConfig { failure_persistence: Some(Box::new(kept)), ..few_cases(cases) }
}

proptest! {
    #![proptest_config(few_cases_kept(10))]

    /// A chain of changelog checkpoints longer than `MATERIALIZE_AFTER` (so parts materialise),
    /// with failed checkpoints (not written: the next one builds on the last written) and
    /// parts given in full: every checkpoint verifies and restores at parallelism 2, 3 and 1
    /// what a full checkpoint of the same state restores, and `retain` keeps what they need.
    #[test]
    fn a_changelog_chain_restores_what_full_checkpoints_do(
        (max_parallelism, initial, intervals, keep) in prop_oneof![3usize..=8, Just(128usize)].prop_flat_map(|mp| (
            Just(mp),
            proptest::collection::vec(change(mp), 0..80),
            proptest::collection::vec(interval(mp), 1..(MATERIALIZE_AFTER as usize + 8)),
            1usize..3,
        ))
    ) {
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = CheckpointDirectory::open(dir.path().join("chk")).unwrap();
        let mut model = Model::new();
        apply(&mut model, &initial);
        let first = write_snapshot(&checkpoints.path_for(1), header(1, max_parallelism), &[operator(&model, 1, |_, _| true)]).unwrap();
        let mut base: (SnapshotMetadata, Model) = (first, model.clone());
        let mut written = BTreeMap::from([(1u64, model.clone())]);
        for (i, step) in intervals.iter().enumerate() {
            let id = i as u64 + 2;
            apply(&mut model, &step.changes);
            let mut replaced = OperatorChanges { uid: "op".into(), ..Default::default() };
            match step.full {
                1 => replaced.replaced_states.push("b".into()),
                2 => replaced.replaced_key_groups.push(KeyGroupRange::of_subtask(0, max_parallelism, 2)),
                _ => {}
            }
            replaced.changes = changes_since(&base.1, &model, &replaced);
            if step.fails {
                continue;
            }
            let op = operator(&model, id, |state, key_group| replaced.replaces(state, key_group.into()));
            let metadata = write_changelog(&checkpoints.path_for(id), header(id, max_parallelism), &[op], &[replaced], &base.0).unwrap();
            let oldest = metadata.references().first().copied().unwrap_or(id);
            prop_assert!(id - oldest <= MATERIALIZE_AFTER, "checkpoint {} refers to {}", id, oldest);
            base = (metadata, model.clone());
            written.insert(id, model.clone());
            checkpoints.retain(keep).unwrap();
        }
        let kept = checkpoints.ids().unwrap();
        for id in kept.iter().rev().take(keep) {
            let reader = SnapshotReader::open(checkpoints.path_for(*id)).unwrap();
            reader.verify().unwrap();
            let full_path = dir.path().join("full").join(id.to_string());
            write_snapshot(&full_path, header(*id, max_parallelism), &[operator(&written[id], *id, |_, _| true)]).unwrap();
            let full = SnapshotReader::open(&full_path).unwrap();
            prop_assert_eq!(restored(&reader, max_parallelism), restored(&full, max_parallelism));
            prop_assert_eq!(reader.metadata().entries(), full.metadata().entries());
            prop_assert_eq!(reader.metadata().bytes(), full.metadata().bytes());
            prop_assert_eq!(reader.list("op", "offsets").unwrap(), full.list("op", "offsets").unwrap());
        }
    }
}

/// 8 key groups of 500 keys, one state; then checkpoint 2 changes one key per key group.
fn two_checkpoints(checkpoints: &CheckpointDirectory) -> (Model, SnapshotMetadata) {
    let mut model = Model::new();
    for key_group in 0..8u16 {
        for key in 0..500u16 {
            model.insert(("count".into(), key_group, key.to_be_bytes().to_vec()), vec![1; 8]);
        }
    }
    let first = write_snapshot(&checkpoints.path_for(1), header(1, 8), &[operator(&model, 1, |_, _| true)]).unwrap();
    let before = model.clone();
    for key_group in 0..8u16 {
        model.insert(("count".into(), key_group, 7u16.to_be_bytes().to_vec()), vec![2; 9]);
    }
    let mut changes = OperatorChanges { uid: "op".into(), ..Default::default() };
    changes.changes = changes_since(&before, &model, &changes);
    let op = operator(&model, 2, |_, _| false);
    let second = write_changelog(&checkpoints.path_for(2), header(2, 8), &[op], &[changes], &first).unwrap();
    (model, second)
}

#[test]
fn a_delta_stores_about_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    let (model, second) = two_checkpoints(&checkpoints);
    assert!(second.is_incremental());
    let parts = &second.operators[0].parts;
    // No key group is due for materialisation at checkpoint 2 ((2 + key group) % 32 != 0).
    for part in parts {
        let own_chunks = part.chunks.iter().filter(|c| c.stored_in == 2).count();
        assert_eq!((own_chunks, part.deltas.len()), (0, 1), "{part:?}");
        assert_eq!(part.deltas[0].changes, 1);
        assert_eq!((part.entries, part.bytes), (500, 500 * 10 + 1));
    }
    // 8 deltas of one entry (2-byte key, 1 + 9-byte value, 8 bytes of frame) and the list item.
    assert_eq!(second.added_bytes(), 8 * 20 + 8);
    assert_eq!(open_sled(&checkpoints.path_for(2)).open_tree("deltas").unwrap().len(), 8);
    let reader = SnapshotReader::open(checkpoints.path_for(2)).unwrap();
    reader.verify().unwrap();
    let expected: Vec<_> = model.iter().map(|((_, kg, key), value)| (*kg, key.clone(), value.clone())).collect();
    assert_eq!(reader.keyed("op", KeyGroupRange { start: 0, end: 7 }).unwrap()[0].entries, expected);
}

#[test]
fn parts_materialise_in_turn_so_chains_stay_short() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    let (mut model, mut base) = two_checkpoints(&checkpoints);
    let key_groups = 8;
    for id in 3..=MATERIALIZE_AFTER + 4 {
        let before = model.clone();
        model
            .insert(("count".into(), (id % key_groups) as u16, 9u16.to_be_bytes().to_vec()), id.to_be_bytes().to_vec());
        let mut changes = OperatorChanges { uid: "op".into(), ..Default::default() };
        changes.changes = changes_since(&before, &model, &changes);
        let op = operator(&model, id, |_, _| false);
        base = write_changelog(&checkpoints.path_for(id), header(id, 8), &[op], &[changes], &base).unwrap();
        for part in &base.operators[0].parts {
            let due = (id + u64::from(part.key_group)) % MATERIALIZE_AFTER == 0;
            // A part due now is stored in full; none is ever more than MATERIALIZE_AFTER deltas long.
            assert_eq!(due, part.chunks.iter().all(|c| c.stored_in == id) && part.deltas.is_empty(), "{id}: {part:?}");
            assert!(part.deltas.len() < MATERIALIZE_AFTER as usize);
        }
        checkpoints.retain(1).unwrap();
    }
    let oldest = checkpoints.ids().unwrap()[0];
    assert!(oldest > 1, "checkpoint 1 is no longer needed");
    let reader = SnapshotReader::open(checkpoints.path_for(MATERIALIZE_AFTER + 4)).unwrap();
    reader.verify().unwrap();
    let expected: Vec<_> = model.iter().map(|((_, kg, key), value)| (*kg, key.clone(), value.clone())).collect();
    assert_eq!(reader.keyed("op", KeyGroupRange { start: 0, end: 7 }).unwrap()[0].entries, expected);
}

#[test]
fn a_damaged_delta_is_found_and_recovery_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    two_checkpoints(&checkpoints);
    {
        let db = open_sled(&checkpoints.path_for(2));
        let deltas = db.open_tree("deltas").unwrap();
        let (key, value) = deltas.iter().next().unwrap().unwrap();
        let mut bytes = value.to_vec();
        *bytes.last_mut().unwrap() ^= 0xff;
        deltas.insert(key, bytes).unwrap();
        db.flush().unwrap();
    }
    let reader = SnapshotReader::open(checkpoints.path_for(2)).unwrap();
    let err = reader.verify().unwrap_err().to_string();
    assert!(err.contains("the delta of state 'count' in key group 0") && err.contains("checksum"), "{err}");
    let err = reader.keyed("op", KeyGroupRange { start: 0, end: 0 }).unwrap_err().to_string();
    assert!(err.contains("checksum"), "{err}");
    drop(reader);
    let (reader, warnings) = checkpoints.latest_valid().unwrap().unwrap();
    assert_eq!(reader.metadata().header.id, 1, "{warnings:?}");
    assert!(warnings[0].contains("skipped checkpoint 2"), "{warnings:?}");
}

/// The case CI's run of the chain test found (a checkpoint storing a delta its metadata
/// does not list): the changes of a part remove its last entry, so the part is gone from
/// the checkpoint, and so must its delta be; the key group filled again later starts a
/// new part.
#[test]
fn a_part_emptied_by_its_changes_leaves_no_delta_behind() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    let mut model = Model::new();
    for key in 0..40u8 {
        model.insert(("a".into(), 0, vec![key]), vec![key; 3]);
    }
    model.insert(("b".into(), 1, vec![7]), vec![1, 2]);
    let mut base = write_snapshot(&checkpoints.path_for(1), header(1, 4), &[operator(&model, 1, |_, _| true)]).unwrap();
    let mut written = model.clone();
    // Checkpoint 2 removes state 'b''s only entry in key group 1; checkpoint 3 puts one back.
    for (id, value) in [(2u64, None), (3, Some(vec![9]))] {
        let change: Change = (false, 1, vec![7], value);
        apply(&mut model, &[change]);
        let mut changes = OperatorChanges { uid: "op".into(), ..Default::default() };
        changes.changes = changes_since(&written, &model, &changes);
        let op = operator(&model, id, |_, _| false);
        base = write_changelog(&checkpoints.path_for(id), header(id, 4), &[op], &[changes], &base).unwrap();
        written = model.clone();
        let reader = SnapshotReader::open(checkpoints.path_for(id)).unwrap();
        reader.verify().unwrap();
        let b: Vec<_> = reader.keyed("op", KeyGroupRange { start: 0, end: 3 }).unwrap();
        let b = b.into_iter().find(|state| state.state == "b").map(|state| state.entries).unwrap_or_default();
        let expected: Vec<_> = model
            .iter()
            .filter(|((state, _, _), _)| state == "b")
            .map(|((_, kg, key), value)| (*kg, key.clone(), value.clone()))
            .collect();
        assert_eq!(b, expected, "checkpoint {id}");
    }
    assert_eq!(open_sled(&checkpoints.path_for(2)).open_tree("deltas").unwrap().len(), 0);
}

#[test]
fn changes_that_do_not_follow_from_the_base_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    let (_, second) = two_checkpoints(&checkpoints);
    // 10 removals of values the base is said to hold 1000 bytes of, in a key group of 5001 bytes.
    let removals = (0..10u16)
        .map(|key| KeyedChange { key_group: 1, key: key.to_be_bytes().to_vec(), value: None, before: Some(1000) })
        .collect();
    let changes = OperatorChanges {
        uid: "op".into(),
        changes: vec![StateChanges { state: "count".into(), changes: removals }],
        ..Default::default()
    };
    let op = operator(&Model::new(), 3, |_, _| false);
    let err = write_changelog(
        &checkpoints.path_for(3),
        header(3, 8),
        std::slice::from_ref(&op),
        std::slice::from_ref(&changes),
        &second,
    );
    assert!(err.unwrap_err().to_string().contains("do not follow from it"));
    // A change in a part given in full.
    let mut replaced = changes;
    replaced.replaced_states.push("count".into());
    let err = write_changelog(&checkpoints.path_for(3), header(3, 8), &[op], &[replaced], &second).unwrap_err();
    assert!(err.to_string().contains("which is replaced"), "{err}");
}

/// One step of a keyed job: set key `key`'s count, clear it, or put or remove an entry of
/// its map, or cut the log at a barrier whose checkpoint completes or fails.
#[derive(Debug, Clone)]
enum Step {
    Count(u8, u64),
    ClearCount(u8),
    Put(u8, u8, u32),
    Remove(u8, u8),
    ClearMap(u8),
    Barrier { fails: bool },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..40, any::<u64>()).prop_map(|(k, v)| Step::Count(k, v)),
        1 => (0u8..40).prop_map(Step::ClearCount),
        3 => (0u8..40, 0u8..4, any::<u32>()).prop_map(|(k, m, v)| Step::Put(k, m, v)),
        1 => (0u8..40, 0u8..4).prop_map(|(k, m)| Step::Remove(k, m)),
        1 => (0u8..40).prop_map(Step::ClearMap),
        1 => proptest::bool::weighted(0.2).prop_map(|fails| Step::Barrier { fails }),
    ]
}

/// The heap backend's entries, over all key groups: `key → value`.
fn backend_entries(store: &eddy_state::KeyedStateStore<eddy_state::HeapBackend>) -> BackendEntries {
    store.snapshot_key_groups().unwrap().into_iter().flat_map(|group| group.entries).collect()
}

proptest! {
    #![proptest_config(few_cases(32))]

    /// With change tracking on, what a store hands over at each barrier is exactly the
    /// difference between its entries now and at the last checkpoint that completed (or a
    /// full snapshot, when there is none), with the lengths the values had there; a failed
    /// checkpoint's changes come again with the next one.
    #[test]
    fn store_changes_are_the_difference_since_the_base(steps in proptest::collection::vec(step(), 1..120)) {
        use eddy_state::{HeapBackend, KeyedStateStore, MapStateDescriptor, ValueStateDescriptor};
        let store = KeyedStateStore::new(HeapBackend::new(16).unwrap());
        prop_assert!(store.track_changes().unwrap());
        let count = store.value_state(&ValueStateDescriptor::<u64>::new("count")).unwrap();
        let map = store.map_state(&MapStateDescriptor::<u8, u32>::new("map")).unwrap();
        let mut base: Option<(u64, BackendEntries)> = None;
        let mut id = 0;
        for step in steps {
            match step {
                Step::Count(k, v) => { store.set_current_key(&k).unwrap(); count.update(v).unwrap() }
                Step::ClearCount(k) => { store.set_current_key(&k).unwrap(); count.clear().unwrap() }
                Step::Put(k, m, v) => { store.set_current_key(&k).unwrap(); map.put(m, v).unwrap() }
                Step::Remove(k, m) => { store.set_current_key(&k).unwrap(); map.remove(&m).unwrap() }
                Step::ClearMap(k) => { store.set_current_key(&k).unwrap(); map.clear().unwrap() }
                Step::Barrier { fails } => {
                    id += 1;
                    let now = backend_entries(&store);
                    let changes = store.snapshot_changes(id, base.as_ref().map(|(id, _)| *id)).unwrap();
                    match (&base, changes) {
                        (None, changes) => prop_assert!(changes.is_none(), "no base: a full snapshot"),
                        (Some((_, then)), changes) => {
                            let changes = changes.expect("the log reaches back to the last completed checkpoint");
                            prop_assert!(changes.untracked.iter().all(|g| g.entries.is_empty() && g.timers.is_empty()));
                            let applied = apply_changes(then, &changes.changes)?;
                            prop_assert_eq!(&applied, &now);
                        }
                    }
                    if !fails {
                        base = Some((id, now));
                    }
                }
            }
        }
    }
}
