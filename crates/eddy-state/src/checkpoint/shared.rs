//! Chunks an incremental checkpoint takes over from earlier checkpoints: where they are,
//! opening those checkpoints once, and reading a chunk back.
//!
//! A chunk is referenced by the id of the checkpoint that stores it, always in the same
//! checkpoint directory (`<dir>/chk-<id>` next to the referencing `<dir>/chk-<n>`), and its
//! number there. The referenced checkpoint is opened (not verified as a whole: the caller
//! checks each chunk it reads against the checksum the referencing snapshot recorded), and
//! kept open while the referencing reader lives, so many chunks read from it cost one open.
//!
//! The earlier checkpoints are opened with the same reader that reads the referencing one
//! (a chain of incremental checkpoints is read recursively); it comes in as the
//! [`EarlierSnapshot`] this module asks for, so that this file does not depend on the reader.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::format::{chunk_key, uid_prefix};
use super::metadata::{ChunkRef, KeyedPart};

/// What shared chunks need of an earlier checkpoint: opening it, its id, and the chunks and
/// deltas it stores itself (the snapshot reader).
pub(crate) trait EarlierSnapshot: Sized {
    /// Opens the checkpoint at `dir`.
    fn open_earlier(dir: &Path) -> crate::Result<Self>;
    /// The id it was written as.
    fn id(&self) -> u64;
    /// A chunk it stores itself, by key.
    fn own_chunk(&self, key: &[u8]) -> crate::Result<Option<Vec<u8>>>;
    /// A delta it stores itself, by key.
    fn own_delta(&self, key: &[u8]) -> crate::Result<Option<Vec<u8>>>;
}

/// The earlier checkpoints one snapshot takes chunks from, opened on first use.
pub(crate) struct SharedChunks<R> {
    open: Mutex<HashMap<u64, R>>,
}

impl<R> Default for SharedChunks<R> {
    fn default() -> Self {
        SharedChunks { open: Mutex::new(HashMap::new()) }
    }
}

impl<R: EarlierSnapshot> SharedChunks<R> {
    /// The bytes of `chunk` of operator `uid`'s `part`, stored in an earlier checkpoint next
    /// to the snapshot at `path`; the error says what is wrong (the checkpoint is missing,
    /// is another one, or lacks the chunk).
    pub(crate) fn read(
        &self,
        path: &Path,
        uid: &str,
        part: &KeyedPart,
        chunk: &ChunkRef,
    ) -> std::result::Result<Vec<u8>, String> {
        let key = chunk_key(&uid_prefix(uid), part.key_group, &part.state, chunk.number);
        self.read_from(path, chunk.stored_in, |reader| reader.own_chunk(&key))
    }

    /// The bytes of the delta of operator `uid`'s `part` that checkpoint `stored_in` stores.
    pub(crate) fn read_delta(
        &self,
        path: &Path,
        uid: &str,
        part: &KeyedPart,
        stored_in: u64,
    ) -> std::result::Result<Vec<u8>, String> {
        let key = chunk_key(&uid_prefix(uid), part.key_group, &part.state, 0);
        self.read_from(path, stored_in, |reader| reader.own_delta(&key))
    }

    /// What `read` finds in checkpoint `stored_in`, opened once.
    fn read_from(
        &self,
        path: &Path,
        stored_in: u64,
        read: impl FnOnce(&R) -> crate::Result<Option<Vec<u8>>>,
    ) -> std::result::Result<Vec<u8>, String> {
        let owner = stored_at(path, stored_in);
        let in_owner = |what: &str| format!("{what} (checkpoint {stored_in} at {})", owner.display());
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let reader = match open.entry(stored_in) {
            Entry::Occupied(open) => open.into_mut(),
            Entry::Vacant(vacant) => {
                let reader = R::open_earlier(&owner)
                    .map_err(|e| in_owner(&format!("the checkpoint storing it cannot be read: {e}")))?;
                let found = reader.id();
                if found != stored_in {
                    return Err(in_owner(&format!("the checkpoint storing it is gone: that directory holds {found}")));
                }
                vacant.insert(reader)
            }
        };
        match read(reader) {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(in_owner("the checkpoint storing it does not have it")),
            Err(e) => Err(in_owner(&format!("the checkpoint storing it cannot be read: {e}"))),
        }
    }
}

/// Where checkpoint `id` is, next to the snapshot at `path`.
fn stored_at(path: &Path, id: u64) -> PathBuf {
    path.parent().unwrap_or(Path::new(".")).join(format!("chk-{id:010}"))
}
