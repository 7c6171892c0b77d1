//! `WindowedStream`: a keyed stream cut into windows, waiting for an aggregation.

use eddy_core::time::duration_ms;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use std::ops::AddAssign;
use std::time::Duration;

use crate::keyed_operator::{KeyedOperator, Setup};
use crate::keyed_stream::{Key, KeyedStream};
use crate::ops::rolling::sum_field;
use crate::repartitioned::bincode_mark;
use crate::side_output::OutputTag;
use crate::window::aggregate::{AggregateFunction, ReduceAggregate};
use crate::window::assigner::WindowAssigner;
use crate::window::fold::{Aggregate, MergePartials, PreAggregate};
use crate::window::lateness::Lateness;
use crate::window::operator::{holds_windows, WindowHandler, LEGACY_WINDOWS};
use crate::window::pre_aggregate::PreAggregateOperator;
use crate::window::session::{SessionHandler, LEGACY_SESSIONS};
use crate::window::sliding::{Slides, SlidingHandler, SlidingStage};
use crate::window::trigger::{DefaultTrigger, Trigger};
use crate::window::triggered::{self, TriggeredHandler};
use crate::window::{Partial, TimeWindow};
use crate::{Data, DataStream};

/// A keyed stream with a window assigner; aggregate it to get one result per key and window.
pub struct WindowedStream<T, K, F, A, Tr = DefaultTrigger> {
    keyed: KeyedStream<T, K, F>,
    assigner: A,
    lateness: Lateness<T>,
    trigger: Tr,
}

impl<T: Clone, K, F: Clone, A: Clone, Tr: Clone> Clone for WindowedStream<T, K, F, A, Tr> {
    fn clone(&self) -> Self {
        WindowedStream {
            keyed: self.keyed.clone(),
            assigner: self.assigner.clone(),
            lateness: self.lateness.clone(),
            trigger: self.trigger.clone(),
        }
    }
}

impl<T, K, F> KeyedStream<T, K, F>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K + Clone + Send + Sync + 'static,
{
    /// Groups each key's records into the windows `assigner` gives them.
    ///
    /// ```
    /// use std::time::Duration;
    /// use eddy_stream::prelude::*;
    /// let env = StreamEnvironment::new();
    /// env.set_parallelism(1); // one subtask keeps the output in input order
    /// let counts = env
    ///     .from_iter(vec![(100i64, 'a'), (200, 'a'), (5_100, 'a')])
    ///     .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |e| e.0)
    ///     .key_by(|e| e.1)
    ///     .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
    ///     .aggregate_with(Count, |key, window, n| (*key, window.start, n))
    ///     .collect();
    /// env.execute("counts").unwrap().wait().unwrap();
    /// assert_eq!(counts.take(), vec![('a', 0, 2), ('a', 5_000, 1)]);
    /// ```
    pub fn window<A: WindowAssigner>(&self, assigner: A) -> WindowedStream<T, K, F, A> {
        WindowedStream { keyed: self.clone(), assigner, lateness: Lateness::default(), trigger: DefaultTrigger }
    }
}

