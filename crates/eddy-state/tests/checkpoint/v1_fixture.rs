//! Snapshots of format version 1 (before incremental checkpoints) still restore.
//!
//! `v1/savepoint.bin` and `v1/checkpoint.bin` hold every tree of two version-1 snapshots,
//! as `(tree name, [(key, value)])` in bincode, exactly as eddy stored them at commit
//! ce09581 when writing [`v1_model::operators`](crate::v1_model::operators) with
//! `write_snapshot`. sled's own file format is pinned (sled =0.34.7), so a test rebuilds
//! the database from those pairs and reads it with today's reader.

use std::path::Path;

use eddy_core::key::KeyGroupRange;
use eddy_state::checkpoint::{open_restore_path, CheckpointDirectory, SnapshotReader};
use eddy_state::{KeyedEntries, SnapshotKind};

use crate::v1_model;

/// A version-1 dump: every tree of the database, with its pairs.
type Dump = Vec<(String, Vec<(Vec<u8>, Vec<u8>)>)>;

/// Rebuilds the database of a snapshot (version 1 or 2) in `dir` from its dump.
pub fn rebuild(dir: &Path, dump: &[u8]) {
    let (trees, _): (Dump, usize) = bincode::serde::decode_from_slice(dump, bincode::config::standard()).unwrap();
    let db = sled::Config::new().path(dir).open().unwrap();
    for (name, pairs) in trees {
        let tree = db.open_tree(name.as_bytes()).unwrap();
        for (key, value) in pairs {
            tree.insert(key, value).unwrap();
        }
    }
    db.flush().unwrap();
}

/// The model's keyed entries of `uid` in `range`, sorted as a reader returns them.
fn expected(uid: &str, range: KeyGroupRange) -> Vec<KeyedEntries> {
    let op = v1_model::operators().into_iter().find(|op| op.uid == uid).unwrap();
    op.keyed
        .into_iter()
        .map(|state| {
            let mut entries: Vec<_> = state.entries.into_iter().filter(|e| range.contains(usize::from(e.0))).collect();
            entries.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
            KeyedEntries { state: state.state, entries }
        })
        .collect()
}

/// Checks a reader of a version-1 snapshot against the model, at parallelism 1, 2 and 3.
fn reads_back_the_model(reader: &SnapshotReader, kind: SnapshotKind) {
    let metadata = reader.metadata();
    assert_eq!(metadata.format_version, 1);
    assert_eq!(metadata.header, v1_model::header(kind));
    assert!(!metadata.is_incremental());
    assert_eq!(metadata.added_bytes(), metadata.bytes());
    reader.verify().unwrap();
    for parallelism in 1..=3 {
        for subtask in 0..parallelism {
            let range = KeyGroupRange::of_subtask(subtask, 16, parallelism);
            assert_eq!(reader.keyed("counter", range).unwrap(), expected("counter", range));
        }
    }
    let lists = &v1_model::operators()[0].lists[0];
    assert_eq!(reader.list("source", "offsets").unwrap(), lists.items);
}

#[test]
fn a_version_1_savepoint_restores() {
    let dir = tempfile::tempdir().unwrap();
    rebuild(dir.path(), include_bytes!("v1/savepoint.bin"));
    let (reader, warnings) = open_restore_path(dir.path()).unwrap();
    assert!(warnings.is_empty());
    reads_back_the_model(&reader, SnapshotKind::Savepoint);
}

#[test]
fn a_version_1_checkpoint_restores_from_its_directory_and_newer_ones_build_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    rebuild(&checkpoints.path_for(7), include_bytes!("v1/checkpoint.bin"));
    let (reader, warnings) = checkpoints.latest_valid().unwrap().unwrap();
    assert!(warnings.is_empty());
    reads_back_the_model(&reader, SnapshotKind::Checkpoint);
    // A version-1 checkpoint has no parts to take over: the next one is written in full.
    let mut header = v1_model::header(SnapshotKind::Checkpoint);
    header.id = 8;
    let base = reader.metadata().clone();
    drop(reader);
    let written =
        eddy_state::checkpoint::write_incremental(&checkpoints.path_for(8), header, &v1_model::operators(), &base)
            .unwrap();
    assert!(!written.is_incremental());
    checkpoints.retain(1).unwrap();
    assert_eq!(checkpoints.ids().unwrap(), vec![8]);
}
