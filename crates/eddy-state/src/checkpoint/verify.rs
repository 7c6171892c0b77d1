//! Verifying a snapshot: one ordered scan per tree, recomputing what the metadata claims.

use std::collections::HashMap;
use std::path::Path;

use super::format::{frames, parse_chunk_key, parse_list_key, uid_prefix, EntryChecksum};
use super::guard::sled_error;
use super::metadata::{KeyedPart, OperatorMetadata, SnapshotMetadata, StateMetadata, StoredStateKind};
use super::reader::{broken_chunk, damaged};
use crate::error::{Result, StateError};

/// Checks every stored entry against the metadata: checksums, entry and byte counts, key
/// groups, that keyed chunks parse and follow each other, list positions, and that no entry
/// belongs to an unknown operator or state.
pub(crate) fn verify(path: &Path, metadata: &SnapshotMetadata, keyed: &sled::Tree, lists: &sled::Tree) -> Result<()> {
    let id = metadata.header.id;
    let mut tallies: Vec<OperatorTally<'_>> = metadata.operators.iter().map(|op| OperatorTally::new(op, id)).collect();
    let by_prefix: HashMap<Vec<u8>, usize> =
        metadata.operators.iter().enumerate().map(|(i, op)| (super::format::uid_prefix(&op.uid), i)).collect();
    // The checksum covers the keyed tree first, then the lists tree, as the writer wrote them.
    scan_tree(path, keyed, "keyed", &by_prefix, &mut tallies, OperatorTally::add_keyed)?;
    scan_tree(path, lists, "lists", &by_prefix, &mut tallies, OperatorTally::add_list)?;
    tallies.iter().try_for_each(|tally| tally.check(path, metadata.format_version >= 2))
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
    /// The snapshot's id: its own parts record it.
    id: u64,
    /// `uid_len u16 | uid`, which every stored key of the operator starts with.
    prefix: Vec<u8>,
    checksum: EntryChecksum,
    /// Per keyed part, `(state, key group)`: what its stored chunks add up to.
    parts: HashMap<(&'m [u8], u16), PartTally>,
    /// Per keyed state name.
    keyed: HashMap<&'m [u8], StateTally>,
    /// Per list name.
    lists: HashMap<&'m [u8], StateTally>,
}

/// What the stored chunks of one keyed part add up to.
struct PartTally {
    checksum: EntryChecksum,
    chunks: u32,
    entries: u64,
    bytes: u64,
}

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
    /// An empty tally with a slot for each state in the operator's metadata.
    fn new(operator: &'m OperatorMetadata, id: u64) -> Self {
        let mut keyed = HashMap::new();
        let mut lists = HashMap::new();
        for state in &operator.states {
            let slots = if matches!(state.kind, StoredStateKind::Keyed { .. }) { &mut keyed } else { &mut lists };
            slots.insert(state.name.as_bytes(), StateTally::default());
        }
        let (prefix, parts) = (uid_prefix(&operator.uid), HashMap::new());
        OperatorTally { operator, id, prefix, checksum: EntryChecksum::new(), parts, keyed, lists }
    }

    /// Counts the entries of a keyed chunk (its key without the uid prefix), checking that
    /// they parse and continue the state's previous chunk in the key group.
    fn add_keyed(&mut self, rest: &[u8], chunk: &[u8]) -> std::result::Result<(), String> {
        let key = parse_chunk_key(rest).ok_or("a keyed chunk's key is malformed")?;
        let state: &'m [u8] = self.keyed.get_key_value(key.state).ok_or_else(|| unknown("keyed state", key.state))?.0;
        let tally = self.keyed.get_mut(state).expect("found above");
        let part = self.parts.entry((state, key.key_group)).or_insert_with(|| PartTally {
            checksum: EntryChecksum::new(),
            chunks: 0,
            entries: 0,
            bytes: 0,
        });
        part.checksum.add_split(&self.prefix, rest, chunk);
        part.chunks += 1;
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
            part.entries += 1;
            part.bytes += (entry_key.len() + value.len()) as u64;
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

    /// Compares the tally with the operator's metadata; `parts`: the snapshot is of format
    /// version 2, which describes every keyed part and may take some from earlier checkpoints.
    fn check(&self, path: &Path, parts: bool) -> Result<()> {
        let op = self.operator;
        for state in &op.states {
            let is_keyed = matches!(state.kind, StoredStateKind::Keyed { .. });
            let slots = if is_keyed { &self.keyed } else { &self.lists };
            // What this snapshot stores itself of the state: all of it, but in an
            // incremental checkpoint the parts it takes from earlier ones.
            let own = match parts && is_keyed {
                true => own_part_of(state, op.parts.iter().filter(|part| part.stored_in == self.id)),
                false => state.clone(),
            };
            let tally = slots.get(state.name.as_bytes()).map(|tally| check_state(&own, tally));
            if let Some(Err(what)) = tally {
                return Err(damaged(path, op, &what));
            }
            if parts && is_keyed && own_part_of(state, op.parts.iter()) != *state {
                return Err(damaged(path, op, &format!("state '{}' is not the sum of its parts", state.name)));
            }
        }
        if parts {
            self.check_parts().map_err(|what| damaged(path, op, &what))?;
        }
        if self.checksum.digest() != op.checksum {
            return Err(damaged(path, op, "its entries do not match their checksum"));
        }
        Ok(())
    }
}

impl OperatorTally<'_> {
    /// Compares every part this snapshot stores with the part its metadata describes.
    fn check_parts(&self) -> std::result::Result<(), String> {
        let own: HashMap<(&[u8], u16), &KeyedPart> = self
            .operator
            .parts
            .iter()
            .filter(|part| part.stored_in == self.id)
            .map(|part| ((part.state.as_bytes(), part.key_group), part))
            .collect();
        if own.len() != self.parts.len() {
            return Err("its stored keyed parts are not the ones its metadata lists".into());
        }
        for ((state, key_group), tally) in &self.parts {
            let described = own.get(&(*state, *key_group)).is_some_and(|part| {
                (part.checksum, part.chunks, part.entries, part.bytes)
                    == (tally.checksum.digest(), tally.chunks, tally.entries, tally.bytes)
            });
            if !described {
                let state = String::from_utf8_lossy(state);
                return Err(format!("state '{state}' in key group {key_group} does not match its part's checksum"));
            }
        }
        Ok(())
    }
}

/// The state as the given parts of it add up: entries, bytes and key groups.
fn own_part_of<'p>(state: &StateMetadata, parts: impl Iterator<Item = &'p KeyedPart>) -> StateMetadata {
    let (mut entries, mut bytes, mut key_groups, mut count) = (0, 0, None::<(u32, u32)>, 0);
    for part in parts.filter(|part| part.state == state.name) {
        entries += part.entries;
        bytes += part.bytes;
        let key_group = u32::from(part.key_group);
        key_groups =
            Some(key_groups.map_or((key_group, key_group), |(min, max)| (min.min(key_group), max.max(key_group))));
        count += 1;
    }
    StateMetadata {
        name: state.name.clone(),
        kind: StoredStateKind::Keyed { key_groups, key_group_count: count },
        entries,
        bytes,
    }
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
