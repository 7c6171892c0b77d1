//! Verifying a snapshot: one ordered scan per tree, recomputing what the metadata claims.
//!
//! In format version 1 a state's chunks in a key group are numbered 0, 1, 2, … and all
//! stored in the snapshot. In version 2 the metadata lists every chunk of every keyed part
//! with its checksum; the snapshot stores some and takes the others from earlier
//! checkpoints (checked by the reader, which opens those): the scan checks each chunk it
//! finds against the entry the metadata has for it, and that none is missing.

use std::collections::HashMap;
use std::path::Path;

use xxhash_rust::xxh3::xxh3_64;

use super::damage::{broken_chunk, damaged};
use super::format::{frames, parse_chunk_key, parse_list_key, ChunkKey, EntryChecksum};
use super::guard::sled_error;
use super::metadata::{ChunkRef, DeltaRef, OperatorMetadata, SnapshotMetadata, StateMetadata, StoredStateKind};
use crate::error::{Result, StateError};

/// Checks every stored entry against the metadata: checksums, entry and byte counts, key
/// groups, that keyed chunks parse and follow each other, list positions, and that no entry
/// belongs to an unknown operator or state.
pub(crate) fn verify(
    path: &Path,
    metadata: &SnapshotMetadata,
    keyed: &sled::Tree,
    lists: &sled::Tree,
    deltas: Option<&sled::Tree>,
) -> Result<()> {
    let v1 = metadata.format_version == 1;
    let mut tallies: Vec<OperatorTally<'_>> =
        metadata.operators.iter().map(|op| OperatorTally::new(op, (!v1).then_some(metadata.header.id))).collect();
    let by_prefix: HashMap<Vec<u8>, usize> =
        metadata.operators.iter().enumerate().map(|(i, op)| (super::format::uid_prefix(&op.uid), i)).collect();
    // The checksum covers the keyed tree first, then the lists tree, as the writer wrote them.
    let add_keyed = if v1 { OperatorTally::add_keyed } else { OperatorTally::add_own_chunk };
    scan_tree(path, keyed, "keyed", &by_prefix, &mut tallies, add_keyed)?;
    scan_tree(path, lists, "lists", &by_prefix, &mut tallies, OperatorTally::add_list)?;
    if let Some(deltas) = deltas {
        scan_tree(path, deltas, "deltas", &by_prefix, &mut tallies, OperatorTally::add_own_delta)?;
    }
    tallies.iter().try_for_each(|tally| tally.check(path))
}

/// Scans one tree in key order, handing each stored pair (a keyed chunk, a list item) to its
/// operator's tally.
fn scan_tree<'m>(
    path: &Path,
    tree: &sled::Tree,
    tree_name: &str,
    by_prefix: &HashMap<Vec<u8>, usize>,
    tallies: &mut [OperatorTally<'m>],
    mut add: impl FnMut(&mut OperatorTally<'m>, &[u8], &[u8]) -> std::result::Result<(), String>,
) -> Result<()> {
    for item in tree.iter() {
        let (key, value) = item.map_err(|e| sled_error(path, "verifying the entries", e))?;
        let operator = operator_prefix_len(&key).and_then(|len| Some((len, *by_prefix.get(&key[..len])?)));
        let Some((prefix_len, index)) = operator else {
            return Err(StateError::Checkpoint {
                path: path.to_path_buf(),
                problem: format!(
                    "its '{tree_name}' tree holds an entry of no operator in its metadata; the snapshot is \
                     damaged: use an older checkpoint or another savepoint"
                ),
            });
        };
        let tally = &mut tallies[index];
        tally.checksum.add(&key, &value);
        add(tally, &key[prefix_len..], &value).map_err(|what| damaged(path, tally.operator, &what))?;
    }
    Ok(())
}

/// The length of a stored key's `uid_len u16 | uid` prefix, if the key is long enough.
fn operator_prefix_len(key: &[u8]) -> Option<usize> {
    let (len, _) = key.split_first_chunk::<2>()?;
    let total = 2 + usize::from(u16::from_be_bytes(*len));
    (key.len() >= total).then_some(total)
}

/// What the stored entries of one operator add up to.
struct OperatorTally<'m> {
    operator: &'m OperatorMetadata,
    checksum: EntryChecksum,
    /// Per keyed state name.
    keyed: HashMap<&'m [u8], StateTally>,
    /// Per list name.
    lists: HashMap<&'m [u8], StateTally>,
    /// Format version 2: the chunks the metadata says this snapshot stores, by state, key
    /// group and number, and whether the scan found each (`None` in version 1).
    own_chunks: Option<OwnChunks<'m>>,
    /// The deltas the metadata says this snapshot stores, by state and key group, and
    /// whether the scan found each.
    own_deltas: HashMap<&'m [u8], HashMap<u16, (&'m DeltaRef, bool)>>,
}

