//! Incremental aggregation: a window keeps one accumulator per key, not its records. The
//! [`AggregateFunction`] trait is eddy-state's (the same one aggregating state uses); this
//! module adds the common ones.

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use eddy_state::AggregateFunction;

/// Counts records.
#[derive(Debug, Clone, Copy, Default)]
pub struct Count;

impl<T> AggregateFunction<T> for Count {
    type Acc = u64;
    type Out = u64;

    fn create_accumulator(&self) -> u64 {
        0
    }

    #[inline]
    fn add(&self, acc: &mut u64, _: T) {
        *acc += 1;
    }

    fn get_result(&self, acc: u64) -> u64 {
        acc
    }

    fn merge(&self, acc: &mut u64, other: u64) {
        *acc += other;
    }
}

/// Reduces records pairwise with a function (Flink's `ReduceFunction` as an aggregate).
#[derive(Debug, Clone, Copy)]
pub struct ReduceAggregate<R>(pub R);

impl<T, R> AggregateFunction<T> for ReduceAggregate<R>
where
    T: Clone + Send + Serialize + DeserializeOwned + 'static,
    R: Fn(T, T) -> T + Clone + Send + Sync + 'static,
{
    type Acc = Option<T>;
    type Out = T;

    fn create_accumulator(&self) -> Option<T> {
        None
    }

    #[inline]
    fn add(&self, acc: &mut Option<T>, value: T) {
        *acc = Some(match acc.take() {
            Some(current) => (self.0)(current, value),
            None => value,
        });
    }

    fn get_result(&self, acc: Option<T>) -> T {
        acc.expect("a window's accumulator is created by its first record")
    }

    fn merge(&self, acc: &mut Option<T>, other: Option<T>) {
        if let Some(value) = other {
            self.add(acc, value);
        }
    }
}
