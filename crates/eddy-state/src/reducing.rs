//! `ReducingState<T>`: one value per key, folded with a reduce function as values are added.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::backend::StateBackend;
use crate::descriptor::{ReducingStateDescriptor, StateKind};
use crate::error::Result;
use crate::store::KeyedStateStore;

/// One `T` per key that `add` folds new values into with the descriptor's reduce function
/// (Flink's `ReducingState`).
///
/// ```
/// use eddy_state::{HeapBackend, KeyedStateStore, ReducingStateDescriptor};
/// let store = KeyedStateStore::new(HeapBackend::new(128)?);
/// let max = ReducingStateDescriptor::new("max", |a: i64, b: i64| a.max(b));
/// let max = store.reducing_state(&max)?;
/// store.set_current_key("room-3")?;
/// for reading in [21, 25, 19] {
///     max.add(reading)?;
/// }
/// assert_eq!(max.get()?, Some(25));
/// # Ok::<(), eddy_state::StateError>(())
/// ```
pub struct ReducingState<'s, T, F, B> {
    store: &'s KeyedStateStore<B>,
    id: usize,
    reduce: &'s F,
    _type: PhantomData<fn() -> T>,
}

impl<B: StateBackend> KeyedStateStore<B> {
    /// Opens a [`ReducingState`]; the handle uses the descriptor's reduce function.
    pub fn reducing_state<'s, T, F>(
        &'s self,
        descriptor: &'s ReducingStateDescriptor<T, F>,
    ) -> Result<ReducingState<'s, T, F, B>>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(T, T) -> T,
    {
        let id = self.register(&descriptor.spec, StateKind::Reducing, std::any::type_name::<T>())?;
        Ok(ReducingState::new(self, id, &descriptor.reduce))
    }
}

impl<'s, T, F, B> ReducingState<'s, T, F, B>
where
    T: Serialize + DeserializeOwned,
    F: Fn(T, T) -> T,
    B: StateBackend,
{
    pub(crate) fn new(store: &'s KeyedStateStore<B>, id: usize, reduce: &'s F) -> Self {
        ReducingState { store, id, reduce, _type: PhantomData }
    }

    /// The current key's folded value; `None` if nothing was added (or it expired).
    pub fn get(&self) -> Result<Option<T>> {
        self.store.access(self.id, true, |access| access.read())
    }

    /// Folds `value` into the current key's value: `reduce(stored, value)`, or `value` itself
    /// when nothing is stored.
    pub fn add(&self, value: T) -> Result<()> {
        let stored = self.store.access(self.id, false, |access| access.read::<T>())?;
        // The reduce function runs outside the store, so it may use state itself.
        let folded = match stored {
            Some(stored) => (self.reduce)(stored, value),
            None => value,
        };
        self.store.access(self.id, true, |access| access.write(&folded))
    }

    /// Removes the current key's value.
    pub fn clear(&self) -> Result<()> {
        self.store.access(self.id, true, |access| access.delete())
    }
}
