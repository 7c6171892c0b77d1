//! `eddy savepoint info` and `eddy savepoint validate`.

use std::path::Path;

use eddy_state::checkpoint::{is_snapshot_dir, open_restore_path, OperatorMetadata, SnapshotReader};

use crate::{table, text};

/// Prints a snapshot's header and, per operator, its states.
pub fn info(path: &Path) -> anyhow::Result<()> {
    // A snapshot itself is only opened (validate verifies); a checkpoint directory's newest
    // checkpoint has to verify to be the one chosen.
    let reader = if is_snapshot_dir(path) { SnapshotReader::open(path)? } else { open_newest(path)? };
    let metadata = reader.metadata();
    let header = &metadata.header;
    let fields = [
        ("path", reader.path().display().to_string()),
        ("job", header.job.clone()),
        ("id", header.id.to_string()),
        ("kind", text::kind(header.kind).to_string()),
        ("format version", metadata.format_version.to_string()),
        ("max parallelism", header.max_parallelism.to_string()),
        ("created", text::rfc3339(header.created_ms)),
        ("finished", if header.finished { "yes" } else { "no" }.to_string()),
        ("operators", metadata.operators.len().to_string()),
        ("entries", metadata.entries().to_string()),
    ];
    for (name, value) in fields {
        println!("{:<16} {value}", format!("{name}:"));
    }
    for op in &metadata.operators {
        println!();
        print!("{}", operator(op));
    }
    Ok(())
}

/// Verifies a snapshot (or a checkpoint directory's newest valid checkpoint).
pub fn validate(path: &Path) -> anyhow::Result<()> {
    let reader = if is_snapshot_dir(path) { open_verified(path)? } else { open_newest(path)? };
    let metadata = reader.metadata();
    println!("valid: {} operators, {} entries", metadata.operators.len(), metadata.entries());
    Ok(())
}

/// Opens and verifies a snapshot.
fn open_verified(path: &Path) -> anyhow::Result<SnapshotReader> {
    let (reader, _) = open_restore_path(path)?;
    Ok(reader)
}

/// Opens a checkpoint directory's newest valid checkpoint, saying which, and which newer
/// ones were skipped.
fn open_newest(path: &Path) -> anyhow::Result<SnapshotReader> {
    let (reader, warnings) = open_restore_path(path)?;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    eprintln!("using the newest valid snapshot: {}", reader.path().display());
    Ok(reader)
}

/// One operator's heading and its states' table.
fn operator(op: &OperatorMetadata) -> String {
    let heading = format!("operator {} ({}), parallelism {}\n", op.uid, op.name, op.parallelism);
    if op.states.is_empty() {
        return heading + "  no state\n";
    }
    let rows: Vec<Vec<String>> = op
        .states
        .iter()
        .map(|state| {
            vec![
                state.name.clone(),
                text::state_kind(&state.kind),
                text::key_groups(&state.kind),
                state.entries.to_string(),
                state.bytes.to_string(),
            ]
        })
        .collect();
    let states = table::render(&["STATE", "KIND", "KEY GROUPS", "ENTRIES", "BYTES"], &rows);
    heading + &states.lines().map(|line| format!("  {line}\n")).collect::<String>()
}
