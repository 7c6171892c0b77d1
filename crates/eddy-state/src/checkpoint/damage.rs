//! How a damaged snapshot is reported: the same words whether reading or verifying finds
//! the damage, always naming the operator and saying to fall back to another snapshot.

use std::path::Path;

use super::format::ChunkKey;
use super::metadata::OperatorMetadata;
use crate::error::StateError;

/// What is wrong with a keyed chunk whose frames do not parse.
pub(crate) fn broken_chunk(chunk: &ChunkKey<'_>) -> String {
    format!(
        "chunk {} of state '{}' in key group {} is not a run of whole entries",
        chunk.chunk,
        String::from_utf8_lossy(chunk.state),
        chunk.key_group
    )
}

/// The error for damaged entries of `op` in the snapshot at `path`.
pub(crate) fn damaged(path: &Path, op: &OperatorMetadata, what: &str) -> StateError {
    StateError::Checkpoint {
        path: path.to_path_buf(),
        problem: format!(
            "operator '{}' ('{}') is damaged: {what}; use an older checkpoint or another savepoint",
            op.uid, op.name
        ),
    }
}
