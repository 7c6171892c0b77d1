//! Keyed parts an incremental checkpoint takes over from earlier checkpoints: where they
//! are, opening those checkpoints once, and reading a part back checked against the
//! checksum the referencing checkpoint recorded for it.
//!
//! A part is referenced by the id of the checkpoint that stores it, always in the same
//! checkpoint directory: `<dir>/chk-<id>` next to the referencing `<dir>/chk-<n>`. The
//! referenced checkpoint is opened (not verified as a whole: only the parts read are
//! checked), and kept open while the referencing reader lives, so several key groups read
//! from it cost one open.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::format::{frames, parse_chunk_key, part_prefix, uid_prefix, EntryChecksum};
use super::guard::sled_error;
use super::metadata::{KeyedPart, OperatorMetadata};
use super::reader::{damaged, SnapshotReader};
use crate::error::{Result, StateError};

/// The earlier checkpoints one snapshot takes parts from, opened on first use.
#[derive(Default)]
pub(crate) struct SharedParts {
    open: Mutex<HashMap<u64, SnapshotReader>>,
}

impl SharedParts {
    /// Appends the entries of `part` of operator `op`, stored in an earlier checkpoint next
    /// to the snapshot at `path`, to `out` as `(key group, key, value)`. An error names the
    /// snapshot, the part and what is wrong when the checkpoint storing it is missing or
    /// does not hold exactly that part.
    pub(crate) fn read(
        &self,
        path: &Path,
        op: &OperatorMetadata,
        part: &KeyedPart,
        out: &mut Vec<(u16, Vec<u8>, Vec<u8>)>,
    ) -> Result<()> {
        let owner = stored_at(path, part.stored_in);
        let problem = |what: String| {
            let (state, key_group) = (&part.state, part.key_group);
            let (id, at) = (part.stored_in, owner.display());
            let part = format!("its part of state '{state}' in key group {key_group}");
            damaged(path, op, &format!("{part}, taken over from checkpoint {id} at {at}, {what}"))
        };
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let reader = match open.entry(part.stored_in) {
            Entry::Occupied(open) => open.into_mut(),
            Entry::Vacant(vacant) => {
                let reader = SnapshotReader::open(&owner).map_err(|e| problem(format!("cannot be read: {e}")))?;
                let found = reader.metadata().header.id;
                if found != part.stored_in {
                    return Err(problem(format!("is missing: that directory holds checkpoint {found}")));
                }
                vacant.insert(reader)
            }
        };
        let start = out.len();
        read_part(reader, &op.uid, part, out).map_err(|e| {
            out.truncate(start);
            problem(e)
        })
    }
}

/// Where checkpoint `id` is, next to the snapshot at `path`.
fn stored_at(path: &Path, id: u64) -> PathBuf {
    path.parent().unwrap_or(Path::new(".")).join(format!("chk-{id:010}"))
}

/// Reads one part from the checkpoint storing it, checking that its chunks follow each
/// other, parse, and add up to the part's checksum, chunks, entries and bytes.
fn read_part(
    reader: &SnapshotReader,
    uid: &str,
    part: &KeyedPart,
    out: &mut Vec<(u16, Vec<u8>, Vec<u8>)>,
) -> std::result::Result<(), String> {
    let prefix = uid_prefix(uid);
    let mut checksum = EntryChecksum::new();
    let (mut chunks, mut entries, mut bytes) = (0u32, 0u64, 0u64);
    let scanned = reader.scan_keyed_prefix(&part_prefix(&prefix, part.key_group, &part.state), |key, chunk| {
        let parsed = parse_chunk_key(&key[prefix.len()..]).filter(|parsed| parsed.state == part.state.as_bytes());
        if parsed.is_none_or(|parsed| parsed.chunk != chunks) {
            return Err("has a chunk missing or out of place".to_string());
        }
        checksum.add(key, chunk);
        chunks += 1;
        for frame in frames(chunk) {
            let (key, value) = frame.map_err(|_| "has a chunk that is not a run of whole entries".to_string())?;
            entries += 1;
            bytes += (key.len() + value.len()) as u64;
            out.push((part.key_group, key.to_vec(), value.to_vec()));
        }
        Ok(())
    });
    scanned.map_err(|e| e.to_string())??;
    if (checksum.digest(), chunks, entries, bytes) != (part.checksum, part.chunks, part.entries, part.bytes) {
        return Err("does not match its checksum".into());
    }
    Ok(())
}

/// Turns a sled error while reading a shared part into the reader's error.
pub(crate) fn scan_error(path: &Path, error: sled::Error) -> StateError {
    sled_error(path, "reading a keyed part", error)
}
