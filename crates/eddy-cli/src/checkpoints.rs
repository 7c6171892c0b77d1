//! `eddy checkpoints list`: one line per checkpoint of a job's checkpoint directory: its
//! kind, whether it is full or incremental, the state bytes it adds (all of them for a full
//! snapshot, those of the changed keyed parts for an incremental checkpoint) out of the
//! state it restores, and its status.

use std::path::Path;

use anyhow::{bail, Context};
use eddy_state::checkpoint::{CheckpointDirectory, SnapshotReader};
use eddy_state::StateError;

use crate::{table, text};

/// The table's columns; the status comes last because a damaged one's reason is long.
const HEADERS: [&str; 8] = ["ID", "KIND", "CREATED", "SIZE", "TYPE", "ADDS", "OPERATORS", "STATUS"];

/// Prints every `chk-*` checkpoint in `dir`, opening and verifying each, then every savepoint
/// the job recorded there.
pub fn list(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("{} does not exist or is not a directory; pass a job's checkpoint directory", dir.display());
    }
    let checkpoints = CheckpointDirectory::open(dir)?;
    let ids = checkpoints.ids().context("listing checkpoints")?;
    let savepoints = checkpoints.savepoints().context("listing recorded savepoints")?;
    if ids.is_empty() && savepoints.is_empty() {
        println!("no checkpoints (chk-*) in {}", dir.display());
        return Ok(());
    }
    let mut rows: Vec<Vec<String>> = ids.iter().map(|id| row(*id, &checkpoints.path_for(*id), None)).collect();
    rows.extend(savepoints.iter().map(|(id, path)| row(*id, path, Some(path))));
    print!("{}", table::render(&HEADERS, &rows));
    Ok(())
}

/// One snapshot's line; `recorded` is the path of a savepoint the job recorded.
fn row(id: u64, path: &Path, recorded: Option<&Path>) -> Vec<String> {
    // Measured before opening: sled's recovery can rewrite and grow the files.
    let size = text::size(text::disk_usage(path));
    let at = recorded.map(|path| format!(" (recorded savepoint at {})", path.display())).unwrap_or_default();
    match SnapshotReader::open(path) {
        Ok(reader) => {
            let metadata = reader.metadata();
            let status = match reader.verify() {
                Ok(()) => format!("complete{at}"),
                Err(error) => format!("{}{at}", text::status(&error)),
            };
            let operators = metadata.operators.len().to_string();
            let kind = if metadata.is_incremental() { "incremental" } else { "full" };
            let adds = format!("{} of {}", text::size(metadata.added_bytes()), text::size(metadata.bytes()));
            vec![
                id.to_string(),
                text::kind(metadata.header.kind).into(),
                text::rfc3339(metadata.header.created_ms),
                size,
                kind.into(),
                adds,
                operators,
                status,
            ]
        }
        Err(error) => {
            let status = match error {
                StateError::IncompleteSnapshot { .. } => "incomplete (no metadata: never finished, or damaged)".into(),
                StateError::SnapshotLocked { .. } => "in use (open elsewhere)".into(),
                other => text::status(&other),
            };
            let unknown = || "-".to_string();
            vec![id.to_string(), unknown(), unknown(), size, unknown(), unknown(), unknown(), format!("{status}{at}")]
        }
    }
}
