//! A backend chosen at run time: heap or sled behind one type, dispatched with a `match`.

use std::ops::ControlFlow;

use super::{Change, HeapBackend, SledBackend, StateBackend};
use crate::error::Result;

/// Either backend, for code that picks one from configuration rather than at compile time.
///
/// Each call is a two-way `match` (a predictable branch), not a virtual call, so operators
/// generic over [`StateBackend`] can use it on the per-record path.
#[derive(Debug)]
pub enum AnyBackend {
    /// In memory.
    Heap(HeapBackend),
    /// In sled.
    Sled(SledBackend),
}

impl From<HeapBackend> for AnyBackend {
    fn from(backend: HeapBackend) -> Self {
        AnyBackend::Heap(backend)
    }
}

impl From<SledBackend> for AnyBackend {
    fn from(backend: SledBackend) -> Self {
        AnyBackend::Sled(backend)
    }
}

/// Forwards a call to whichever backend this is.
macro_rules! forward {
    ($self:ident, $backend:ident => $call:expr) => {
        match $self {
            AnyBackend::Heap($backend) => $call,
            AnyBackend::Sled($backend) => $call,
        }
    };
}

impl StateBackend for AnyBackend {
    fn max_parallelism(&self) -> usize {
        forward!(self, b => b.max_parallelism())
    }

    #[inline]
    fn get<R>(&self, key: &[u8], read: impl FnOnce(&[u8]) -> R) -> Result<Option<R>> {
        forward!(self, b => b.get(key, read))
    }

    #[inline]
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        forward!(self, b => b.put(key, value))
    }

    #[inline]
    fn append(&mut self, key: &[u8], bytes: &[u8]) -> Result<()> {
        forward!(self, b => b.append(key, bytes))
    }

    #[inline]
    fn delete(&mut self, key: &[u8]) -> Result<()> {
        forward!(self, b => b.delete(key))
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        visit: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<()> {
        forward!(self, b => b.scan(prefix, after, visit))
    }

    fn scan_from(&self, prefix: &[u8], from: &[u8], visit: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>) -> Result<()> {
        forward!(self, b => b.scan_from(prefix, from, visit))
    }

    #[inline]
    fn is_in_memory(&self) -> bool {
        forward!(self, b => b.is_in_memory())
    }

    fn delete_prefix(&mut self, prefix: &[u8]) -> Result<usize> {
        forward!(self, b => b.delete_prefix(prefix))
    }

    fn snapshot_key_group(&self, key_group: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        forward!(self, b => b.snapshot_key_group(key_group))
    }

    fn track_changes(&mut self) -> bool {
        forward!(self, b => b.track_changes())
    }

    fn cut_changes(&mut self, checkpoint: u64, base: Option<u64>) -> Option<Vec<Change>> {
        forward!(self, b => b.cut_changes(checkpoint, base))
    }

    fn restore_key_group(&mut self, key_group: usize, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        forward!(self, b => b.restore_key_group(key_group, entries))
    }
}
