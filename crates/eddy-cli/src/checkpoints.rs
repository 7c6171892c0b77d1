//! `eddy checkpoints list`: one line per checkpoint of a job's checkpoint directory.

use std::path::Path;

use anyhow::{bail, Context};
use eddy_state::checkpoint::{CheckpointDirectory, SnapshotReader};
use eddy_state::StateError;

use crate::{table, text};

/// The table's columns; the status comes last because a damaged one's reason is long.
const HEADERS: [&str; 6] = ["ID", "KIND", "CREATED", "SIZE", "OPERATORS", "STATUS"];

/// Prints every `chk-*` checkpoint in `dir`, opening and verifying each.
pub fn list(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("{} does not exist or is not a directory; pass a job's checkpoint directory", dir.display());
    }
    let checkpoints = CheckpointDirectory::open(dir)?;
    let ids = checkpoints.ids().context("listing checkpoints")?;
    if ids.is_empty() {
        println!("no checkpoints (chk-*) in {}", dir.display());
        return Ok(());
    }
    let rows: Vec<Vec<String>> = ids.iter().map(|id| row(&checkpoints, *id)).collect();
    print!("{}", table::render(&HEADERS, &rows));
    Ok(())
}

/// One checkpoint's line.
fn row(checkpoints: &CheckpointDirectory, id: u64) -> Vec<String> {
    let path = checkpoints.path_for(id);
    // Measured before opening: sled's recovery can rewrite and grow the files.
    let size = text::size(text::disk_usage(&path));
    match SnapshotReader::open(&path) {
        Ok(reader) => {
            let metadata = reader.metadata();
            let status = match reader.verify() {
                Ok(()) => "complete".to_string(),
                Err(error) => format!("damaged: {}", text::problem(&error)),
            };
            let operators = metadata.operators.len().to_string();
            vec![
                id.to_string(),
                text::kind(metadata.header.kind).into(),
                text::rfc3339(metadata.header.created_ms),
                size,
                operators,
                status,
            ]
        }
        Err(error) => {
            let status = match error {
                StateError::IncompleteSnapshot { .. } => "incomplete (no metadata: never finished, or damaged)".into(),
                StateError::SnapshotLocked { .. } => "in use (open elsewhere)".into(),
                other => format!("damaged: {}", text::problem(&other)),
            };
            let unknown = || "-".to_string();
            vec![id.to_string(), unknown(), unknown(), size, unknown(), status]
        }
    }
}
