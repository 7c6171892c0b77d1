//! Rolling keyed aggregations: `reduce`, `sum`, `min`, `max` emit the updated value for a
//! key on every record (Flink's `KeyedStream.reduce/sum/min/max`).

use std::ops::AddAssign;

use eddy_core::{Record, Result};
use eddy_state::{KeyedEntries, NamespacedState, NamespacedStateDescriptor};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::keyed_operator::{Intake, KeyedHandler, KeyedOperator, Setup, Shell};
use crate::keyed_stream::{Key, KeyedStream};
use crate::state_codec::decode;
use crate::{Data, DataStream};

/// Each key's running value.
fn running<K, T>() -> NamespacedStateDescriptor<(), K, Option<T>> {
    NamespacedStateDescriptor::new("rolling")
}

/// The name eddy checkpointed running values under before the keyed-operator shell.
const LEGACY_RUNNING: &str = "running";

impl<T, K, F> KeyedStream<T, K, F>
where
    T: Data + Serialize + DeserializeOwned,
    K: Key,
    F: Fn(&T) -> K + Clone + Send + Sync + 'static,
{
    /// Combines each record with its key's running value and emits the result.
    pub fn reduce<R>(&self, reduce: R) -> DataStream<T>
    where
        R: Fn(T, T) -> T + Clone + Send + Sync + 'static,
    {
        let key_of = self.key_of.clone();
        self.transform_keyed("Reduce", move |ctx, out| {
            let setup = Setup { legacy: &[LEGACY_RUNNING], ..Setup::default() };
            let (key_of, reduce) = (key_of.clone(), reduce.clone());
            let operator = KeyedOperator::open(ctx, out, setup, |shell, legacy| {
                RollingHandler::open(key_of, reduce, shell, legacy)
            })?;
            Ok(Box::new(operator))
        })
    }

    /// Running sum of the field `field` selects; other fields keep the key's first record.
    pub fn sum<V, L>(&self, field: L) -> DataStream<T>
    where
        V: AddAssign + Copy,
        L: Fn(&mut T) -> &mut V + Clone + Send + Sync + 'static,
    {
        self.reduce(sum_field(field))
    }

    /// Running minimum of the field `field` selects; other fields keep the key's first record.
    pub fn min<V, L>(&self, field: L) -> DataStream<T>
    where
        V: PartialOrd + Copy + 'static,
        L: Fn(&mut T) -> &mut V + Clone + Send + Sync + 'static,
    {
        self.reduce(keep_field(field, |candidate, current| candidate < current))
    }

    /// Running maximum of the field `field` selects; other fields keep the key's first record.
    pub fn max<V, L>(&self, field: L) -> DataStream<T>
    where
        V: PartialOrd + Copy + 'static,
        L: Fn(&mut T) -> &mut V + Clone + Send + Sync + 'static,
    {
        self.reduce(keep_field(field, |candidate, current| candidate > current))
    }
}

/// A reduce function adding `next`'s field into `acc`'s (Flink's field-wise `sum`).
pub(crate) fn sum_field<T, V, L>(field: L) -> impl Fn(T, T) -> T + Clone + Send + Sync + 'static
where
    V: AddAssign + Copy,
    L: Fn(&mut T) -> &mut V + Clone + Send + Sync + 'static,
{
    move |mut acc, mut next| {
        *field(&mut acc) += *field(&mut next);
        acc
    }
}

/// A reduce function replacing `acc`'s field by `next`'s when `replace(next, current)` says so.
fn keep_field<T, V, L>(field: L, replace: fn(V, V) -> bool) -> impl Fn(T, T) -> T + Clone + Send + Sync + 'static
where
    V: Copy + 'static,
    L: Fn(&mut T) -> &mut V + Clone + Send + Sync + 'static,
{
    move |mut acc, mut next| {
        let candidate = *field(&mut next);
        let current = field(&mut acc);
        if replace(candidate, *current) {
            *current = candidate;
        }
        acc
    }
}

/// Each key's running value, in keyed state (an `Option` while a record is folded in).
struct RollingHandler<K, F, R, T> {
    key_of: F,
    reduce: R,
    running: NamespacedState<(), K, Option<T>>,
}

impl<K: Key, F, R, T: Data + Serialize + DeserializeOwned> RollingHandler<K, F, R, T> {
    /// Opens the running values, adding those of a snapshot written by eddy before the
    /// keyed-operator shell (`legacy`: `(key group, bincode(key), bincode(value))`).
    fn open(key_of: F, reduce: R, shell: &mut Shell<T>, legacy: Vec<KeyedEntries>) -> Result<Self> {
        let running = shell.store.namespaced_state(&running()).map_err(|e| shell.state_error(e))?;
        for (_, key, value) in legacy.into_iter().flat_map(|state| state.entries) {
            let (key, value): (K, T) = (decode(&key)?, decode(&value)?);
            running.put(&shell.store, &(), &key, Some(value)).map_err(|e| shell.state_error(e))?;
        }
        Ok(RollingHandler { key_of, reduce, running })
    }
}

impl<T, K, F, R> KeyedHandler<T, T> for RollingHandler<K, F, R, T>
where
    T: Data + Serialize + DeserializeOwned,
    K: Key,
    F: Fn(&T) -> K + Send,
    R: Fn(T, T) -> T + Send,
{
    fn on_record(&mut self, record: Record<T>, shell: &mut Shell<T>) -> Result<Intake<T>> {
        let key = (self.key_of)(&record.value);
        let reduce = &self.reduce;
        let updated = self.running.update(
            &shell.store,
            &(),
            &key,
            || None,
            |running, _| {
                let next = match running.take() {
                    Some(current) => reduce(current, record.value),
                    None => record.value,
                };
                *running = Some(next.clone());
                next
            },
        );
        let updated = updated.map_err(|e| shell.state_error(e))?;
        shell.output.emit(updated, record.timestamp);
        Ok(Intake::Taken)
    }
}
