//! `AggregatingState`: one accumulator per key, fed with values, read as a result.

use std::marker::PhantomData;

use crate::aggregate_function::AggregateFunction;
use crate::backend::StateBackend;
use crate::descriptor::{AggregatingStateDescriptor, StateKind};
use crate::error::Result;
use crate::store::KeyedStateStore;

/// One accumulator of an [`AggregateFunction`] per key (Flink's `AggregatingState<IN, OUT>`;
/// `OUT` is `A::Out`).
///
/// ```
/// use eddy_state::{AggregateFunction, AggregatingStateDescriptor, HeapBackend, KeyedStateStore};
/// #[derive(Clone)]
/// struct Average;
/// impl AggregateFunction<f64> for Average {
///     type Acc = (f64, u64);
///     type Out = f64;
///     fn create_accumulator(&self) -> (f64, u64) { (0.0, 0) }
///     fn add(&self, acc: &mut (f64, u64), value: f64) { acc.0 += value; acc.1 += 1; }
///     fn get_result(&self, acc: (f64, u64)) -> f64 { acc.0 / acc.1 as f64 }
///     fn merge(&self, acc: &mut (f64, u64), other: (f64, u64)) { acc.0 += other.0; acc.1 += other.1; }
/// }
/// let store = KeyedStateStore::new(HeapBackend::new(128)?);
/// let average = AggregatingStateDescriptor::new("average", Average);
/// let average = store.aggregating_state(&average)?;
/// store.set_current_key("ride-42")?;
/// average.add(3.0)?;
/// average.add(5.0)?;
/// assert_eq!(average.get()?, Some(4.0));
/// # Ok::<(), eddy_state::StateError>(())
/// ```
pub struct AggregatingState<'s, IN, A, B> {
    store: &'s KeyedStateStore<B>,
    id: usize,
    aggregate: &'s A,
    _type: PhantomData<fn(IN)>,
}

impl<B: StateBackend> KeyedStateStore<B> {
    /// Opens an [`AggregatingState`]; the handle uses the descriptor's aggregate function.
    pub fn aggregating_state<'s, IN, A>(
        &'s self,
        descriptor: &'s AggregatingStateDescriptor<IN, A>,
    ) -> Result<AggregatingState<'s, IN, A, B>>
    where
        A: AggregateFunction<IN>,
    {
        let id = self.register(&descriptor.spec, StateKind::Aggregating, std::any::type_name::<A::Acc>())?;
        Ok(AggregatingState::new(self, id, &descriptor.aggregate))
    }
}

impl<'s, IN, A: AggregateFunction<IN>, B: StateBackend> AggregatingState<'s, IN, A, B> {
    pub(crate) fn new(store: &'s KeyedStateStore<B>, id: usize, aggregate: &'s A) -> Self {
        AggregatingState { store, id, aggregate, _type: PhantomData }
    }

    /// The result for the current key; `None` if nothing was added (or it expired).
    pub fn get(&self) -> Result<Option<A::Out>> {
        let acc = self.store.access(self.id, true, |access| access.read::<A::Acc>())?;
        Ok(acc.map(|acc| self.aggregate.get_result(acc)))
    }

    /// Adds `value` to the current key's accumulator (creating it first if needed).
    pub fn add(&self, value: IN) -> Result<()> {
        let stored = self.store.access(self.id, false, |access| access.read::<A::Acc>())?;
        // The aggregate function runs outside the store, so it may use state itself.
        let mut acc = stored.unwrap_or_else(|| self.aggregate.create_accumulator());
        self.aggregate.add(&mut acc, value);
        self.store.access(self.id, true, |access| access.write(&acc))
    }

    /// Removes the current key's accumulator.
    pub fn clear(&self) -> Result<()> {
        self.store.access(self.id, true, |access| access.delete())
    }
}
