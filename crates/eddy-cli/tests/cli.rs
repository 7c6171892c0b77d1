//! The `eddy` binary against snapshots written by `eddy_state::checkpoint::write_snapshot`.

use std::path::Path;
use std::process::{Command, Output};

use eddy_state::checkpoint::{write_snapshot, CheckpointDirectory};
use eddy_state::{KeyedEntries, ListEntries, OperatorSnapshot, Redistribution, SnapshotHeader, SnapshotKind};

/// Runs `eddy` with `args`.
fn eddy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eddy")).args(args).output().unwrap()
}

/// stdout and stderr as text.
fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A header for job "clicks".
fn header(id: u64, kind: SnapshotKind) -> SnapshotHeader {
    SnapshotHeader {
        job: "clicks".into(),
        id,
        kind,
        created_ms: 1_700_000_000_123,
        max_parallelism: 128,
        finished: false,
    }
}

/// A counter with 30 keyed entries in "click-count" and a source with 3 offsets.
fn operators() -> Vec<OperatorSnapshot> {
    let entries = (0..30u16).map(|i| (i * 4, format!("user-{i}").into_bytes(), vec![1, 2, 3])).collect();
    let counter = OperatorSnapshot {
        uid: "click-counter".into(),
        name: "Count clicks".into(),
        parallelism: 4,
        keyed: vec![KeyedEntries { state: "click-count".into(), entries }],
        lists: vec![],
    };
    let source = OperatorSnapshot {
        uid: "kafka-source".into(),
        name: "Clicks".into(),
        parallelism: 2,
        keyed: vec![],
        lists: vec![ListEntries {
            name: "partition-offsets".into(),
            redistribution: Redistribution::Split,
            items: vec![vec![b"p0@17".to_vec(), b"p2@4".to_vec()], vec![b"p1@9".to_vec()]],
        }],
    };
    vec![counter, source]
}

/// Writes the test snapshot into `dir`.
fn write(dir: &Path, id: u64, kind: SnapshotKind) {
    write_snapshot(dir, header(id, kind), &operators()).unwrap();
}

/// Damages a snapshot's sled data file in the middle of what was written.
fn garble(dir: &Path) {
    let db = dir.join("db");
    let mut bytes = std::fs::read(&db).unwrap();
    let used = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    for byte in &mut bytes[used / 2..(used / 2 + 64).min(used)] {
        *byte ^= 0x5A;
    }
    std::fs::write(&db, bytes).unwrap();
}

/// No panic text, from us or from sled.
fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
}

#[test]
fn savepoint_info_shows_operators_states_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 42, SnapshotKind::Savepoint);
    let output = eddy(&["savepoint", "info", dir.path().to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    for expected in [
        "clicks",
        "42",
        "savepoint",
        "format version:  3",
        "max parallelism: 128",
        "2023-11-14T22:13:20.123Z",
        "operator click-counter (Count clicks), parallelism 4",
        "click-count",
        "keyed",
        "0..=116 (30)",
        "operator kafka-source (Clicks), parallelism 2",
        "partition-offsets",
        "list (split)",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    let count_line = stdout.lines().find(|l| l.trim_start().starts_with("click-count")).unwrap();
    assert!(count_line.split_whitespace().any(|w| w == "30"), "{count_line}");
    let offsets_line = stdout.lines().find(|l| l.trim_start().starts_with("partition-offsets")).unwrap();
    assert!(offsets_line.split_whitespace().any(|w| w == "3"), "{offsets_line}");
}

#[test]
fn savepoint_info_of_a_checkpoint_directory_names_the_checkpoint_used() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    write(&checkpoints.path_for(1), 1, SnapshotKind::Checkpoint);
    write(&checkpoints.path_for(2), 2, SnapshotKind::Checkpoint);
    garble(&checkpoints.path_for(2));
    let output = eddy(&["savepoint", "info", dir.path().to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("chk-0000000001") && stderr.contains("using"), "{stderr}");
    assert!(stderr.contains("warning: skipped checkpoint") && stderr.contains("chk-0000000002"), "{stderr}");
    assert!(stdout.contains("click-counter"), "{stdout}");
    assert_no_panic(&stderr);
}

#[test]
fn savepoint_validate_accepts_a_good_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1, SnapshotKind::Savepoint);
    let output = eddy(&["savepoint", "validate", dir.path().to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "valid: 2 operators, 33 entries");
}

#[test]
fn savepoint_validate_rejects_a_garbled_copy_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 1, SnapshotKind::Savepoint);
    garble(dir.path());
    let output = eddy(&["savepoint", "validate", dir.path().to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains(&dir.path().display().to_string()), "{stderr}");
    assert!(!stdout.contains("valid:"), "{stdout}");
    assert_no_panic(&stderr);
}

