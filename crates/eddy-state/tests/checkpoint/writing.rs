//! `write_snapshot` refuses bad input and never overwrites, leaving nothing half written.

use eddy_state::checkpoint::{write_snapshot, SnapshotReader};
use eddy_state::{KeyedEntries, OperatorSnapshot, StateError};

use crate::fixture::{header, small_operator};

/// Writes `ops` into a fresh directory and returns the error message.
fn refused(ops: &[OperatorSnapshot], max_parallelism: usize) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot");
    let err = write_snapshot(&path, header(1, max_parallelism), ops).unwrap_err();
    assert!(!path.exists(), "a refused snapshot leaves no directory");
    err.to_string()
}

#[test]
fn a_non_empty_directory_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    crate::fixture::write_small(dir.path(), 1);
    let err = write_snapshot(dir.path(), header(2, 16), &[]).unwrap_err();
    assert!(matches!(err, StateError::Checkpoint { .. }));
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(SnapshotReader::open(dir.path()).unwrap().metadata().header.id, 1);
}

#[test]
fn an_empty_existing_directory_is_used() {
    let dir = tempfile::tempdir().unwrap();
    write_snapshot(dir.path(), header(2, 16), &[]).unwrap();
    let reader = SnapshotReader::open(dir.path()).unwrap();
    reader.verify().unwrap();
    assert!(reader.metadata().operators.is_empty());
}

#[test]
fn contradictory_operators_are_refused_before_writing() {
    let op = small_operator("op", 1);
    let err = refused(&[op.clone(), op.clone()], 16);
    assert!(err.contains("operator 'op'") && err.contains("unique uid"), "{err}");

    let err = refused(std::slice::from_ref(&op), 8);
    assert!(err.contains("key group 8") && err.contains("only 8 key groups"), "{err}");

    let mut twice = op.clone();
    let first = twice.keyed[0].entries[0].clone();
    twice.keyed[0].entries.push(first);
    let err = refused(&[twice], 16);
    assert!(err.contains("state 'count' has the same key twice"), "{err}");

    let mut two_states = op.clone();
    two_states.keyed.push(KeyedEntries { state: "count".into(), entries: vec![] });
    let err = refused(&[two_states], 16);
    assert!(err.contains("two keyed states are named 'count'"), "{err}");

    let err = refused(&[op], 0);
    assert!(err.contains("max_parallelism 0"), "{err}");
}