/// The chunks a snapshot stores itself, by state, then key group and number, with whether
/// the scan found each.
type OwnChunks<'m> = HashMap<&'m [u8], HashMap<(u16, u32), (&'m ChunkRef, bool)>>;

/// What the stored entries of one state add up to.
#[derive(Default)]
struct StateTally {
    entries: u64,
    bytes: u64,
    key_groups: Option<(u32, u32)>,
    key_group_count: u32,
    /// The list position the next item must have: `(subtask, index)`.
    next_item: (u32, u32),
    /// The key group and number of the state's last keyed chunk so far.
    last_chunk: Option<(u16, u32)>,
    /// The last key of that chunk, which the next chunk's keys must follow.
    last_key: Vec<u8>,
}

impl<'m> OperatorTally<'m> {
    /// An empty tally with a slot for each state in the operator's metadata; `id`: the
    /// snapshot's, for format version 2, whose chunks record where they are stored.
    fn new(operator: &'m OperatorMetadata, id: Option<u64>) -> Self {
        let mut keyed = HashMap::new();
        let mut lists = HashMap::new();
        for state in &operator.states {
            let slots = if matches!(state.kind, StoredStateKind::Keyed { .. }) { &mut keyed } else { &mut lists };
            slots.insert(state.name.as_bytes(), StateTally::default());
        }
        let own_chunks = id.map(|id| {
            let mut own = OwnChunks::new();
            for part in &operator.parts {
                let chunks = own.entry(part.state.as_bytes()).or_default();
                for chunk in part.chunks.iter().filter(|chunk| chunk.stored_in == id) {
                    chunks.insert((part.key_group, chunk.number), (chunk, false));
                }
            }
            own
        });
        let mut own_deltas: HashMap<&[u8], HashMap<u16, _>> = HashMap::new();
        for part in &operator.parts {
            for delta in part.deltas.iter().filter(|delta| Some(delta.stored_in) == id) {
                own_deltas.entry(part.state.as_bytes()).or_default().insert(part.key_group, (delta, false));
            }
        }
        OperatorTally { operator, checksum: EntryChecksum::new(), keyed, lists, own_chunks, own_deltas }
    }

    /// Counts the entries of a keyed chunk (its key without the uid prefix), checking that
    /// they parse and continue the state's previous chunk in the key group.
    fn add_keyed(&mut self, rest: &[u8], chunk: &[u8]) -> std::result::Result<(), String> {
        let key = parse_chunk_key(rest).ok_or("a keyed chunk's key is malformed")?;
        let tally = self.keyed.get_mut(key.state).ok_or_else(|| unknown("keyed state", key.state))?;
        let continues = tally.last_chunk.is_some_and(|(key_group, _)| key_group == key.key_group);
        let expected = match tally.last_chunk {
            Some((_, last)) if continues => last.checked_add(1),
            _ => Some(0),
        };
        if expected != Some(key.chunk) {
            let state = String::from_utf8_lossy(key.state);
            return Err(format!(
                "state '{state}' has chunk {} in key group {} out of sequence: a chunk before it is missing",
                key.chunk, key.key_group
            ));
        }
        let mut previous: Option<&[u8]> = continues.then_some(&tally.last_key[..]);
        for frame in frames(chunk) {
            let (entry_key, value) = frame.map_err(|_| broken_chunk(&key))?;
            // Keys are stored in order, so a reader returns them sorted without sorting.
            if previous.is_some_and(|previous| previous >= entry_key) {
                let state = String::from_utf8_lossy(key.state);
                return Err(format!("state '{state}' has keys out of order in key group {}", key.key_group));
            }
            previous = Some(entry_key);
            tally.entries += 1;
            tally.bytes += (entry_key.len() + value.len()) as u64;
        }
        if let Some(last) = previous {
            tally.last_key = last.to_vec();
        }
        tally.last_chunk = Some((key.key_group, key.chunk));
        let key_group = u32::from(key.key_group);
        // An operator's chunks are ordered by key group first, so a state's groups only grow.
        if is_new_key_group(tally.key_groups, key_group) {
            tally.key_group_count += 1;
        }
        let min = tally.key_groups.map_or(key_group, |(min, _)| min);
        tally.key_groups = Some((min, key_group));
        Ok(())
    }

    /// Format version 2: checks a stored chunk (its key without the uid prefix) against the
    /// chunk the metadata lists under its state, key group and number.
    fn add_own_chunk(&mut self, rest: &[u8], chunk: &[u8]) -> std::result::Result<(), String> {
        let key = parse_chunk_key(rest).ok_or("a keyed chunk's key is malformed")?;
        let own = self.own_chunks.as_mut().expect("set for format version 2");
        let found = own.get_mut(key.state).and_then(|chunks| chunks.get_mut(&(key.key_group, key.chunk)));
        let Some((expected, seen)) = found else {
            let (state, number, key_group) = (String::from_utf8_lossy(key.state), key.chunk, key.key_group);
            return Err(format!("it stores chunk {number} of state '{state}' in key group {key_group}, which its metadata does not list"));
        };
        *seen = true;
        check_chunk(&key, chunk, expected)
    }

    /// Format version 3: checks a stored delta (its key without the uid prefix) against the
    /// delta the metadata lists for its part.
    fn add_own_delta(&mut self, rest: &[u8], delta: &[u8]) -> std::result::Result<(), String> {
        let key = parse_chunk_key(rest).ok_or("a delta's key is malformed")?;
        let (state, key_group) = (String::from_utf8_lossy(key.state), key.key_group);
        let found = self.own_deltas.get_mut(key.state).and_then(|parts| parts.get_mut(&key.key_group));
        let Some((expected, seen)) = found else {
            return Err(format!(
                "it stores a delta of state '{state}' in key group {key_group}, which its metadata does not list"
            ));
        };
        *seen = true;
        super::delta::decode(delta, expected)
            .map(drop)
            .map_err(|what| format!("the delta of state '{state}' in key group {key_group} {what}"))
    }

    /// Counts a list item (its key without the uid prefix), checking it is the next one.
    fn add_list(&mut self, rest: &[u8], value: &[u8]) -> std::result::Result<(), String> {
        let (name, subtask, index) = parse_list_key(rest).ok_or("a list item's key is malformed")?;
        let tally = self.lists.get_mut(name).ok_or_else(|| unknown("list", name))?;
        let (next_subtask, next_index) = tally.next_item;
        let in_order = (subtask == next_subtask && index == next_index) || (subtask > next_subtask && index == 0);
        if !in_order {
            let name = String::from_utf8_lossy(name);
            return Err(format!("list '{name}' is missing items before subtask {subtask}'s item {index}"));
        }
        tally.next_item = (subtask, index + 1);
        tally.entries += 1;
        tally.bytes += value.len() as u64;
        Ok(())
    }

    /// Compares the tally with the operator's metadata.
    fn check(&self, path: &Path) -> Result<()> {
        let op = self.operator;
        for state in &op.states {
            let keyed = matches!(state.kind, StoredStateKind::Keyed { .. });
            let tally = match (keyed, &self.own_chunks) {
                // Version 2: the parts say what the state holds; the chunks were checked one by one.
                (true, Some(_)) => Some(check_parts(op, state)),
                (true, None) => self.keyed.get(state.name.as_bytes()).map(|tally| check_state(state, tally)),
                (false, _) => self.lists.get(state.name.as_bytes()).map(|tally| check_state(state, tally)),
            };
            if let Some(Err(what)) = tally {
                return Err(damaged(path, op, &what));
            }
        }
        let keyed_state = |name: &str| op.state(name).is_some_and(|s| matches!(s.kind, StoredStateKind::Keyed { .. }));
        if let Some(part) = op.parts.iter().find(|part| !keyed_state(&part.state)) {
            let what = format!("it has a part of state '{}', which its metadata does not list", part.state);
            return Err(damaged(path, op, &what));
        }
        let by_state = self.own_chunks.iter().flatten();
        let missing = by_state.flat_map(|(state, chunks)| chunks.iter().map(move |(at, found)| (state, at, found)));
        if let Some((state, (key_group, number), _)) = missing.into_iter().find(|(_, _, (_, seen))| !seen) {
            let state = String::from_utf8_lossy(state);
            return Err(damaged(
                path,
                op,
                &format!("chunk {number} of state '{state}' in key group {key_group} is missing"),
            ));
        }
        let deltas = self
            .own_deltas
            .iter()
            .flat_map(|(state, parts)| parts.iter().map(move |(kg, (_, seen))| (state, kg, seen)));
        if let Some((state, key_group, _)) = deltas.into_iter().find(|(_, _, seen)| !**seen) {
            let state = String::from_utf8_lossy(state);
            return Err(damaged(
                path,
                op,
                &format!("the delta of state '{state}' in key group {key_group} is missing"),
            ));
        }
        if self.checksum.digest() != op.checksum {
            return Err(damaged(path, op, "its entries do not match their checksum"));
        }
        Ok(())
    }
}

/// Checks a chunk's bytes against what the metadata says of it: whole frames, keys in
/// order, its entries, bytes and checksum.
pub(crate) fn check_chunk(key: &ChunkKey<'_>, chunk: &[u8], expected: &ChunkRef) -> std::result::Result<(), String> {
    let (mut entries, mut bytes, mut previous) = (0u32, 0u64, None);
    for frame in frames(chunk) {
        let (entry_key, value) = frame.map_err(|_| broken_chunk(key))?;
        if previous.is_some_and(|previous: &[u8]| previous >= entry_key) {
            let state = String::from_utf8_lossy(key.state);
            return Err(format!("state '{state}' has keys out of order in key group {}", key.key_group));
        }
        previous = Some(entry_key);
        entries += 1;
        bytes += (entry_key.len() + value.len()) as u64;
    }
    if (entries, bytes, xxh3_64(chunk)) != (expected.entries, expected.bytes, expected.checksum) {
        let state = String::from_utf8_lossy(key.state);
        return Err(format!(
            "chunk {} of state '{state}' in key group {} does not match its checksum",
            key.chunk, key.key_group
        ));
    }
    Ok(())
}

/// Format version 2: checks that a keyed state's metadata is the sum of its parts, and each
/// part the sum of its chunks.
fn check_parts(op: &OperatorMetadata, state: &StateMetadata) -> std::result::Result<(), String> {
    let (mut entries, mut bytes, mut key_groups, mut count) = (0, 0, None::<(u32, u32)>, 0);
    for part in op.parts.iter().filter(|part| part.state == state.name) {
        let chunk_entries: u64 = part.chunks.iter().map(|chunk| u64::from(chunk.entries)).sum();
        let chunk_bytes: u64 = part.chunks.iter().map(|chunk| chunk.bytes).sum();
        // A part with deltas is checked by applying them (`SnapshotReader::verify`).
        if part.deltas.is_empty() && (chunk_entries, chunk_bytes) != (part.entries, part.bytes) {
            return Err(format!("state '{}' in key group {} is not the sum of its chunks", state.name, part.key_group));
        }
        entries += part.entries;
        bytes += part.bytes;
        let key_group = u32::from(part.key_group);
        if is_new_key_group(key_groups, key_group) {
            count += 1;
        }
        key_groups = Some((key_groups.map_or(key_group, |(min, _)| min), key_group));
    }
    let found = StoredStateKind::Keyed { key_groups, key_group_count: count };
    if (entries, bytes, found) != (state.entries, state.bytes, state.kind) {
        return Err(format!("state '{}' is not the sum of its parts", state.name));
    }
    Ok(())
}

/// Compares one state's tally with its metadata.
fn check_state(state: &StateMetadata, tally: &StateTally) -> std::result::Result<(), String> {
    let name = &state.name;
    if tally.entries != state.entries {
        return Err(format!("state '{name}' has {} entries, its metadata says {}", tally.entries, state.entries));
    }
    if tally.bytes != state.bytes {
        return Err(format!("state '{name}' has {} bytes, its metadata says {}", tally.bytes, state.bytes));
    }
    match state.kind {
        StoredStateKind::Keyed { key_groups, key_group_count }
            if key_groups != tally.key_groups || key_group_count != tally.key_group_count =>
        {
            Err(format!("state '{name}' has entries in other key groups than its metadata says"))
        }
        StoredStateKind::List { subtasks, .. } if tally.entries > 0 && tally.next_item.0 >= subtasks => {
            Err(format!("list '{name}' has items of subtask {}, but only {subtasks} subtasks", tally.next_item.0))
        }
        _ => Ok(()),
    }
}

/// The message for an entry of a state the metadata does not list.
fn unknown(what: &str, name: &[u8]) -> String {
    format!("it has entries of {what} '{}', which its metadata does not list", String::from_utf8_lossy(name))
}

/// Whether `key_group` is new to a state whose key groups so far span `seen`.
fn is_new_key_group(seen: Option<(u32, u32)>, key_group: u32) -> bool {
    seen.is_none_or(|(_, max)| max < key_group)
}
