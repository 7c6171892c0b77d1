//! Rolling keyed aggregations: `reduce`, `sum`, `min`, `max` emit the updated value for a
//! key on every record (Flink's `KeyedStream.reduce/sum/min/max`).

use std::ops::AddAssign;

use eddy_core::key::{key_group, KeyHasher};
use eddy_core::{Barrier, OperatorInfo, Output, Record, Result, Timestamp};
use eddy_runtime::checkpoint::StateContext;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::keyed_stream::{Key, KeyedStream};
use crate::keyed_table::KeyedTable;
use crate::state_codec::{decode, encode};
use crate::{Data, DataStream};

/// The checkpointed state of a rolling aggregation: each key's running value.
const RUNNING: &str = "running";

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
            let mut operator = RollingReduce {
                key_of: key_of.clone(),
                reduce: reduce.clone(),
                hasher: KeyHasher::default(),
                table: KeyedTable::default(),
                out,
                buffer: Vec::new(),
                info: ctx.info.clone(),
                state: ctx.state(),
            };
            operator.restore()?;
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

struct RollingReduce<T, K, F, R> {
    key_of: F,
    reduce: R,
    hasher: KeyHasher,
    table: KeyedTable<K, Option<T>>,
    out: Box<dyn Output<T>>,
    buffer: Vec<Record<T>>,
    info: OperatorInfo,
    state: Option<StateContext>,
}

impl<T: Serialize + DeserializeOwned, K: Key, F, R> RollingReduce<T, K, F, R> {
    fn restore(&mut self) -> Result<()> {
        let Some(state) = &self.state else { return Ok(()) };
        for (_, key, value) in state.restored_entries(RUNNING)? {
            let key: K = decode(&key)?;
            let hash = self.hasher.hash(&key)?;
            *self.table.get_or_insert_with(hash, &key, || None) = Some(decode(&value)?);
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<()> {
        let Some(state) = &self.state else { return Ok(()) };
        let max = state.max_parallelism();
        let mut entries = Vec::new();
        for (hash, key, value) in self.table.iter_hashed() {
            if let Some(value) = value {
                entries.push((key_group(hash, max) as u16, encode(&self.info, key)?, encode(&self.info, value)?));
            }
        }
        state.snapshot_keyed(RUNNING, entries);
        Ok(())
    }
}

impl<T, K, F, R> Output<T> for RollingReduce<T, K, F, R>
where
    T: Data + Serialize + DeserializeOwned,
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

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.out.watermark(watermark)
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.out.idle(idle)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.out.tick(now)
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.snapshot()?;
        self.out.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        self.out.finish()
    }
}
