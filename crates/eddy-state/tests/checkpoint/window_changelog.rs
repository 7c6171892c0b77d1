//! A window operator's contents in the changelog: the heap keeps them as live values, and
//! with change tracking on a store hands over only the (window, key) entries changed since
//! the last checkpoint, a fired window's entries as removals. A chain of such checkpoints
//! restores at parallelism 2, 3 and 1 exactly what full checkpoints of the same state do,
//! and what a sequential model holds.

use std::collections::BTreeMap;

use eddy_core::key::KeyGroupRange;
use eddy_state::backend::layout::EntryKey;
use eddy_state::checkpoint::{write_changelog, write_snapshot, CheckpointDirectory, SnapshotMetadata, SnapshotReader};
use eddy_state::{
    HeapBackend, KeyGroupSnapshot, KeyedChange, KeyedEntries, KeyedStateStore, NamespacedState,
    NamespacedStateDescriptor, OperatorChanges, OperatorSnapshot, StateChanges, StateError, StoreChanges,
    ValueStateDescriptor,
};
use proptest::prelude::*;

use crate::fixture::{apply_changes, few_cases, header};

/// The operator's state as a model: each window's count per word, and a count per word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Model {
    windows: BTreeMap<(i64, String), u64>,
    counts: BTreeMap<String, u64>,
}

/// A store's backend entries: `key → value`.
type Entries = BTreeMap<Vec<u8>, Vec<u8>>;

/// Keyed entries: `(key group, key, value)`.
type GroupEntries = Vec<(u16, Vec<u8>, Vec<u8>)>;

/// One step of a window job.
#[derive(Debug, Clone)]
enum Step {
    /// Adds to a word's count in a window (a record).
    Add(i64, u8, u64),
    /// Sets a word's count in a window.
    Put(i64, u8, u64),
    /// Removes a word from a window.
    Take(i64, u8),
    /// The window fires and is purged.
    Fire(i64),
    /// Every count of the window goes up by one (a visit that changes in place).
    Bump(i64),
    /// Sets a word's count outside windows (value state).
    Count(u8, u64),
    /// A barrier; its checkpoint completes or fails.
    Barrier { fails: bool },
}

fn step() -> impl Strategy<Value = Step> {
    let window = (0i64..4).prop_map(|w| w * 1_000);
    let word = 0u8..12;
    prop_oneof![
        8 => (window.clone(), word.clone(), 1u64..5).prop_map(|(w, k, n)| Step::Add(w, k, n)),
        1 => (window.clone(), word.clone(), any::<u64>()).prop_map(|(w, k, v)| Step::Put(w, k, v)),
        1 => (window.clone(), word.clone()).prop_map(|(w, k)| Step::Take(w, k)),
        1 => window.clone().prop_map(Step::Fire),
        1 => window.prop_map(Step::Bump),
        1 => (word, any::<u64>()).prop_map(|(k, v)| Step::Count(k, v)),
        2 => proptest::bool::weighted(0.2).prop_map(|fails| Step::Barrier { fails }),
    ]
}

fn word(k: u8) -> String {
    format!("w{k}")
}

/// The store, its window state and its count state, as an operator keeps them.
struct Operator {
    store: KeyedStateStore<HeapBackend>,
    windows: NamespacedState<i64, String, u64>,
}

const COUNTS: &str = "counts";

impl Operator {
    fn new(max_parallelism: usize, key_groups: KeyGroupRange) -> Self {
        let store = KeyedStateStore::with_key_groups(HeapBackend::new(max_parallelism).unwrap(), key_groups).unwrap();
        let windows = store.namespaced_state(&NamespacedStateDescriptor::new("windows")).unwrap();
        Operator { store, windows }
    }

    /// Runs a step on the store and the model (not a barrier).
    fn run(&self, step: &Step, model: &mut Model) {
        let (store, windows) = (&self.store, &self.windows);
        match step.clone() {
            Step::Add(w, k, n) => {
                windows.update(store, &w, &word(k), || 0, |v, _| *v += n).unwrap();
                *model.windows.entry((w, word(k))).or_default() += n;
            }
            Step::Put(w, k, v) => {
                windows.put(store, &w, &word(k), v).unwrap();
                model.windows.insert((w, word(k)), v);
            }
            Step::Take(w, k) => {
                let taken = windows.take(store, &w, &word(k)).unwrap();
                assert_eq!(taken, model.windows.remove(&(w, word(k))));
            }
            Step::Fire(w) => {
                windows.drain_namespace(store, &w, |_, _| Ok::<_, StateError>(())).unwrap();
                model.windows.retain(|(window, _), _| *window != w);
            }
            Step::Bump(w) => {
                windows
                    .update_namespace(store, &w, |_, v| {
                        *v = v.wrapping_add(1);
                        Ok::<_, StateError>(())
                    })
                    .unwrap();
                for ((_, _), v) in model.windows.iter_mut().filter(|((window, _), _)| *window == w) {
                    *v = v.wrapping_add(1);
                }
            }
            Step::Count(k, v) => {
                let counts = store.value_state(&ValueStateDescriptor::<u64>::new(COUNTS)).unwrap();
                store.set_current_key(&word(k)).unwrap();
                counts.update(v).unwrap();
                model.counts.insert(word(k), v);
            }
            Step::Barrier { .. } => unreachable!("barriers are the chain's"),
        }
    }

