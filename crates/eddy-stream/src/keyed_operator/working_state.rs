//! Where a keyed subtask keeps its state while it runs: on the heap, or in a sled database
//! of its own under the job's state directory (`set_state_dir`).
//!
//! A sled directory is working state, not a checkpoint: it is made fresh for each subtask
//! of each attempt (a unique directory, so two operators of the same name never share one)
//! and removed when the subtask ends. What must outlive the subtask is in checkpoints.

use eddy_core::key::KeyGroupRange;
use eddy_core::{Error, Result};
use eddy_runtime::graph::BuildContext;
use eddy_state::{AnyBackend, HeapBackend, KeyedStateStore, SledBackend};

/// A subtask's sled directory; dropping it removes the directory.
pub(crate) type WorkingState = tempfile::TempDir;

/// This subtask's keyed state over the key groups it owns, and its sled directory if it
/// has one.
pub(crate) fn open(ctx: &BuildContext) -> Result<(KeyedStateStore<AnyBackend>, Option<WorkingState>)> {
    let info = &ctx.info;
    let max = ctx.config.max_parallelism;
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        Error::InvalidJob(format!("operator '{}': cannot {what} keyed state: {e}", info.name))
    };
    let (backend, dir) = match &ctx.config.state_dir {
        None => (HeapBackend::new(max).map(AnyBackend::Heap).map_err(|e| failed("open", &e))?, None),
        Some(state_dir) => {
            let name: String = info.name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
            let dir = std::fs::create_dir_all(state_dir)
                .and_then(|()| {
                    tempfile::Builder::new().prefix(&format!("{name}-{}-", info.subtask)).tempdir_in(state_dir)
                })
                .map_err(|e| failed(&format!("make a directory under {} for", state_dir.display()), &e))?;
            let sled = SledBackend::open_with_cache(dir.path(), max, ctx.config.state_cache_bytes)
                .map_err(|e| failed("open", &e))?;
            (AnyBackend::Sled(sled), Some(dir))
        }
    };
    let range = KeyGroupRange::of_subtask(info.subtask, max, info.parallelism);
    let store = KeyedStateStore::with_key_groups(backend, range).map_err(|e| failed("open", &e))?;
    Ok((store, dir))
}
