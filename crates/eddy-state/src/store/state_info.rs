//! A registered state: what the store knows of each state opened from it (name, kind, type,
//! TTL), and where its incremental TTL cleanup goes on (see `crate::cleanup`).

use crate::backend::layout;
use crate::cell::CodecError;
use crate::descriptor::StateKind;
use crate::error::StateError;
use crate::ttl::StateTtlConfig;

/// A registered state.
#[derive(Debug)]
pub(crate) struct StateInfo {
    pub(crate) name: String,
    /// `name_len | name`, as it appears in every entry key.
    pub(crate) name_field: Vec<u8>,
    pub(crate) kind: StateKind,
    pub(crate) type_name: &'static str,
    pub(crate) ttl: Option<StateTtlConfig>,
    /// Where incremental TTL cleanup goes on.
    pub(crate) cursor: Cursor,
    /// For a namespaced state on the heap backend: its index in the store's typed tables.
    pub(crate) table: Option<usize>,
}

impl StateInfo {
    /// A codec failure of this state as a [`StateError`], naming the type being decoded.
    pub(crate) fn codec_error<T>(&self, error: CodecError) -> StateError {
        match error {
            CodecError::Decode(source) => {
                StateError::Decode { state: self.name.clone(), type_name: std::any::type_name::<T>(), source }
            }
            CodecError::Corrupted(reason) => StateError::Corrupted { state: self.name.clone(), reason },
        }
    }

    /// An encoding failure of this state as a [`StateError`].
    pub(crate) fn encode_error(&self, source: bincode::error::EncodeError) -> StateError {
        StateError::Encode { state: self.name.clone(), source }
    }

    /// `key_group | name_len | name`.
    pub(crate) fn prefix(&self, key_group: usize) -> Vec<u8> {
        let mut prefix = Vec::with_capacity(layout::KEY_GROUP_BYTES + self.name_field.len());
        prefix.extend_from_slice(&layout::key_group_prefix(key_group));
        prefix.extend_from_slice(&self.name_field);
        prefix
    }
}

/// Where a state's incremental cleanup goes on: a key group and the last entry checked.
#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    pub(crate) key_group: usize,
    pub(crate) after: Option<Vec<u8>>,
}

impl Cursor {
    /// A cursor at the start of `key_group`.
    pub(crate) fn new(key_group: usize) -> Self {
        Cursor { key_group, after: None }
    }
}
