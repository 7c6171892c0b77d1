//! Checkpoint and savepoint storage: round trips against a model, list redistribution,
//! checkpoint directories, and damaged files (errors and skipped checkpoints, never panics).

mod corruption;
mod directory;
mod fixture;
mod lists;
mod roundtrip;
mod writing;
