//! `ListState<T>`: a list per key, appended to cheaply.

use std::borrow::Borrow;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::backend::StateBackend;
use crate::descriptor::{ListStateDescriptor, StateKind};
use crate::error::Result;
use crate::store::KeyedStateStore;

/// A list of `T` per key (Flink's `ListState`), for the store's current key.
///
/// `add` appends the new element's bytes to the stored list without reading it; `get`
/// decodes the whole list. With a TTL, every element has its own timestamp and expires on
/// its own.
///
/// ```
/// use eddy_state::{HeapBackend, KeyedStateStore, ListStateDescriptor};
/// let store = KeyedStateStore::new(HeapBackend::new(128)?);
/// let seen = store.list_state(&ListStateDescriptor::<u32>::new("seen"))?;
/// store.set_current_key("sensor-1")?;
/// seen.add(3)?;
/// seen.add_all([1, 4])?;
/// assert_eq!(seen.get()?, vec![3, 1, 4]);
/// seen.update(vec![9])?;
/// assert_eq!(seen.get()?, vec![9]);
/// # Ok::<(), eddy_state::StateError>(())
/// ```
pub struct ListState<'s, T, B> {
    store: &'s KeyedStateStore<B>,
    id: usize,
    _type: PhantomData<fn() -> T>,
}

impl<B: StateBackend> KeyedStateStore<B> {
    /// Opens a [`ListState`].
    pub fn list_state<T>(&self, descriptor: &ListStateDescriptor<T>) -> Result<ListState<'_, T, B>>
    where
        T: Serialize + DeserializeOwned,
    {
        let id = self.register(&descriptor.spec, StateKind::List, std::any::type_name::<T>())?;
        Ok(ListState::new(self, id))
    }
}

impl<'s, T: Serialize + DeserializeOwned, B: StateBackend> ListState<'s, T, B> {
    pub(crate) fn new(store: &'s KeyedStateStore<B>, id: usize) -> Self {
        ListState { store, id, _type: PhantomData }
    }

    /// The current key's elements in insertion order (empty if none).
    pub fn get(&self) -> Result<Vec<T>> {
        self.store.access(self.id, true, |access| access.read_list())
    }

    /// Appends one element (accepts `T` or `&T`).
    pub fn add(&self, value: impl Borrow<T>) -> Result<()> {
        self.store.access(self.id, true, |access| access.append([value.borrow()]))
    }

    /// Appends elements in order.
    pub fn add_all<I>(&self, values: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        // Collected first: the caller's iterator runs before the store is entered.
        let values: Vec<I::Item> = values.into_iter().collect();
        self.store.access(self.id, true, |access| access.append(values.iter().map(Borrow::borrow)))
    }

    /// Replaces the list (an empty list clears it).
    pub fn update<I>(&self, values: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Borrow<T>,
    {
        let values: Vec<I::Item> = values.into_iter().collect();
        self.store.access(self.id, true, |access| access.replace_list(values.iter().map(Borrow::borrow)))
    }

    /// Removes the current key's list.
    pub fn clear(&self) -> Result<()> {
        self.store.access(self.id, true, |access| access.delete())
    }
}
