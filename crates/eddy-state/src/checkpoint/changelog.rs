//! Writing an operator from a changelog: the parts it gives in full, a delta for each part
//! of the base it changed, and the other parts of the base taken over, each part
//! materialised in full now and then.
//!
//! The operator's stored pairs go in in sled order for its checksum: its own chunks (the
//! parts given in full and the parts materialised now), then its list items, then its
//! deltas.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use xxhash_rust::xxh3::xxh3_64;

use super::format::{chunk_key, uid_prefix, EntryChecksum, MATERIALIZE_AFTER, MAX_FRAMED_LEN, MAX_NAME_LEN};
use super::guard::sled_error;
use super::metadata::{DeltaRef, KeyedPart, OperatorMetadata, SnapshotMetadata, StateMetadata, StoredStateKind};
use super::operator_write::{
    describe, keyed_state_metadata, write_keyed, write_lists, write_part, SortedEntry, SortedKeyed, Target,
};
use super::reader::SnapshotReader;
use crate::changes::{KeyedChange, OperatorChanges};
use crate::error::{Result, StateError};
use crate::operator_snapshot::{OperatorSnapshot, SnapshotHeader};

/// The trees an operator's lists and deltas go into.
pub(super) struct Trees<'a> {
    pub(super) lists: &'a sled::Tree,
    pub(super) deltas: &'a sled::Tree,
}

/// The base checkpoint, opened the first time a part of it is materialised.
pub(super) struct BaseReader<'a> {
    dir: &'a Path,
    base: Option<&'a SnapshotMetadata>,
    open: Option<SnapshotReader>,
}

impl<'a> BaseReader<'a> {
    pub(super) fn new(dir: &'a Path, base: Option<&'a SnapshotMetadata>) -> Self {
        BaseReader { dir, base, open: None }
    }

    /// The entries of `part` of operator `op` in the base, in key order.
    fn part(&mut self, op: &OperatorMetadata, part: &KeyedPart) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if self.open.is_none() {
            let base = self.base.expect("a base part comes from a base");
            let path = self.dir.parent().unwrap_or(Path::new(".")).join(format!("chk-{:010}", base.header.id));
            self.open = Some(SnapshotReader::open(&path)?);
        }
        self.open.as_ref().expect("opened above").part_entries(op, part)
    }
}

/// Checks the changes before anything is written: one per operator, of an operator being
/// written; keys and values that fit a frame, key groups the job has; no change to a part
/// given in full, no full entries outside the parts replaced, no key changed twice.
pub(super) fn check_changes(
    header: &SnapshotHeader,
    operators: &[OperatorSnapshot],
    changes: &[OperatorChanges],
) -> Result<()> {
    let mut seen = HashSet::new();
    for changed in changes {
        let invalid = |problem: String| StateError::InvalidOperatorSnapshot { uid: changed.uid.clone(), problem };
        let Some(op) = operators.iter().find(|op| op.uid == changed.uid) else {
            return Err(invalid(
                "it has changes but no operator snapshot; pass one (with no entries if need be)".into(),
            ));
        };
        if !seen.insert(changed.uid.as_str()) {
            return Err(invalid("two sets of changes have this uid; merge them".into()));
        }
        for keyed in &op.keyed {
            if let Some((key_group, _, _)) = keyed.entries.iter().find(|e| !changed.replaces(&keyed.state, e.0.into()))
            {
                return Err(invalid(format!(
                    "state '{}' has an entry in key group {key_group}, which its changes do not replace",
                    keyed.state
                )));
            }
        }
        for state in &changed.changes {
            if state.state.len() > MAX_NAME_LEN {
                return Err(invalid(format!("a state name is over {MAX_NAME_LEN} bytes")));
            }
            let mut keys = HashSet::new();
            for change in &state.changes {
                let (key_group, name) = (change.key_group, &state.state);
                if usize::from(key_group) >= header.max_parallelism {
                    return Err(invalid(format!(
                        "state '{name}' has a change in key group {key_group}, but the job has only {} key groups",
                        header.max_parallelism
                    )));
                }
                if changed.replaces(name, key_group.into()) {
                    return Err(invalid(format!(
                        "state '{name}' has a change in key group {key_group}, which is replaced"
                    )));
                }
                let long = change.value.as_ref().is_some_and(|v| v.len() >= MAX_FRAMED_LEN);
                if long || change.key.len() > MAX_FRAMED_LEN {
                    return Err(invalid(format!(
                        "state '{name}' has a changed key or value over {MAX_FRAMED_LEN} bytes"
                    )));
                }
                if !keys.insert((key_group, &change.key[..])) {
                    return Err(invalid(format!("state '{name}' changes one key twice in key group {key_group}")));
                }
            }
        }
    }
    Ok(())
}

