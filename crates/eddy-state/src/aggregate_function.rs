//! `AggregateFunction`: how values fold into an accumulator (Flink's `AggregateFunction`).
//!
//! One trait serves both places eddy aggregates: an [`AggregatingState`](crate::AggregatingState)
//! keeps one accumulator per key, and a window keeps one per key and window (eddy-stream's
//! windows re-export this trait). Accumulators are serde values, because both are
//! checkpointed, and cloneable, because a window's partial accumulators travel between
//! subtasks and a window that fires but stays open for allowed lateness keeps its own.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Folds values into an accumulator and reads a result from it (Flink's `AggregateFunction`).
/// `merge` combines two accumulators of the same key (and window): partial aggregates of one
/// window from several subtasks, or two session windows that came to overlap.
///
/// ```
/// use eddy_state::AggregateFunction;
///
/// /// The mean of the values seen.
/// #[derive(Clone)]
/// struct Average;
///
/// impl AggregateFunction<f64> for Average {
///     type Acc = (f64, u64);
///     type Out = f64;
///     fn create_accumulator(&self) -> (f64, u64) { (0.0, 0) }
///     fn add(&self, acc: &mut (f64, u64), value: f64) { acc.0 += value; acc.1 += 1; }
///     fn get_result(&self, acc: (f64, u64)) -> f64 { acc.0 / acc.1 as f64 }
///     fn merge(&self, acc: &mut (f64, u64), other: (f64, u64)) { acc.0 += other.0; acc.1 += other.1; }
/// }
///
/// let mut acc = Average.create_accumulator();
/// Average.add(&mut acc, 3.0);
/// let mut other = Average.create_accumulator();
/// Average.add(&mut other, 5.0);
/// Average.merge(&mut acc, other);
/// assert_eq!(Average.get_result(acc), 4.0);
/// ```
pub trait AggregateFunction<IN>: Clone + Send + Sync + 'static {
    /// The running state (serialisable: it is checkpointed; cloneable: see the module docs).
    type Acc: Clone + Send + Serialize + DeserializeOwned + 'static;
    /// The result.
    type Out;
    /// A fresh accumulator, for a key's (or window's) first value.
    fn create_accumulator(&self) -> Self::Acc;
    /// Adds one value.
    fn add(&self, acc: &mut Self::Acc, value: IN);
    /// The result of an accumulator.
    fn get_result(&self, acc: Self::Acc) -> Self::Out;
    /// Folds `other` into `acc`.
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);
}
