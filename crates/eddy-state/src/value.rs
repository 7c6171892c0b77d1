//! `ValueState<T>`: one value per key.

use std::borrow::Borrow;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::backend::StateBackend;
use crate::descriptor::{StateKind, ValueStateDescriptor};
use crate::error::Result;
use crate::store::KeyedStateStore;

/// One `T` per key (Flink's `ValueState`), for the store's current key.
///
/// ```
/// use eddy_state::{HeapBackend, KeyedStateStore, ValueStateDescriptor};
/// let store = KeyedStateStore::new(HeapBackend::new(128)?);
/// let last_seen = store.value_state(&ValueStateDescriptor::<String>::new("last-seen"))?;
/// store.set_current_key(&7u32)?;
/// last_seen.update("pear".to_string())?;
/// assert_eq!(last_seen.value()?.as_deref(), Some("pear"));
/// last_seen.clear()?;
/// assert_eq!(last_seen.value()?, None);
/// # Ok::<(), eddy_state::StateError>(())
/// ```
pub struct ValueState<'s, T, B> {
    store: &'s KeyedStateStore<B>,
    id: usize,
    _type: PhantomData<fn() -> T>,
}

impl<B: StateBackend> KeyedStateStore<B> {
    /// Opens a [`ValueState`].
    pub fn value_state<T>(&self, descriptor: &ValueStateDescriptor<T>) -> Result<ValueState<'_, T, B>>
    where
        T: Serialize + DeserializeOwned,
    {
        let id = self.register(&descriptor.spec, StateKind::Value, std::any::type_name::<T>())?;
        Ok(ValueState::new(self, id))
    }
}

impl<'s, T: Serialize + DeserializeOwned, B: StateBackend> ValueState<'s, T, B> {
    pub(crate) fn new(store: &'s KeyedStateStore<B>, id: usize) -> Self {
        ValueState { store, id, _type: PhantomData }
    }

    /// The current key's value; `None` if it has none (or it expired).
    pub fn value(&self) -> Result<Option<T>> {
        self.store.access(self.id, true, |access| access.read())
    }

    /// Sets the current key's value (accepts `T` or `&T`).
    pub fn update(&self, value: impl Borrow<T>) -> Result<()> {
        self.store.access(self.id, true, |access| access.write(value.borrow()))
    }

    /// Removes the current key's value.
    pub fn clear(&self) -> Result<()> {
        self.store.access(self.id, true, |access| access.delete())
    }
}