#[test]
fn savepoint_validate_rejects_a_directory_that_is_not_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let output = eddy(&["savepoint", "validate", dir.path().join("nothing").to_str().unwrap()]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn checkpoints_list_shows_each_checkpoint_and_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    for id in 1..=3 {
        write(&checkpoints.path_for(id), id, SnapshotKind::Checkpoint);
    }
    garble(&checkpoints.path_for(3));
    // A checkpoint whose writer never got to write anything.
    std::fs::create_dir(checkpoints.path_for(4)).unwrap();
    let output = eddy(&["checkpoints", "list", dir.path().to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("STATUS"), "{stdout}");
    for line in &lines[1..3] {
        assert!(line.contains("complete") && line.contains("checkpoint"), "{line}");
        assert!(line.contains("2023-11-14T22:13:20.123Z") && line.contains("KiB"), "{line}");
    }
    assert!(lines[3].starts_with('3') && (lines[3].contains("incomplete") || lines[3].contains("damaged")), "{stdout}");
    assert!(lines[4].starts_with('4') && lines[4].contains("damaged: it holds no snapshot database"), "{stdout}");
    assert_no_panic(&stderr);
}

#[test]
fn checkpoints_list_shows_recorded_savepoints_after_the_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path().join("checkpoints")).unwrap();
    write(&checkpoints.path_for(1), 1, SnapshotKind::Checkpoint);
    let (kept, gone) = (dir.path().join("sp-2"), dir.path().join("sp-3"));
    write(&kept, 2, SnapshotKind::Savepoint);
    write(&gone, 3, SnapshotKind::Savepoint);
    checkpoints.record_savepoint(2, &kept).unwrap();
    checkpoints.record_savepoint(3, &gone).unwrap();
    std::fs::remove_dir_all(&gone).unwrap();
    let output = eddy(&["checkpoints", "list", checkpoints.path().to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[2].starts_with('2') && lines[2].contains("savepoint") && lines[2].contains("complete"), "{stdout}");
    assert!(lines[2].contains("recorded savepoint at") && lines[2].contains("sp-2"), "{stdout}");
    assert!(lines[3].starts_with('3') && lines[3].contains("sp-3") && lines[3].contains("does not exist"), "{stdout}");
    // A restore from the directory takes the newest usable snapshot: the savepoint.
    let output = eddy(&["savepoint", "info", checkpoints.path().to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert!(
        stdout.contains("kind:            savepoint") && stderr.contains("skipped savepoint 3"),
        "{stdout}{stderr}"
    );
}

#[test]
fn checkpoints_list_shows_full_and_incremental_checkpoints_and_the_bytes_each_adds() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    let base = write_snapshot(&checkpoints.path_for(1), header(1, SnapshotKind::Checkpoint), &operators()).unwrap();
    // Checkpoint 2 changes one of the counter's 30 key groups ("user-0": 6 + 7 bytes); the
    // source's offsets (13 bytes) are always written.
    let mut changed = operators();
    changed[0].keyed[0].entries[0].2 = b"changed".to_vec();
    let incremental = eddy_state::checkpoint::write_incremental(
        &checkpoints.path_for(2),
        header(2, SnapshotKind::Checkpoint),
        &changed,
        &base,
    )
    .unwrap();
    assert_eq!(incremental.added_bytes(), 6 + 7 + 13);
    let output = eddy(&["checkpoints", "list", dir.path().to_str().unwrap()]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].contains("TYPE") && lines[0].contains("ADDS"), "{stdout}");
    assert!(
        lines[1].contains(" full ") && lines[1].contains("303 B of 303 B") && lines[1].contains("complete"),
        "{stdout}"
    );
    assert!(
        lines[2].contains(" incremental ") && lines[2].contains("26 B of 307 B") && lines[2].contains("complete"),
        "{stdout}"
    );
    // Checkpoint 3 from a changelog: one entry of a key group not due for materialisation
    // changed ("more": 4 bytes), so it adds a delta (an 8-byte frame, the key, a tag byte
    // and the value) and the offsets.
    let entries = &changed[0].keyed[0].entries;
    let (key_group, key, old) = entries
        .iter()
        .find(|(kg, _, _)| (3 + u64::from(*kg)) % eddy_state::checkpoint::MATERIALIZE_AFTER != 0)
        .unwrap()
        .clone();
    let change = eddy_state::KeyedChange {
        key_group,
        key: key.clone(),
        value: Some(b"more".to_vec()),
        before: Some(old.len() as u32),
    };
    let changes = eddy_state::OperatorChanges {
        uid: changed[0].uid.clone(),
        changes: vec![eddy_state::StateChanges { state: changed[0].keyed[0].state.clone(), changes: vec![change] }],
        ..Default::default()
    };
    let mut given = changed.clone();
    given[0].keyed.clear();
    let third = eddy_state::checkpoint::write_changelog(
        &checkpoints.path_for(3),
        header(3, SnapshotKind::Checkpoint),
        &given,
        &[changes],
        &incremental,
    )
    .unwrap();
    assert_eq!(third.added_bytes(), (8 + key.len() + 1 + 4 + 13) as u64);
    let output = eddy(&["checkpoints", "list", dir.path().to_str().unwrap()]);
    let (stdout, _) = text(&output);
    let adds = format!("{} B of {} B", third.added_bytes(), third.bytes());
    assert!(
        stdout.lines().nth(3).is_some_and(|line| line.contains(" incremental ") && line.contains(&adds)),
        "{stdout}"
    );
}

#[test]
fn checkpoints_list_of_a_missing_directory_fails() {
    let dir = tempfile::tempdir().unwrap();
    let output = eddy(&["checkpoints", "list", dir.path().join("missing").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(!dir.path().join("missing").exists(), "listing must not create the directory");
}
