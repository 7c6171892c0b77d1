//! Damaged and incomplete snapshots are skipped with a warning or refused with a clear
//! error; none is loaded silently and none makes anything panic.

use eddy_state::checkpoint::{open_restore_path, CheckpointDirectory, SnapshotReader};
use eddy_state::StateError;

use eddy_core::key::KeyGroupRange;

use crate::fixture::{db_file, garble, open_sled, remove_metadata, truncate, used_len, write_small};

/// A checkpoint directory holding complete checkpoints 1, 2 and 3.
fn three_checkpoints() -> (tempfile::TempDir, CheckpointDirectory) {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = CheckpointDirectory::open(dir.path()).unwrap();
    for id in 1..=3 {
        write_small(&checkpoints.path_for(id), id);
    }
    (dir, checkpoints)
}

/// Checks that recovery skips checkpoint 3 with a warning naming it, or (when the damage
/// left its entries intact, as verification proved) still uses it.
fn recovery_skips_checkpoint_3(checkpoints: &CheckpointDirectory) -> Vec<String> {
    let (reader, warnings) = checkpoints.latest_valid().unwrap().expect("checkpoints 1 and 2 are intact");
    assert_eq!(reader.metadata().header.id, 2, "warnings: {warnings:?}");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(&checkpoints.path_for(3).display().to_string()), "{}", warnings[0]);
    warnings
}

#[test]
fn a_truncated_newest_checkpoint_is_skipped_with_a_warning() {
    let (_dir, checkpoints) = three_checkpoints();
    let db = db_file(&checkpoints.path_for(3));
    truncate(&db, used_len(&db) / 2);
    recovery_skips_checkpoint_3(&checkpoints);
}

#[test]
fn garbled_bytes_in_the_newest_checkpoint_are_skipped_or_refused() {
    // Several places in the data, as different bytes hurt sled differently.
    for fraction in [0.2, 0.5, 0.8, 0.95] {
        let (_dir, checkpoints) = three_checkpoints();
        let db = db_file(&checkpoints.path_for(3));
        let at = (used_len(&db) as f64 * fraction) as usize;
        garble(&db, at, 64.min(used_len(&db) - at));
        match checkpoints.latest_valid() {
            // The damage is found: checkpoint 3 is skipped, naming it.
            Ok(Some((reader, warnings))) if reader.metadata().header.id == 2 => {
                assert!(warnings[0].contains(&checkpoints.path_for(3).display().to_string()), "{warnings:?}");
            }
            // sled's log recovery may drop a torn tail that held no data we wrote last; then
            // checkpoint 3 verified, so its entries are exactly what was written.
            Ok(Some((reader, warnings))) => {
                assert_eq!(reader.metadata().header.id, 3);
                assert!(warnings.is_empty());
            }
            other => panic!("at {fraction}: expected a usable checkpoint, got {other:?}"),
        }
    }
}

#[test]
fn a_checkpoint_without_metadata_is_skipped_as_incomplete() {
    let (_dir, checkpoints) = three_checkpoints();
    remove_metadata(&checkpoints.path_for(3));
    let warnings = recovery_skips_checkpoint_3(&checkpoints);
    assert!(warnings[0].contains("incomplete"), "{}", warnings[0]);
    let err = SnapshotReader::open(checkpoints.path_for(3)).unwrap_err();
    assert!(matches!(err, StateError::IncompleteSnapshot { .. }), "{err}");
}

#[test]
fn when_no_checkpoint_is_usable_the_error_names_every_problem() {
    let (_dir, checkpoints) = three_checkpoints();
    for id in 1..=3 {
        remove_metadata(&checkpoints.path_for(id));
    }
    let err = checkpoints.latest_valid().unwrap_err().to_string();
    assert!(err.contains("none of its 3 snapshots (checkpoints and recorded savepoints) can be used"), "{err}");
    for id in 1..=3 {
        assert!(err.contains(&checkpoints.path_for(id).display().to_string()), "{err}");
    }
}

