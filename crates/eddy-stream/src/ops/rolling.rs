//! Rolling keyed aggregations: `reduce`, `sum`, `min`, `max` emit the updated value for a
//! key on every record (Flink's `KeyedStream.reduce/sum/min/max`).

use std::ops::AddAssign;

use eddy_core::key::KeyHasher;
use eddy_core::{OperatorInfo, Output, Record, Result};

use crate::keyed_stream::{Key, KeyedStream};
use crate::keyed_table::KeyedTable;
use crate::node::forward_control;
use crate::{Data, DataStream};

impl<T, K, F> KeyedStream<T, K, F>
where
    T: Data,
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
            Ok(Box::new(RollingReduce {
                key_of: key_of.clone(),
                reduce: reduce.clone(),
                hasher: KeyHasher::default(),
                table: KeyedTable::default(),
                out,
                buffer: Vec::new(),
                info: ctx.info.clone(),
            }))
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

struct RollingReduce<T, K, F, R> {
    key_of: F,
    reduce: R,
    hasher: KeyHasher,
    table: KeyedTable<K, Option<T>>,
    out: Box<dyn Output<T>>,
    buffer: Vec<Record<T>>,
    info: OperatorInfo,
}

impl<T, K, F, R> Output<T> for RollingReduce<T, K, F, R>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K + Send,
    R: Fn(T, T) -> T + Send,
{
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let this = &mut *self;
        this.info.guard(|| -> Result<()> {
            for record in batch.drain(..) {
                let key = (this.key_of)(&record.value);
                let hash = this.hasher.hash(&key)?;
                let slot = this.table.get_or_insert_with(hash, &key, || None);
                let value = match slot.take() {
                    Some(current) => (this.reduce)(current, record.value),
                    None => record.value,
                };
                *slot = Some(value.clone());
                this.buffer.push(Record::new(value, record.timestamp));
            }
            Ok(())
        })??;
        self.out.records(&mut self.buffer)
    }
    forward_control!();
}