    /// What the store holds, read back through its states.
    fn contents(&self, model_words: impl Iterator<Item = String>) -> Model {
        let mut out = Model::default();
        for window in self.windows.namespaces(&self.store).unwrap() {
            self.windows
                .update_namespace(&self.store, &window, |word, v| {
                    out.windows.insert((window, word.clone()), *v);
                    Ok::<_, StateError>(())
                })
                .unwrap();
        }
        let counts = self.store.value_state(&ValueStateDescriptor::<u64>::new(COUNTS)).unwrap();
        for word in model_words {
            match self.store.set_current_key(&word) {
                // Another subtask's key.
                Err(StateError::KeyGroupOutOfRange { .. }) => continue,
                other => other.unwrap(),
            };
            if let Some(v) = counts.value().unwrap() {
                out.counts.insert(word, v);
            }
        }
        out
    }
}

/// Key groups' entries by state name, as an operator snapshot.
fn operator_snapshot(groups: Vec<KeyGroupSnapshot>) -> OperatorSnapshot {
    let mut keyed: BTreeMap<String, GroupEntries> = BTreeMap::new();
    for group in groups {
        assert!(group.timers.is_empty());
        for (key, value) in group.entries {
            let state = EntryKey::parse(&key).unwrap().state.to_string();
            keyed.entry(state).or_default().push((group.key_group as u16, key, value));
        }
    }
    OperatorSnapshot {
        uid: "op".into(),
        name: "Window".into(),
        parallelism: 1,
        keyed: keyed.into_iter().map(|(state, entries)| KeyedEntries { state, entries }).collect(),
        lists: Vec::new(),
    }
}

/// A store's changes as an operator's (as the keyed operator hands them over).
fn operator_changes(store: StoreChanges) -> (OperatorSnapshot, OperatorChanges) {
    let mut by_state: BTreeMap<String, Vec<KeyedChange>> = BTreeMap::new();
    for change in store.changes {
        let entry = EntryKey::parse(&change.key).unwrap();
        let key_group = entry.key_group as u16;
        by_state.entry(entry.state.to_string()).or_default().push(KeyedChange {
            key_group,
            key: change.key,
            value: change.value,
            before: change.before,
        });
    }
    let changes = OperatorChanges {
        uid: "op".into(),
        changes: by_state.into_iter().map(|(state, changes)| StateChanges { state, changes }).collect(),
        ..Default::default()
    };
    // What is handed over in full: the timers (none here).
    (operator_snapshot(store.untracked), changes)
}

/// What a checkpoint restores at parallelism 2, then 3, then 1: every subtask's stores
/// read back, merged.
fn restored(reader: &SnapshotReader, max_parallelism: usize, words: &[String]) -> Vec<Model> {
    let mut out = Vec::new();
    for parallelism in [2, 3, 1] {
        let mut merged = Model::default();
        for subtask in 0..parallelism {
            let range = KeyGroupRange::of_subtask(subtask, max_parallelism, parallelism);
            if range.start > range.end {
                continue; // More subtasks than key groups: this one owns none.
            }
            let mut groups: BTreeMap<usize, KeyGroupSnapshot> = BTreeMap::new();
            for state in reader.keyed("op", range).unwrap() {
                for (key_group, key, value) in state.entries {
                    let group = groups
                        .entry(key_group as usize)
                        .or_insert_with(|| KeyGroupSnapshot { key_group: key_group as usize, ..Default::default() });
                    group.entries.push((key, value));
                }
            }
            let operator = Operator::new(max_parallelism, range);
            for (_, mut group) in groups {
                group.entries.sort_unstable();
                operator.store.restore_key_group(group).unwrap();
            }
            let contents = operator.contents(words.iter().cloned());
            merged.windows.extend(contents.windows);
            merged.counts.extend(contents.counts);
        }
        out.push(merged);
    }
    out
}

