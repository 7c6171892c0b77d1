//! Checkpoint directories: ids, the newest valid checkpoint, retention, restore paths.

use eddy_state::checkpoint::{open_restore_path, CheckpointDirectory};

use crate::fixture::{remove_metadata, write_small};

/// A checkpoint directory with complete checkpoints `ids`.
fn with_checkpoints(ids: &[u64]) -> (tempfile::TempDir, CheckpointDirectory) {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path().join("checkpoints")).unwrap();
    for id in ids {
        write_small(&checkpoints.path_for(*id), *id);
    }
    (dir, checkpoints)
}

#[test]
fn ids_list_checkpoint_directories_in_order() {
    let (_dir, checkpoints) = with_checkpoints(&[3, 12, 1]);
    std::fs::create_dir(checkpoints.path().join("chk-7")).unwrap();
    std::fs::create_dir(checkpoints.path().join("savepoint-1")).unwrap();
    std::fs::write(checkpoints.path().join("chk-0000000099"), b"a file").unwrap();
    assert_eq!(checkpoints.ids().unwrap(), vec![1, 3, 12]);
    assert!(checkpoints.path_for(12).ends_with("chk-0000000012"));
}

#[test]
fn latest_valid_is_the_newest_checkpoint() {
    let (_dir, checkpoints) = with_checkpoints(&[1, 2, 3]);
    let (reader, warnings) = checkpoints.latest_valid().unwrap().unwrap();
    assert_eq!(reader.metadata().header.id, 3);
    assert_eq!(reader.path(), checkpoints.path_for(3));
    assert!(warnings.is_empty());
}

#[test]
fn no_checkpoints_is_none() {
    let (_dir, checkpoints) = with_checkpoints(&[]);
    assert!(checkpoints.latest_valid().unwrap().is_none());
    let err = open_restore_path(checkpoints.path()).unwrap_err().to_string();
    assert!(err.contains("neither a snapshot nor a checkpoint directory"), "{err}");
}

#[test]
fn retain_keeps_the_newest_complete_ones_and_newer_incomplete_ones() {
    let (_dir, checkpoints) = with_checkpoints(&[1, 2, 3, 4, 5, 6]);
    remove_metadata(&checkpoints.path_for(2));
    remove_metadata(&checkpoints.path_for(4));
    remove_metadata(&checkpoints.path_for(6));
    checkpoints.retain(2).unwrap();
    // 6 may still be being written; 5 and 3 are the newest complete; 4 is an older incomplete.
    assert_eq!(checkpoints.ids().unwrap(), vec![3, 5, 6]);
    checkpoints.retain(0).unwrap();
    assert_eq!(checkpoints.ids().unwrap(), vec![5, 6], "the newest complete one is never deleted");
}

#[test]
fn retain_deletes_nothing_without_a_complete_checkpoint() {
    let (_dir, checkpoints) = with_checkpoints(&[1, 2]);
    remove_metadata(&checkpoints.path_for(1));
    remove_metadata(&checkpoints.path_for(2));
    checkpoints.retain(1).unwrap();
    assert_eq!(checkpoints.ids().unwrap(), vec![1, 2]);
}

#[test]
fn retain_keeps_a_checkpoint_that_is_open() {
    let (_dir, checkpoints) = with_checkpoints(&[1, 2, 3]);
    let (reader, _) = eddy_state::checkpoint::open_restore_path(checkpoints.path_for(1)).unwrap();
    checkpoints.retain(1).unwrap();
    assert_eq!(checkpoints.ids().unwrap(), vec![1, 3]);
    drop(reader);
    checkpoints.retain(1).unwrap();
    assert_eq!(checkpoints.ids().unwrap(), vec![3]);
}

