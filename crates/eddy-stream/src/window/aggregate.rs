//! Incremental aggregation: a window keeps one accumulator per key, not its records.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Folds records into an accumulator (Flink's `AggregateFunction`). `merge` combines two
/// partial accumulators of the same key and window.
pub trait AggregateFunction<T>: Clone + Send + Sync + 'static {
    /// The running state (cloneable: partial accumulators travel between subtasks;
    /// serialisable: open windows are checkpointed).
    type Acc: Clone + Send + Serialize + DeserializeOwned + 'static;
    /// The result.
    type Out;
    /// A fresh accumulator.
    fn create_accumulator(&self) -> Self::Acc;
    /// Adds one record.
    fn add(&self, acc: &mut Self::Acc, value: T);
    /// The result of a finished accumulator.
    fn get_result(&self, acc: Self::Acc) -> Self::Out;
    /// Folds `other` into `acc`.
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);
}

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
