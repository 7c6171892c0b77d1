//! A keyed operator's part of a checkpoint, and how it comes back.
//!
//! The snapshot is the store's, key group by key group: each state's entries under the
//! state's name, with the store's entry keys (`key group | state | key | …`) and stored
//! values unchanged, so a restore hands them back to the store as they are; the timers go
//! under [`TIMERS`], one entry per timer whose key is the bincode of `(TimeDomain, Timer)`.
//! A restore at another parallelism reads the key groups this subtask owns now, whichever
//! subtasks wrote them.
//!
//! With incremental checkpoints, a subtask hands over only what changed ([`changes`]): the
//! changed entries under their state's name (the backend's, and the heap's namespaced
//! states, a window's contents), and in full what the store does not track entry by entry
//! (the timers).
//!
//! Operators that kept their state in tables of their own before the shell (windows,
//! sessions, triggered windows, rolling aggregates) wrote it under other names, in their own
//! encoding; a restore hands those entries to the handler, which converts them
//! ([`KeyedHandler::legacy_states`](super::KeyedHandler::legacy_states)).

use eddy_core::{Error, Result};
use eddy_runtime::checkpoint::{StateContext, SubtaskChanges};
use eddy_state::backend::layout::EntryKey;
use eddy_state::{
    AnyBackend, KeyGroupSnapshot, KeyedChange, KeyedEntries, KeyedStateStore, StateChanges, StateError, StoreChanges,
    TimeDomain, Timer,
};

use crate::state_codec::decode;

/// The name a keyed operator's timers are checkpointed under.
pub(crate) const TIMERS: &str = "_timers";

fn state_error(error: StateError) -> Error {
    Error::Checkpoint(format!("keyed state: {error}"))
}

/// Every key group's state entries, by state name, and timers, for the checkpoint.
pub(crate) fn snapshot(store: &KeyedStateStore<AnyBackend>) -> Result<Vec<KeyedEntries>> {
    by_state(store.snapshot_key_groups().map_err(state_error)?)
}

/// What changed, for an incremental checkpoint: the changed entries by state name, and the
/// timers in full (as [`snapshot`] gives them).
pub(crate) fn changes(store: StoreChanges) -> Result<(Vec<KeyedEntries>, SubtaskChanges)> {
    let mut states: Vec<StateChanges> = Vec::new();
    for change in store.changes {
        let entry = EntryKey::parse(&change.key)
            .ok_or_else(|| Error::Checkpoint("a changed keyed state entry does not follow the entry layout".into()))?;
        let key_group = entry.key_group as u16;
        let at = match states.iter().position(|s| s.state == entry.state) {
            Some(at) => at,
            None => {
                states.push(StateChanges { state: entry.state.to_string(), changes: Vec::new() });
                states.len() - 1
            }
        };
        states[at].changes.push(KeyedChange { key_group, key: change.key, value: change.value, before: change.before });
    }
    let replaced_states = vec![TIMERS.into()];
    Ok((by_state(store.untracked)?, SubtaskChanges { changes: states, replaced_states }))
}

/// Key groups' entries by state name, and their timers under [`TIMERS`].
fn by_state(groups: Vec<KeyGroupSnapshot>) -> Result<Vec<KeyedEntries>> {
    let mut states: Vec<KeyedEntries> = Vec::new();
    let mut timers = KeyedEntries { state: TIMERS.into(), entries: Vec::new() };
    for group in groups {
        let key_group = group.key_group as u16;
        // Entries come in key order, so one state's entries follow each other.
        let mut current = None;
        for (key, value) in group.entries {
            let name = EntryKey::parse(&key)
                .map(|entry| entry.state)
                .ok_or_else(|| Error::Checkpoint("a keyed state entry does not follow the entry layout".into()))?;
            let at = match current {
                Some(at) if states.get(at).is_some_and(|s: &KeyedEntries| s.state == name) => at,
                _ => match states.iter().position(|s| s.state == name) {
                    Some(at) => at,
                    None => {
                        states.push(KeyedEntries { state: name.to_string(), entries: Vec::new() });
                        states.len() - 1
                    }
                },
            };
            current = Some(at);
            states[at].entries.push((key_group, key, value));
        }
        for timer in &group.timers {
            let bytes = bincode::serde::encode_to_vec(timer, bincode::config::standard())
                .map_err(|e| Error::Checkpoint(format!("cannot encode a timer: {e}")))?;
            timers.entries.push((key_group, bytes, Vec::new()));
        }
    }
    states.push(timers);
    Ok(states)
}

/// Restores the key groups this subtask owns from the restored snapshot (nothing when the
/// job starts fresh); returns the entries of the `legacy` states.
pub(crate) fn restore(
    store: &KeyedStateStore<AnyBackend>,
    checkpoints: &StateContext,
    legacy: &[&str],
) -> Result<Vec<KeyedEntries>> {
    let range = checkpoints.key_groups();
    let mut groups: Vec<KeyGroupSnapshot> =
        (range.start..=range.end).map(|key_group| KeyGroupSnapshot { key_group, ..Default::default() }).collect();
    let mut old = Vec::new();
    for state in checkpoints.restored_keyed()? {
        if legacy.contains(&state.state.as_str()) {
            old.push(state);
            continue;
        }
        for (key_group, key, value) in state.entries {
            let Some(group) = groups.get_mut((key_group as usize).wrapping_sub(range.start)) else {
                return Err(Error::Checkpoint(format!("key group {key_group} is not this subtask's")));
            };
            if state.state == TIMERS {
                group.timers.push(decode::<(TimeDomain, Timer)>(&key)?);
            } else {
                group.entries.push((key, value));
            }
        }
    }
    for mut group in groups {
        if group.entries.is_empty() && group.timers.is_empty() {
            continue;
        }
        group.entries.sort_unstable();
        store.restore_key_group(group).map_err(state_error)?;
    }
    Ok(old)
}