/// Writes one operator from its changes on top of `base_op` (its metadata in the base) and
/// describes it.
pub(super) fn write_operator(
    target: &Target<'_>,
    trees: Trees<'_>,
    op: &OperatorSnapshot,
    sorted: &SortedKeyed<'_>,
    changes: &OperatorChanges,
    base_op: Option<&OperatorMetadata>,
    base: &mut BaseReader<'_>,
) -> Result<OperatorMetadata> {
    let prefix = uid_prefix(&op.uid);
    let mut own_chunks: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut store = |key: Vec<u8>, frames: Vec<u8>| {
        own_chunks.push((key, frames));
        Ok(())
    };
    let mut parts = write_keyed(target, sorted, &prefix, true, &mut store)?;
    let mut by_part = changes_by_part(changes);
    let mut deltas: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for old in base_op.map(|op| &op.parts[..]).unwrap_or_default() {
        if changes.replaces(&old.state, old.key_group.into()) {
            continue;
        }
        let changed = by_part.remove(&(old.state.as_str(), old.key_group)).unwrap_or_default();
        let old_op = base_op.expect("a base part has a base operator");
        let (part, delta) = if materialise(target.id, old, &changed) {
            let entries = base.part(old_op, old)?;
            (write_changed(target, &prefix, &old.state, old.key_group, entries, &changed, &mut store)?, None)
        } else if changed.is_empty() {
            (old.clone(), None)
        } else {
            let (part, delta) = add_delta(target, op, old, &changed)?;
            (part, Some(delta))
        };
        // A part whose changes removed its last entry is gone, and so is its delta: a delta
        // stored for a part the metadata does not list makes the checkpoint fail verification.
        if part.entries > 0 {
            if let Some(delta) = delta {
                deltas.push((chunk_key(&prefix, old.key_group, &old.state, 0), delta));
            }
            parts.push(part);
        }
    }
    // Changes to parts the base does not have start them.
    let mut new: Vec<_> = by_part.into_iter().collect();
    new.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for ((state, key_group), changed) in new {
        let part = write_changed(target, &prefix, state, key_group, Vec::new(), &changed, &mut store)?;
        if part.entries > 0 {
            parts.push(part);
        }
    }
    parts.sort_by(|a, b| {
        (a.key_group, a.state.len(), a.state.as_bytes()).cmp(&(b.key_group, b.state.len(), b.state.as_bytes()))
    });
    let mut checksum = EntryChecksum::new();
    own_chunks.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (key, frames) in own_chunks {
        checksum.add(&key, &frames);
        target.keyed.insert(key, frames).map_err(|e| sled_error(target.dir, "writing entries", e))?;
    }
    write_lists(target, trees.lists, op, &mut checksum)?;
    deltas.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (key, delta) in deltas {
        checksum.add(&key, &delta);
        trees.deltas.insert(key, delta).map_err(|e| sled_error(target.dir, "writing deltas", e))?;
    }
    let states = keyed_states(op, changes, base_op, &parts);
    Ok(describe(op, states, checksum, parts))
}

/// The changes of an operator by part, each part's in key order.
fn changes_by_part(changes: &OperatorChanges) -> HashMap<(&str, u16), Vec<&KeyedChange>> {
    let mut by_part: HashMap<(&str, u16), Vec<&KeyedChange>> = HashMap::new();
    for state in &changes.changes {
        for change in &state.changes {
            by_part.entry((state.state.as_str(), change.key_group)).or_default().push(change);
        }
    }
    for changed in by_part.values_mut() {
        changed.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    }
    by_part
}

/// Whether checkpoint `id` writes `part` of its base in full: once every
/// [`MATERIALIZE_AFTER`] ids, staggered by key group; when something of it is that old; or
/// when its deltas with `changed` would be larger than its chunks.
fn materialise(id: u64, part: &KeyedPart, changed: &[&KeyedChange]) -> bool {
    let oldest = part.chunks.iter().map(|c| c.stored_in).chain(part.deltas.iter().map(|d| d.stored_in)).min();
    let due = (id + u64::from(part.key_group)) % MATERIALIZE_AFTER == 0;
    let old = oldest.is_some_and(|oldest| id.saturating_sub(oldest) >= MATERIALIZE_AFTER);
    let chunk_bytes: u64 = part.chunks.iter().map(|c| c.bytes).sum();
    let delta_bytes: u64 = part.deltas.iter().map(|d| d.bytes).sum::<u64>() + changed_bytes(changed);
    (due && oldest.is_some_and(|oldest| oldest < id)) || old || delta_bytes > chunk_bytes.max(1 << 10)
}