#[test]
fn a_restore_path_is_a_snapshot_or_a_checkpoint_directory() {
    let (_dir, checkpoints) = with_checkpoints(&[1, 2]);
    let (reader, warnings) = open_restore_path(checkpoints.path_for(1)).unwrap();
    assert_eq!((reader.metadata().header.id, warnings.len()), (1, 0));
    drop(reader);
    let (reader, _) = open_restore_path(checkpoints.path()).unwrap();
    assert_eq!(reader.metadata().header.id, 2);
    let err = open_restore_path(checkpoints.path().join("missing")).unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn a_recorded_savepoint_newer_than_every_checkpoint_is_the_one_restored() {
    let (dir, checkpoints) = with_checkpoints(&[1, 2]);
    let savepoint = dir.path().join("savepoints/sp-3");
    write_small(&savepoint, 3);
    checkpoints.record_savepoint(3, &savepoint).unwrap();
    assert_eq!(checkpoints.newest_id().unwrap(), 3);
    assert_eq!(checkpoints.savepoints().unwrap(), vec![(3, savepoint.canonicalize().unwrap())]);
    let (reader, warnings) = open_restore_path(checkpoints.path()).unwrap();
    assert_eq!((reader.metadata().header.id, warnings.len()), (3, 0));
    drop(reader);
    // A later checkpoint is newer than the savepoint again.
    write_small(&checkpoints.path_for(4), 4);
    assert_eq!(checkpoints.latest_valid().unwrap().unwrap().0.metadata().header.id, 4);
}

#[test]
fn a_recorded_savepoint_that_is_gone_is_skipped_with_a_warning_naming_it() {
    let (dir, checkpoints) = with_checkpoints(&[1, 2]);
    let savepoint = dir.path().join("sp-5");
    write_small(&savepoint, 5);
    checkpoints.record_savepoint(5, &savepoint).unwrap();
    std::fs::remove_dir_all(&savepoint).unwrap();
    let (reader, warnings) = checkpoints.latest_valid().unwrap().unwrap();
    assert_eq!(reader.metadata().header.id, 2);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("skipped savepoint 5 at ") && warnings[0].contains("sp-5"), "{warnings:?}");
}

#[test]
fn a_recorded_savepoint_replaced_by_another_snapshot_is_skipped() {
    let (dir, checkpoints) = with_checkpoints(&[1]);
    let savepoint = dir.path().join("sp");
    write_small(&savepoint, 9);
    checkpoints.record_savepoint(4, &savepoint).unwrap();
    let (reader, warnings) = checkpoints.latest_valid().unwrap().unwrap();
    assert_eq!(reader.metadata().header.id, 1);
    assert!(warnings[0].contains("holds snapshot 9, not savepoint 4"), "{warnings:?}");
}

#[test]
fn retain_forgets_savepoints_older_than_every_checkpoint_kept() {
    let (dir, checkpoints) = with_checkpoints(&[1, 3, 5]);
    for id in [2, 4] {
        let savepoint = dir.path().join(format!("sp-{id}"));
        write_small(&savepoint, id);
        checkpoints.record_savepoint(id, &savepoint).unwrap();
    }
    checkpoints.retain(2).unwrap();
    assert_eq!(checkpoints.ids().unwrap(), vec![3, 5]);
    let kept: Vec<u64> = checkpoints.savepoints().unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(kept, vec![4]);
    assert!(dir.path().join("sp-2").is_dir(), "the savepoint itself is the user's: never deleted");
}

#[test]
fn superseding_sets_newer_snapshots_aside_and_deletes_incomplete_ones() {
    let (dir, checkpoints) = with_checkpoints(&[1, 2, 3]);
    std::fs::create_dir(checkpoints.path_for(5)).unwrap(); // created, never written
    let savepoint = dir.path().join("sp-4");
    write_small(&savepoint, 4);
    checkpoints.record_savepoint(4, &savepoint).unwrap();
    let moved = checkpoints.supersede_after(1).unwrap();
    assert_eq!(moved.len(), 4, "{moved:?}");
    assert_eq!(checkpoints.ids().unwrap(), vec![1]);
    assert!(checkpoints.savepoints().unwrap().is_empty());
    let aside = checkpoints.path().join(eddy_state::checkpoint::SUPERSEDED_DIR);
    let mut names: Vec<String> =
        std::fs::read_dir(&aside).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, vec!["chk-0000000002", "chk-0000000003", "savepoint-0000000004"]);
    assert!(savepoint.is_dir(), "the savepoint itself is the user's");
    let (reader, warnings) = checkpoints.latest_valid().unwrap().unwrap();
    assert_eq!((reader.metadata().header.id, warnings.len()), (1, 0));
    drop(reader);
    // A snapshot with a name already set aside keeps both.
    write_small(&checkpoints.path_for(2), 2);
    checkpoints.supersede_after(1).unwrap();
    assert_eq!(std::fs::read_dir(&aside).unwrap().count(), 4);
}