#[test]
fn a_garbled_savepoint_is_a_clear_error() {
    for fraction in [0.1, 0.3, 0.5, 0.7, 0.9] {
        let dir = tempfile::tempdir().unwrap();
        write_small(dir.path(), 1);
        let db = db_file(dir.path());
        let used = used_len(&db);
        let at = (used as f64 * fraction) as usize;
        garble(&db, at, 256.min(used - at));
        if let Err(err) = open_restore_path(dir.path()) {
            let message = err.to_string();
            assert!(message.contains(&dir.path().display().to_string()), "{message}");
        }
        // An Ok means sled's recovery or our verification found the entries intact.
    }
}

#[test]
fn a_savepoint_with_its_data_cut_off_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_small(dir.path(), 1);
    let db = db_file(dir.path());
    truncate(&db, used_len(&db) / 3);
    let err = open_restore_path(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
}

#[test]
fn a_directory_without_a_database_is_not_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    let err = SnapshotReader::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("no snapshot database"), "{err}");
    assert!(!dir.path().join("db").exists(), "opening must not create a database");
    let err = SnapshotReader::open(dir.path().join("missing")).unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn an_empty_database_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_small(dir.path(), 1);
    truncate(&db_file(dir.path()), 0);
    let err = SnapshotReader::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("'db' is empty"), "{err}");
}

#[test]
fn a_foreign_sled_database_or_another_version_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    write_small(dir.path(), 1);
    let db = sled::Config::new().path(dir.path()).open().unwrap();
    let (mut metadata, _): (eddy_state::SnapshotMetadata, usize) =
        bincode::serde::decode_from_slice(&db.get("metadata").unwrap().unwrap(), bincode::config::standard()).unwrap();
    metadata.format_version = eddy_state::checkpoint::FORMAT_VERSION + 1;
    db.insert("metadata", bincode::serde::encode_to_vec(&metadata, bincode::config::standard()).unwrap()).unwrap();
    db.flush().unwrap();
    drop(db);
    let err = SnapshotReader::open(dir.path()).unwrap_err().to_string();
    let newer = format!("format version {}", eddy_state::checkpoint::FORMAT_VERSION + 1);
    assert!(err.contains(&newer), "{err}");

    let other = tempfile::tempdir().unwrap();
    let db = sled::Config::new().path(other.path()).open().unwrap();
    db.insert("metadata", &b"\x03abc\x01"[..]).unwrap();
    db.flush().unwrap();
    drop(db);
    let err = SnapshotReader::open(other.path()).unwrap_err().to_string();
    assert!(err.contains("not an eddy snapshot"), "{err}");
}

#[test]
fn changed_entries_fail_verification_naming_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    write_small(dir.path(), 1);
    {
        let db = open_sled(dir.path());
        let keyed = db.open_tree("keyed").unwrap();
        let (key, value) = keyed.iter().next().unwrap().unwrap();
        let mut bytes = value.to_vec();
        // The chunk's last byte is its last value's, so its framing still parses.
        *bytes.last_mut().unwrap() ^= 1;
        keyed.insert(key, bytes).unwrap();
        db.flush().unwrap();
    }
    let reader = SnapshotReader::open(dir.path()).unwrap();
    let err = reader.verify().unwrap_err().to_string();
    // "source" sorts first: uids are length-prefixed.
    assert!(err.contains("operator 'source'") && err.contains("checksum"), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
}

/// Replaces the first keyed chunk (of operator "source", which sorts first: uids are
/// length-prefixed) with what `damage` makes of it.
fn damage_first_chunk(dir: &std::path::Path, damage: impl FnOnce(&mut Vec<u8>)) {
    let db = open_sled(dir);
    let keyed = db.open_tree("keyed").unwrap();
    let (key, value) = keyed.iter().next().unwrap().unwrap();
    let mut bytes = value.to_vec();
    damage(&mut bytes);
    keyed.insert(key, bytes).unwrap();
    db.flush().unwrap();
}

/// A change to a stored chunk's bytes.
type Damage = fn(&mut Vec<u8>);