proptest! {
    #![proptest_config(few_cases(12))]

    /// Random window updates, removals, fires and in-place visits, with barriers whose
    /// checkpoints complete or fail: each checkpoint after the first holds only the changed
    /// window entries, and every checkpoint of the chain restores at parallelism 2, 3 and 1
    /// what a full checkpoint of the same state restores, which is the model's state.
    #[test]
    fn a_chain_of_window_changes_restores_what_full_checkpoints_do(
        max_parallelism in prop_oneof![1usize..=8, Just(128usize)],
        steps in proptest::collection::vec(step(), 1..160),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = CheckpointDirectory::open(dir.path().join("chk")).unwrap();
        let operator = Operator::new(max_parallelism, KeyGroupRange { start: 0, end: max_parallelism - 1 });
        prop_assert!(operator.store.track_changes().unwrap());
        let words: Vec<String> = (0..12).map(word).collect();
        let mut model = Model::default();
        let mut base: Option<(SnapshotMetadata, Entries)> = None;
        let mut id = 0;
        for step in &steps {
            let Step::Barrier { fails } = step else {
                operator.run(step, &mut model);
                continue;
            };
            id += 1;
            let groups = operator.store.snapshot_key_groups().unwrap();
            let now: Entries = groups.iter().flat_map(|g| g.entries.clone()).collect();
            let full = operator_snapshot(groups);
            let changes = operator.store.snapshot_changes(id, base.as_ref().map(|b| b.0.header.id)).unwrap();
            if *fails {
                continue;
            }
            let path = checkpoints.path_for(id);
            let metadata = match (changes, &base) {
                (Some(changes), Some((base, then))) => {
                    // The changes are the difference from the base, with the lengths it holds.
                    let applied = apply_changes(then, &changes.changes)?;
                    prop_assert_eq!(&applied, &now);
                    let (op, changes) = operator_changes(changes);
                    prop_assert!(op.keyed.is_empty());
                    write_changelog(&path, header(id, max_parallelism), &[op], &[changes], base).unwrap()
                }
                (None, _) => write_snapshot(&path, header(id, max_parallelism), std::slice::from_ref(&full)).unwrap(),
                (Some(_), None) => panic!("changes without a base"),
            };
            let reader = SnapshotReader::open(&path).unwrap();
            reader.verify().unwrap();
            let full_path = dir.path().join("full").join(id.to_string());
            write_snapshot(&full_path, header(id, max_parallelism), &[full]).unwrap();
            let full = SnapshotReader::open(&full_path).unwrap();
            let from_chain = restored(&reader, max_parallelism, &words);
            prop_assert_eq!(&from_chain, &restored(&full, max_parallelism, &words));
            prop_assert!(from_chain.iter().all(|restored| *restored == model), "{:?} vs {:?}", from_chain, model);
            base = Some((metadata, now));
        }
    }
}

/// A fired window that the last checkpoint held comes out as removals, and a window opened
/// and fired between two barriers leaves nothing: the delta is the change, not the state.
#[test]
fn a_fired_window_is_handed_over_as_removals() {
    let operator = Operator::new(8, KeyGroupRange { start: 0, end: 7 });
    assert!(operator.store.track_changes().unwrap());
    let mut model = Model::default();
    for k in 0..10 {
        operator.run(&Step::Add(0, k, 1), &mut model);
    }
    assert!(operator.store.snapshot_changes(1, None).unwrap().is_none(), "no base: full");
    operator.run(&Step::Fire(0), &mut model);
    operator.run(&Step::Add(1_000, 3, 2), &mut model);
    operator.run(&Step::Add(2_000, 4, 2), &mut model);
    operator.run(&Step::Fire(2_000), &mut model);
    let changes = operator.store.snapshot_changes(2, Some(1)).unwrap().unwrap();
    let removals = changes.changes.iter().filter(|c| c.value.is_none()).count();
    let writes: Vec<_> = changes.changes.iter().filter(|c| c.value.is_some()).collect();
    assert_eq!((removals, writes.len()), (10, 1), "{changes:?}");
    // A removal carries the length the base held: one cell byte and the count's one byte.
    assert!(changes.changes.iter().filter(|c| c.value.is_none()).all(|c| c.before == Some(2)));
    assert_eq!(writes[0].before, None);
    // Nothing changed since: an empty delta.
    assert!(operator.store.snapshot_changes(3, Some(2)).unwrap().unwrap().changes.is_empty());
}