/// About the bytes a delta of `changed` takes.
fn changed_bytes(changed: &[&KeyedChange]) -> u64 {
    changed.iter().map(|c| 9 + (c.key.len() + c.value.as_ref().map_or(0, Vec::len)) as u64).sum()
}

/// Writes a part in full: `entries` (in key order) with `changed` applied.
fn write_changed(
    target: &Target<'_>,
    prefix: &[u8],
    state: &str,
    key_group: u16,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    changed: &[&KeyedChange],
    store: &mut dyn FnMut(Vec<u8>, Vec<u8>) -> Result<()>,
) -> Result<KeyedPart> {
    let changes: Vec<_> = changed.iter().map(|c| (&c.key[..], c.value.as_deref())).collect();
    let entries = super::delta::apply(entries, &changes);
    let run: Vec<SortedEntry<'_>> = entries.iter().map(|(key, value)| SortedEntry::of_part(key, value)).collect();
    write_part(target, prefix, state, key_group, &run, false, store)
}

/// `part` with a delta of `changed` added, and the delta's bytes; the part's counts follow
/// from the lengths the changes had before.
fn add_delta(
    target: &Target<'_>,
    op: &OperatorSnapshot,
    part: &KeyedPart,
    changed: &[&KeyedChange],
) -> Result<(KeyedPart, Vec<u8>)> {
    let bytes = super::delta::encode(changed.iter().map(|c| (&c.key[..], c.value.as_deref())));
    let (mut entries, mut user_bytes) = (i128::from(part.entries), i128::from(part.bytes));
    for change in changed {
        let key = change.key.len() as i128;
        if let Some(value) = &change.value {
            entries += 1;
            user_bytes += key + value.len() as i128;
        }
        if let Some(before) = change.before {
            entries -= 1;
            user_bytes -= key + i128::from(before);
        }
    }
    let (Ok(entries), Ok(user_bytes)) = (u64::try_from(entries), u64::try_from(user_bytes)) else {
        return Err(StateError::InvalidOperatorSnapshot {
            uid: op.uid.clone(),
            problem: format!(
                "the changes of state '{}' in key group {} remove more than checkpoint {} holds; they do not \
                 follow from it",
                part.state,
                part.key_group,
                target.id - 1
            ),
        });
    };
    let delta = DeltaRef {
        stored_in: target.id,
        changes: changed.len() as u32,
        bytes: bytes.len() as u64,
        checksum: xxh3_64(&bytes),
    };
    let mut part = part.clone();
    part.entries = entries;
    part.bytes = user_bytes;
    part.deltas.push(delta);
    Ok((part, bytes))
}

/// Describes the operator's keyed states from its parts: those given in full (in the
/// order given), then the others the base or the changes have.
fn keyed_states(
    op: &OperatorSnapshot,
    changes: &OperatorChanges,
    base_op: Option<&OperatorMetadata>,
    parts: &[KeyedPart],
) -> Vec<StateMetadata> {
    let mut names: Vec<&str> = op.keyed.iter().map(|k| k.state.as_str()).collect();
    let base_states = base_op.into_iter().flat_map(|op| &op.states);
    let base_keyed = base_states.filter(|s| matches!(s.kind, StoredStateKind::Keyed { .. })).map(|s| s.name.as_str());
    let mut others: Vec<&str> = base_keyed.chain(changes.changes.iter().map(|c| c.state.as_str())).collect();
    others.sort_unstable();
    others.dedup();
    others.retain(|name| !names.contains(name));
    names.extend(others);
    names.into_iter().map(|name| state_from_parts(name, parts)).collect()
}

/// One keyed state's metadata as the sum of its parts (which are in key-group order).
fn state_from_parts(name: &str, parts: &[KeyedPart]) -> StateMetadata {
    let mut state = keyed_state_metadata(&crate::KeyedEntries { state: name.to_string(), entries: Vec::new() });
    let (mut min, mut max, mut count) = (None, None, 0);
    for part in parts.iter().filter(|part| part.state == name) {
        state.entries += part.entries;
        state.bytes += part.bytes;
        let key_group = u32::from(part.key_group);
        min = min.or(Some(key_group));
        if max != Some(key_group) {
            count += 1;
        }
        max = Some(key_group);
    }
    state.kind = StoredStateKind::Keyed { key_groups: min.zip(max), key_group_count: count };
    state
}