#[test]
fn a_chunk_with_broken_framing_is_damaged() {
    // Each chunk of the small snapshot starts `0 0 0 2 │ tag i │ 0 0 0 3 │ i i i`.
    let damages: [(&str, Damage); 5] = [
        ("cut short", |chunk| chunk.truncate(chunk.len() - 1)),
        ("a key length past the end", |chunk| chunk[3] = 200),
        ("a value length past the end", |chunk| chunk[9] = 200),
        ("a byte too many", |chunk| chunk.push(0)),
        ("empty", Vec::clear),
    ];
    for (what, damage) in damages {
        let dir = tempfile::tempdir().unwrap();
        write_small(dir.path(), 1);
        damage_first_chunk(dir.path(), damage);
        let reader = SnapshotReader::open(dir.path()).unwrap();
        let errors = [
            reader.verify().unwrap_err().to_string(),
            reader.keyed("source", KeyGroupRange { start: 0, end: 15 }).unwrap_err().to_string(),
        ];
        for err in errors {
            assert!(err.contains("operator 'source'") && err.contains("is damaged"), "{what}: {err}");
            assert!(
                err.contains("chunk 0 of state 'count' in key group 0 is not a run of whole entries"),
                "{what}: {err}"
            );
            assert!(err.contains(&dir.path().display().to_string()), "{what}: {err}");
        }
        // Key groups without the damaged chunk still read.
        assert_eq!(reader.keyed("source", KeyGroupRange { start: 1, end: 15 }).unwrap()[0].entries.len(), 37);
        drop(reader);
        let err = open_restore_path(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is damaged"), "{what}: {err}");
    }
}

#[test]
fn a_missing_chunk_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let op = crate::fixture::chunky_operator();
    eddy_state::checkpoint::write_snapshot(dir.path(), crate::fixture::header(1, 4), &[op]).unwrap();
    {
        let db = open_sled(dir.path());
        let keyed = db.open_tree("keyed").unwrap();
        // The second chunk of the first state and key group.
        let (key, _) = keyed.iter().nth(1).unwrap().unwrap();
        keyed.remove(key).unwrap();
        db.flush().unwrap();
    }
    let reader = SnapshotReader::open(dir.path()).unwrap();
    let err = reader.verify().unwrap_err().to_string();
    assert!(
        err.contains("operator 'chunky'") && err.contains("chunk 1 of state 'count' in key group 0 is missing"),
        "{err}"
    );
}

/// Copies the files of a snapshot directory (sled's `blobs` folder is empty here).
fn copy_snapshot(from: &std::path::Path, to: &std::path::Path) -> Vec<String> {
    std::fs::create_dir_all(to).unwrap();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            files.push(entry.file_name().into_string().unwrap());
        }
    }
    files.sort();
    files
}

proptest::proptest! {
    #![proptest_config(crate::fixture::few_cases(24))]

    /// Truncating or overwriting any of sled's files anywhere gives a usable snapshot whose
    /// entries verified, or an error naming the snapshot; never a panic.
    #[test]
    fn random_damage_to_any_file_is_an_error_or_harmless(
        file in proptest::prelude::any::<proptest::sample::Index>(),
        at in proptest::prelude::any::<proptest::sample::Index>(),
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..64),
        cut in proptest::prelude::any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join("original");
        write_small(&original, 1);
        // Reopened once, as a savepoint that was inspected: sled then also keeps a `snap.*` file.
        drop(SnapshotReader::open(&original).unwrap());
        let damaged = dir.path().join("damaged");
        let files = copy_snapshot(&original, &damaged);
        let path = damaged.join(file.get(&files));
        let mut content = std::fs::read(&path).unwrap();
        if !content.is_empty() {
            let at = at.index(content.len());
            if cut {
                content.truncate(at);
            } else {
                let end = (at + bytes.len()).min(content.len());
                content[at..end].copy_from_slice(&bytes[..end - at]);
            }
            std::fs::write(&path, content).unwrap();
        }
        match open_restore_path(&damaged) {
            Ok((reader, _)) => proptest::prop_assert_eq!(reader.metadata().entries(), 86),
            Err(err) => {
                let message = err.to_string();
                proptest::prop_assert!(message.contains(&damaged.display().to_string()), "{}", message);
            }
        }
    }
}
