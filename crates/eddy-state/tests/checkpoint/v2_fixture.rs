//! Checkpoints of format version 2 (chunks taken over, no deltas) still restore, and a
//! changelog checkpoint builds on them.
//!
//! `v2/checkpoint-7.bin` and `v2/checkpoint-8.bin` hold every tree of two checkpoints of
//! one directory, dumped as the version-1 fixtures are (`v1_fixture.rs`), exactly as eddy
//! stored them at commit 352ce49: checkpoint 7 is `write_snapshot` of
//! [`v1_model::operators`](crate::v1_model::operators) (as a checkpoint), checkpoint 8 is
//! `write_incremental` on top of it of the same operators [`changed`].

use eddy_core::key::KeyGroupRange;
use eddy_state::checkpoint::{write_changelog, CheckpointDirectory, SnapshotReader};
use eddy_state::{KeyedChange, KeyedEntries, OperatorChanges, OperatorSnapshot, SnapshotKind, StateChanges};

use crate::v1_fixture::rebuild;
use crate::v1_model;

/// The operators of checkpoint 8: the first count changed, a key added to key group 3.
fn changed() -> Vec<OperatorSnapshot> {
    let mut ops = v1_model::operators();
    ops[1].keyed[0].entries[0].2 = b"changed".to_vec();
    ops[1].keyed[0].entries.push((3, b"new-key".to_vec(), b"v".to_vec()));
    ops
}

/// The keyed entries of operator `op` in `range`, sorted as a reader returns them.
fn expected(op: &OperatorSnapshot, range: KeyGroupRange) -> Vec<KeyedEntries> {
    let mut states = op.keyed.clone();
    for state in &mut states {
        state.entries.retain(|e| range.contains(usize::from(e.0)));
        state.entries.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    }
    states
}

/// Checks that `reader` reads back `op` at parallelism 1, 2 and 3.
fn reads_back(reader: &SnapshotReader, op: &OperatorSnapshot) {
    reader.verify().unwrap();
    for parallelism in 1..=3 {
        for subtask in 0..parallelism {
            let range = KeyGroupRange::of_subtask(subtask, 16, parallelism);
            let mut read = reader.keyed(&op.uid, range).unwrap();
            read.sort_by(|a, b| a.state.cmp(&b.state));
            assert_eq!(read, expected(op, range), "{range:?}");
        }
    }
}

#[test]
fn a_version_2_incremental_checkpoint_restores_and_a_changelog_builds_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    rebuild(&checkpoints.path_for(7), include_bytes!("v2/checkpoint-7.bin"));
    rebuild(&checkpoints.path_for(8), include_bytes!("v2/checkpoint-8.bin"));
    let (reader, warnings) = checkpoints.latest_valid().unwrap().unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let metadata = reader.metadata().clone();
    assert_eq!((metadata.format_version, metadata.header.id), (2, 8));
    assert!(metadata.is_incremental());
    assert_eq!(metadata.references(), vec![7]);
    reads_back(&reader, &changed()[1]);
    assert_eq!(reader.list("source", "offsets").unwrap(), v1_model::operators()[0].lists[0].items);
    drop(reader);

    // Checkpoint 9: one count changed and one removed, as a changelog on top of 8.
    let mut ops = changed();
    let (kg, key, old) = ops[1].keyed[0].entries[1].clone();
    let removed = ops[1].keyed[0].entries.remove(2);
    ops[1].keyed[0].entries[1].2 = b"nine".to_vec();
    let changes = vec![
        KeyedChange { key_group: kg, key, value: Some(b"nine".to_vec()), before: Some(old.len() as u32) },
        KeyedChange { key_group: removed.0, key: removed.1, value: None, before: Some(removed.2.len() as u32) },
    ];
    let counter = OperatorChanges {
        uid: "counter".into(),
        changes: vec![StateChanges { state: "count".into(), changes }],
        ..Default::default()
    };
    let mut header = v1_model::header(SnapshotKind::Checkpoint);
    header.id = 9;
    let given = vec![ops[0].clone(), OperatorSnapshot { keyed: vec![], ..ops[1].clone() }];
    let written = write_changelog(&checkpoints.path_for(9), header, &given, &[counter], &metadata).unwrap();
    assert_eq!(written.format_version, eddy_state::checkpoint::FORMAT_VERSION);
    assert!(written.operators[1].parts.iter().any(|part| !part.deltas.is_empty()));
    let reader = SnapshotReader::open(checkpoints.path_for(9)).unwrap();
    reads_back(&reader, &ops[1]);
}