impl<T, K, F, A, Tr> WindowedStream<T, K, F, A, Tr>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K + Clone + Send + Sync + 'static,
    A: WindowAssigner,
    Tr: Trigger<T>,
{
    /// Fires the windows with `trigger` instead of the assigner's own (Flink's `trigger`):
    /// count-based, continuous early firings, purging, or your own. The window then runs as
    /// one keyed stage, since the trigger sees every record.
    pub fn trigger<Tr2: Trigger<T>>(self, trigger: Tr2) -> WindowedStream<T, K, F, A, Tr2> {
        let WindowedStream { keyed, assigner, lateness, .. } = self;
        WindowedStream { keyed, assigner, lateness, trigger }
    }

    /// Keeps each event-time window open for `lateness` after it fired (Flink's
    /// `allowedLateness`): a record arriving then is added and its key's window fires again
    /// with the updated result. Records after that are dropped (and counted), or sent to
    /// [`side_output_late_data`](Self::side_output_late_data).
    pub fn allowed_lateness(self, lateness: Duration) -> Self {
        WindowedStream { lateness: Lateness { allowed: duration_ms(lateness), ..self.lateness }, ..self }
    }

    /// Sends records that come too late for their windows to the side output `tag` instead of
    /// dropping them (read it with `side_output(&tag)` on the aggregated stream). Such a
    /// window runs as one keyed stage, since the pre-aggregation would fold the records away.
    pub fn side_output_late_data(self, tag: &OutputTag<T>) -> Self {
        WindowedStream { lateness: Lateness { side_output: Some(tag.clone()), ..self.lateness }, ..self }
    }

    /// Folds each window incrementally with `aggregate` and emits `window_fn(key, window,
    /// result)` when the window fires, with the window's max timestamp as event time.
    ///
    /// Event-time windows run in two stages (local/global aggregation): each upstream subtask
    /// pre-aggregates its records per key and pane (the window itself when tumbling,
    /// gcd(size, slide) when sliding, so a record costs one update however many windows hold
    /// it), and only those partial accumulators cross to the keyed stage, which merges them
    /// into its windows and decides lateness exactly as a single stage would. At parallelism 1
    /// both stages run in one thread.
    pub fn aggregate_with<G, W, O>(&self, aggregate: G, window_fn: W) -> DataStream<O>
    where
        G: AggregateFunction<T>,
        W: Fn(&K, TimeWindow, G::Out) -> O + Clone + Send + Sync + 'static,
        O: Data,
    {
        let key_of = self.keyed.key_of.clone();
        let lateness = self.lateness.clone();
        if !self.trigger.is_default() {
            let (assigner, trigger) = (self.assigner.clone(), self.trigger.clone());
            return self.keyed.transform_keyed("Window", move |ctx, out| {
                let parts = (key_of.clone(), assigner.clone(), aggregate.clone(), trigger.clone(), window_fn.clone());
                let setup = Setup { late: lateness.side_output.clone(), legacy: &[triggered::LEGACY_WINDOWS] };
                let allowed = lateness.allowed;
                let operator = KeyedOperator::open(ctx, out, setup, |shell, legacy| {
                    TriggeredHandler::open(parts, allowed, shell, legacy)
                })?;
                Ok(Box::new(operator))
            });
        }
        if let Some(gap) = self.assigner.session_gap() {
            let event_time = self.assigner.is_event_time();
            return self.keyed.transform_keyed("SessionWindow", move |ctx, out| {
                let parts = (key_of.clone(), aggregate.clone(), window_fn.clone());
                let setup = Setup { late: lateness.side_output.clone(), legacy: &[LEGACY_SESSIONS] };
                let timing = (gap, event_time, lateness.allowed);
                let operator = KeyedOperator::open(ctx, out, setup, |shell, legacy| {
                    SessionHandler::open(parts, timing, shell, legacy)
                })?;
                Ok(Box::new(operator))
            });
        }
        if !self.assigner.is_event_time() || self.lateness.side_output.is_some() {
            let fold = Aggregate { assigner: self.assigner.clone(), aggregate };
            return self.keyed.transform_keyed("Window", move |ctx, out| {
                let parts = (key_of.clone(), fold.clone(), window_fn.clone());
                let setup = Setup { late: lateness.side_output.clone(), legacy: &[LEGACY_WINDOWS] };
                let operator = KeyedOperator::open(ctx, out, setup, |shell, legacy| {
                    WindowHandler::open(parts, lateness.allowed, shell, legacy)
                })?;
                Ok(Box::new(operator))
            });
        }
        let pre = PreAggregate::new(self.assigner.clone(), aggregate.clone());
        let to_partial = |key: &K, window, (acc, records)| Partial { key: key.clone(), window, acc, records };
        let partials = self.keyed.stream.pre_stage("Window", move |ctx, out| {
            Ok(Box::new(PreAggregateOperator::new(ctx, pre.clone(), key_of.clone(), to_partial, out)?))
        });
        let allowed = self.lateness.allowed;
        // A marked key_by is cut after the pre-aggregation: the partials cross under its name.
        let mark = self.keyed.repartition.as_ref().map(|m| bincode_mark::<Partial<K, G::Acc>>(&m.name));
        // Overlapping sliding windows slide over each key's panes; with allowed lateness,
        // fired windows stay open, so each pane is merged into its windows instead.
        let slides = self.assigner.sliding().filter(|&(size, slide, _)| size > slide && allowed == 0).map(Slides::new);
        if let Some(slides) = slides {
            let assigner = self.assigner.clone();
            let merged = partials
                .key_by(|p: &Partial<K, G::Acc>| p.key.clone())
                .with_mark(mark.clone())
                .transform_keyed("Window", move |ctx, out| {
                    let (assigner, aggregate, window_fn) = (assigner.clone(), aggregate.clone(), window_fn.clone());
                    let setup = Setup { late: None, legacy: &[LEGACY_WINDOWS] };
                    let operator = KeyedOperator::open(ctx, out, setup, |shell, legacy| {
                        if holds_windows::<K, G::Acc, O>(shell, &legacy)? {
                            let merge = MergePartials { assigner, aggregate, _input: PhantomData };
                            let parts = (|p: &Partial<K, G::Acc>| p.key.clone(), merge, window_fn);
                            return WindowHandler::open(parts, 0, shell, legacy).map(SlidingStage::Windows);
                        }
                        SlidingHandler::open(aggregate, window_fn, slides, shell).map(SlidingStage::Panes)
                    })?;
                    Ok(Box::new(operator))
                });
            partials.stage_of(&merged);
            return merged;
        }
        let merge = MergePartials { assigner: self.assigner.clone(), aggregate, _input: PhantomData };
        let merged = partials.key_by(|p: &Partial<K, G::Acc>| p.key.clone()).with_mark(mark).transform_keyed(
            "Window",
            move |ctx, out| {
                let key_of = |p: &Partial<K, G::Acc>| p.key.clone();
                let parts = (key_of, merge.clone(), window_fn.clone());
                let setup = Setup { late: None, legacy: &[LEGACY_WINDOWS] };
                let operator = KeyedOperator::open(ctx, out, setup, |shell, legacy| {
                    WindowHandler::open(parts, allowed, shell, legacy)
                })?;
                Ok(Box::new(operator))
            },
        );
        partials.stage_of(&merged);
        merged
    }

    /// Folds each window with `aggregate` and emits its result.
    pub fn aggregate<G>(&self, aggregate: G) -> DataStream<G::Out>
    where
        G: AggregateFunction<T>,
        G::Out: Data,
    {
        self.aggregate_with(aggregate, |_, _, result| result)
    }

    /// Reduces each window pairwise with `reduce` and emits `window_fn(key, window, result)`.
    pub fn reduce_with<R, W, O>(&self, reduce: R, window_fn: W) -> DataStream<O>
    where
        T: Serialize + DeserializeOwned,
        R: Fn(T, T) -> T + Clone + Send + Sync + 'static,
        W: Fn(&K, TimeWindow, T) -> O + Clone + Send + Sync + 'static,
        O: Data,
    {
        self.aggregate_with(ReduceAggregate(reduce), window_fn)
    }

    /// Reduces each window pairwise with `reduce` and emits the result.
    pub fn reduce<R>(&self, reduce: R) -> DataStream<T>
    where
        T: Serialize + DeserializeOwned,
        R: Fn(T, T) -> T + Clone + Send + Sync + 'static,
    {
        self.reduce_with(reduce, |_, _, result| result)
    }

    /// Sums the field `field` selects over each window; other fields keep the first record's.
    pub fn sum<V, L>(&self, field: L) -> DataStream<T>
    where
        T: Serialize + DeserializeOwned,
        V: AddAssign + Copy,
        L: Fn(&mut T) -> &mut V + Clone + Send + Sync + 'static,
    {
        self.reduce(sum_field(field))
    }
}
