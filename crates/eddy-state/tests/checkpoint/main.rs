//! Checkpoint and savepoint storage: round trips against a model, list redistribution,
//! checkpoint directories, and damaged files (errors and skipped checkpoints, never panics).

mod changelog;
mod corruption;
mod directory;
mod fixture;
mod incremental;
mod lists;
mod roundtrip;
mod v1_fixture;
mod v1_model;
mod v2_fixture;
mod window_changelog;
mod writing;
