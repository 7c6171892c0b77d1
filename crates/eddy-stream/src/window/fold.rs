//! How a window operator folds its input: raw records through an aggregate function, raw
//! records into partial accumulators (pre-aggregation), or partial accumulators merged.

use std::time::Duration;

use eddy_core::Timestamp;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::window::aggregate::AggregateFunction;
use crate::window::assigner::{TumblingEventTimeWindows, WindowAssigner};
use crate::window::partial::Partial;
use crate::window::TimeWindow;

/// What a window operator does with each input record.
pub(crate) trait Fold<T>: Clone + Send + Sync + 'static {
    /// The per-key, per-window state (cloned when a window fires but stays open for
    /// allowed lateness).
    type Acc: Clone + Send + Serialize + DeserializeOwned + 'static;
    /// What a fired window yields (before the window function).
    type Out;
    /// Event time (watermarks fire windows) or processing time (the clock does).
    fn is_event_time(&self) -> bool;
    /// Whether a record's windows depend on its timestamp alone (so they can be reused for
    /// the next record with the same timestamp, such as every word of one line).
    fn windows_by_timestamp(&self) -> bool;
    /// Appends the windows of `value` at time `timestamp` to `out`.
    fn windows(&self, value: &T, timestamp: Timestamp, out: &mut Vec<TimeWindow>);
    /// A fresh accumulator.
    fn create(&self) -> Self::Acc;
    /// Folds one input into an accumulator.
    fn fold(&self, acc: &mut Self::Acc, value: T);
    /// The result of a finished accumulator.
    fn result(&self, acc: Self::Acc) -> Self::Out;
    /// How many original records `value` stands for.
    fn records(&self, value: &T) -> u64;
    /// Why this cannot run, if it cannot.
    fn validate(&self) -> Result<(), String>;
}

/// Raw records, aggregated with `G` into windows from `A`.
#[derive(Clone)]
pub(crate) struct Aggregate<A, G> {
    pub(crate) assigner: A,
    pub(crate) aggregate: G,
}

impl<T, A: WindowAssigner, G: AggregateFunction<T>> Fold<T> for Aggregate<A, G> {
    type Acc = G::Acc;
    type Out = G::Out;

    fn is_event_time(&self) -> bool {
        self.assigner.is_event_time()
    }
    fn windows_by_timestamp(&self) -> bool {
        true
    }
    fn windows(&self, _: &T, timestamp: Timestamp, out: &mut Vec<TimeWindow>) {
        out.extend(self.assigner.assign_windows(timestamp));
    }
    fn create(&self) -> G::Acc {
        self.aggregate.create_accumulator()
    }
    #[inline]
    fn fold(&self, acc: &mut G::Acc, value: T) {
        self.aggregate.add(acc, value);
    }
    fn result(&self, acc: G::Acc) -> G::Out {
        self.aggregate.get_result(acc)
    }
    fn records(&self, _: &T) -> u64 {
        1
    }
    fn validate(&self) -> Result<(), String> {
        self.assigner.validate()
    }
}

/// Raw records into partial accumulators per pane (the tumbling slices every window of `A`
/// is made of), counting their records: one update per record, however many windows.
#[derive(Clone)]
pub(crate) struct PreAggregate<A, G> {
    assigner: A,
    pane: TumblingEventTimeWindows,
    aggregate: G,
}

impl<A: WindowAssigner, G> PreAggregate<A, G> {
    pub(crate) fn new(assigner: A, aggregate: G) -> Self {
        let (size, offset) = assigner.pane();
        let millis = |ms: i64| Duration::from_millis(ms.max(0) as u64);
        let pane = TumblingEventTimeWindows::of(millis(size)).with_offset(millis(offset));
        PreAggregate { assigner, pane, aggregate }
    }
}

impl<T, A: WindowAssigner, G: AggregateFunction<T>> Fold<T> for PreAggregate<A, G> {
    type Acc = (G::Acc, u64);
    type Out = (G::Acc, u64);

    fn is_event_time(&self) -> bool {
        true
    }
    fn windows_by_timestamp(&self) -> bool {
        true
    }
    fn windows(&self, _: &T, timestamp: Timestamp, out: &mut Vec<TimeWindow>) {
        out.extend(self.pane.assign_windows(timestamp));
    }
    fn create(&self) -> Self::Acc {
        (self.aggregate.create_accumulator(), 0)
    }
    #[inline]
    fn fold(&self, acc: &mut Self::Acc, value: T) {
        self.aggregate.add(&mut acc.0, value);
        acc.1 += 1;
    }
    fn result(&self, acc: Self::Acc) -> Self::Out {
        acc
    }
    fn records(&self, _: &T) -> u64 {
        1
    }
    fn validate(&self) -> Result<(), String> {
        self.assigner.validate()
    }
}

/// Partial accumulators of panes merged into every window of `A` that holds the pane, per
/// key, then finished with `G`.
pub(crate) struct MergePartials<T, A, G> {
    pub(crate) assigner: A,
    pub(crate) aggregate: G,
    pub(crate) _input: std::marker::PhantomData<fn(T)>,
}

impl<T, A: Clone, G: Clone> Clone for MergePartials<T, A, G> {
    fn clone(&self) -> Self {
        let (assigner, aggregate) = (self.assigner.clone(), self.aggregate.clone());
        MergePartials { assigner, aggregate, _input: std::marker::PhantomData }
    }
}

impl<T: 'static, K, A: WindowAssigner, G: AggregateFunction<T>> Fold<Partial<K, G::Acc>> for MergePartials<T, A, G> {
    type Acc = G::Acc;
    type Out = G::Out;

    fn is_event_time(&self) -> bool {
        true
    }
    fn windows_by_timestamp(&self) -> bool {
        false
    }
    fn windows(&self, partial: &Partial<K, G::Acc>, _: Timestamp, out: &mut Vec<TimeWindow>) {
        // Panes align with window boundaries: every window holding the pane's start holds it all.
        out.extend(self.assigner.assign_windows(partial.window.start));
    }
    fn create(&self) -> G::Acc {
        self.aggregate.create_accumulator()
    }
    #[inline]
    fn fold(&self, acc: &mut G::Acc, partial: Partial<K, G::Acc>) {
        self.aggregate.merge(acc, partial.acc);
    }
    fn result(&self, acc: G::Acc) -> G::Out {
        self.aggregate.get_result(acc)
    }
    fn records(&self, partial: &Partial<K, G::Acc>) -> u64 {
        partial.records
    }
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}
