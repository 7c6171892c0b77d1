//! TTL cleanup: removing expired values that nobody reads any more.
//!
//! Reads already drop what they find expired. Two more passes catch keys that are never read
//! again:
//!
//! - incremental (Flink's `cleanupIncrementally`): every access of a TTL state also checks
//!   the next `cleanup_size` entries of that state, walking its key groups round robin
//!   with a cursor, so cleanup work is spread thinly over normal processing;
//! - full, per key group, before a snapshot ([`KeyedStateStore::cleanup_expired`]), so
//!   checkpoints never carry expired state.
//!
//! Cleanup never refreshes timestamps and leaves damaged bytes alone (the read that finds
//! them reports the error).
//!
//! [`KeyedStateStore::cleanup_expired`]: crate::KeyedStateStore::cleanup_expired

use std::ops::ControlFlow;

use eddy_core::key::KeyGroupRange;
use eddy_core::Timestamp;

use crate::backend::StateBackend;
use crate::cell::{self, Cell, Frames};
use crate::descriptor::StateKind;
use crate::error::Result;
use crate::store::state_info::{Cursor, StateInfo};
use crate::ttl::StateTtlConfig;

/// What cleanup does with one stored entry.
enum Prune {
    /// Nothing expired.
    Keep,
    /// Everything expired.
    Delete,
    /// Some list elements expired: store these bytes instead.
    Replace(Vec<u8>),
}

/// Decides what to do with an entry of a state of `kind`.
fn prune(kind: StateKind, bytes: &[u8], ttl: &StateTtlConfig, now: Timestamp) -> Prune {
    if kind != StateKind::List {
        return match Cell::parse(bytes) {
            Ok(cell) if cell.is_expired(ttl, now) => Prune::Delete,
            _ => Prune::Keep,
        };
    }
    let mut kept = Vec::new();
    let mut dropped = false;
    for frame in Frames::new(bytes) {
        let Ok(frame) = frame else { return Prune::Keep };
        match Cell::parse(frame) {
            Ok(cell) if cell.is_expired(ttl, now) => dropped = true,
            Ok(_) => cell::push_frame(&mut kept, frame),
            Err(_) => return Prune::Keep,
        }
    }
    match (dropped, kept.is_empty()) {
        (false, _) => Prune::Keep,
        (true, true) => Prune::Delete,
        (true, false) => Prune::Replace(kept),
    }
}

/// Applies cleanup decisions to entries under `prefix`; returns how many changed.
fn apply<B: StateBackend>(backend: &mut B, prefix: &[u8], changes: Vec<(Vec<u8>, Prune)>) -> Result<usize> {
    let mut key = Vec::new();
    let count = changes.len();
    for (rest, change) in changes {
        key.clear();
        key.extend_from_slice(prefix);
        key.extend_from_slice(&rest);
        match change {
            Prune::Keep => {}
            Prune::Delete => backend.delete(&key)?,
            Prune::Replace(bytes) => backend.put(&key, &bytes)?,
        }
    }
    Ok(count)
}

/// One incremental step: checks the next `cleanup_size` entries of `state`.
pub(crate) fn step<B: StateBackend>(
    backend: &mut B,
    state: &mut StateInfo,
    key_groups: KeyGroupRange,
    now: Timestamp,
) -> Result<()> {
    let Some(ttl) = state.ttl else { return Ok(()) };
    let limit = ttl.cleanup_size;
    if limit == 0 {
        return Ok(());
    }
    let prefix = state.prefix(state.cursor.key_group);
    let mut changes = Vec::new();
    let mut seen = 0;
    let mut last = None;
    backend.scan(&prefix, state.cursor.after.as_deref(), |rest, bytes| {
        seen += 1;
        let change = prune(state.kind, bytes, &ttl, now);
        if !matches!(change, Prune::Keep) {
            changes.push((rest.to_vec(), change));
        }
        if seen == limit {
            last = Some(rest.to_vec());
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    apply(backend, &prefix, changes)?;
    state.cursor = match last {
        Some(after) => Cursor { key_group: state.cursor.key_group, after: Some(after) },
        None if state.cursor.key_group >= key_groups.end => Cursor::new(key_groups.start),
        None => Cursor::new(state.cursor.key_group + 1),
    };
    Ok(())
}

/// Cleans every entry of `state` in `key_group`; returns how many were deleted or rewritten.
pub(crate) fn key_group<B: StateBackend>(
    backend: &mut B,
    state: &StateInfo,
    key_group: usize,
    now: Timestamp,
) -> Result<usize> {
    let Some(ttl) = state.ttl else { return Ok(0) };
    let prefix = state.prefix(key_group);
    let mut changes = Vec::new();
    backend.scan(&prefix, None, |rest, bytes| {
        let change = prune(state.kind, bytes, &ttl, now);
        if !matches!(change, Prune::Keep) {
            changes.push((rest.to_vec(), change));
        }
        ControlFlow::Continue(())
    })?;
    apply(backend, &prefix, changes)
}
