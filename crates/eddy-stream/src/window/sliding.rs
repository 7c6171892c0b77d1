//! The keyed stage of event-time sliding windows: it keeps each key's panes (the partial
//! accumulators the pre-aggregation sends) and slides every key's window over them, so a
//! partial costs one update and a fired window one O(1) amortised step per key, however many
//! panes a window holds ([`PaneQueue`]).
//!
//! The alternative, merging each pane into each of the `size / slide` windows that hold it
//! (what [`WindowHandler`](super::operator::WindowHandler) does with any window), costs 3,600
//! merges per partial for a 1 h window sliding every second.
//!
//! Windows are numbered: window `k` is `[offset + k·slide, offset + k·slide + size)`,
//! clipped to the time line as the assigner clips it. Every key's queue is one value of a
//! namespaced state with a single namespace, so firing window `k` is one visit of every key
//! in the subtask's state; a key whose panes all lie before window `k + 1` leaves the state.
//! The handler keeps in memory only the pane starts that some key holds and the last window
//! done, both rebuilt from the queues after a restore. A queue remembers the last window
//! computed for its key, so after a restore that merges subtasks which had fired different
//! windows no key emits a window twice.
//!
//! A partial is late when every window holding its pane is due (its max timestamp is at
//! most the watermark), as with one window at a time. Allowed lateness keeps fired windows
//! open, which this stage does not do: such windows run in the window-at-a-time handler.

use std::collections::BTreeSet;

use eddy_core::{Record, Result, Timestamp};
use eddy_state::{NamespacedState, NamespacedStateDescriptor, TimeDomain};

use crate::keyed_operator::{Intake, KeyedHandler, Shell, VisitError};
use crate::keyed_stream::Key;
use crate::window::aggregate::AggregateFunction;
use crate::window::pane_queue::{PaneQueue, NO_WINDOW};
use crate::window::{Partial, TimeWindow};

/// Every key's queue, under one namespace.
fn queues<K, Acc>() -> NamespacedStateDescriptor<u8, K, PaneQueue<Acc>> {
    NamespacedStateDescriptor::new("sliding-panes")
}

/// The one namespace.
const ALL: u8 = 0;

/// Sliding windows by number: `(size, slide, offset)` in ms, in `i128` so no bound
/// overflows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slides {
    size: i128,
    slide: i128,
    offset: i128,
}

impl Slides {
    /// The windows of a sliding assigner ([`WindowAssigner::sliding`](super::WindowAssigner::sliding)).
    pub(crate) fn new((size, slide, offset): (i64, i64, i64)) -> Self {
        Slides { size: size.into(), slide: slide.into(), offset: offset.into() }
    }

    /// Window `k`'s start, unclipped.
    fn start(&self, k: i128) -> i128 {
        self.offset.saturating_add(k.saturating_mul(self.slide))
    }

    /// Window `k`'s bounds, unclipped (none for [`NO_WINDOW`]).
    fn bounds(&self, k: i128) -> (i128, i128) {
        if k == NO_WINDOW {
            return (i128::MIN, i128::MIN);
        }
        let start = self.start(k);
        (start, start.saturating_add(self.size))
    }

    /// Window `k` as the assigner makes it.
    fn window(&self, k: i128) -> TimeWindow {
        let clip = |bound: i128| bound.clamp(i64::MIN.into(), i64::MAX.into()) as i64;
        let (start, end) = self.bounds(k);
        TimeWindow::new(clip(start), clip(end))
    }

    /// The first window holding the pane that starts at `pane`.
    fn first_holding(&self, pane: i64) -> i128 {
        (i128::from(pane) - self.size - self.offset).div_euclid(self.slide) + 1
    }

    /// The last window that is due when time reaches `time`.
    fn last_due(&self, time: Timestamp) -> i128 {
        if time >= i64::MAX - 1 {
            // Windows clipped at the end of the time line end at i64::MAX: all are due.
            return i128::MAX;
        }
        (i128::from(time) + 1 - self.size - self.offset).div_euclid(self.slide)
    }
}

/// The keyed stage's handler.
pub(crate) struct SlidingHandler<K, G: AggregateFunction<T>, W, T> {
    aggregate: G,
    window_fn: W,
    slides: Slides,
    queues: NamespacedState<u8, K, PaneQueue<G::Acc>>,
    /// The starts of the panes some key holds.
    live: BTreeSet<i64>,
    /// Every window up to this one is done ([`NO_WINDOW`]: none yet).
    done: i128,
    /// Keys whose last window is done, to remove after a visit.
    finished: Vec<K>,
    _input: std::marker::PhantomData<fn(T)>,
}

impl<K, G, W, O, T> SlidingHandler<K, G, W, T>
where
    K: Key,
    G: AggregateFunction<T>,
    W: Fn(&K, TimeWindow, G::Out) -> O,
    O: Send,
    T: 'static,
{
    /// Opens the queues and rebuilds what the handler keeps in memory from them.
    pub(crate) fn open(aggregate: G, window_fn: W, slides: Slides, shell: &mut Shell<O>) -> Result<Self> {
        let store = &shell.store;
        let queues = store.namespaced_state(&queues()).map_err(|e| shell.state_error(e))?;
        let (mut live, mut done) = (BTreeSet::new(), None::<i128>);
        let visit = queues.update_namespace(store, &ALL, |_, queue: &mut PaneQueue<G::Acc>| {
            live.extend(queue.starts());
            done = Some(done.map_or(queue.at, |d| d.min(queue.at)));
            Ok::<_, VisitError>(())
        });
        shell.visited(visit)?;
        let done = done.unwrap_or(NO_WINDOW);
        Ok(SlidingHandler {
            aggregate,
            window_fn,
            slides,
            queues,
            live,
            done,
            finished: Vec::new(),
            _input: std::marker::PhantomData,
        })
    }

    /// Fires every window that holds a pane and is due at `time`, in order.
    fn fire_until(&mut self, time: Timestamp, shell: &mut Shell<O>) -> Result<()> {
        let due = self.slides.last_due(time);
        while let Some(&first) = self.live.first() {
            let k = self.slides.first_holding(first).max(self.done.saturating_add(1));
            if k > due {
                break;
            }
            self.fire(k, shell)?;
            self.done = k;
            let next = self.slides.start(k.saturating_add(1));
            while self.live.first().is_some_and(|&start| i128::from(start) < next) {
                self.live.pop_first();
            }
        }
        self.done = self.done.max(due);
        Ok(())
    }

    /// Fires window `k` for every key that has not computed it yet.
    fn fire(&mut self, k: i128, shell: &mut Shell<O>) -> Result<()> {
        let (aggregate, window_fn, slides) = (&self.aggregate, &self.window_fn, self.slides);
        let (window, bounds, next) = (slides.window(k), slides.bounds(k), slides.start(k.saturating_add(1)));
        let merge = |acc: &mut G::Acc, other| aggregate.merge(acc, other);
        let (output, finished) = (&mut shell.output, &mut self.finished);
        let visit = self.queues.update_namespace(&shell.store, &ALL, |key, queue| {
            if queue.at >= k {
                return Ok(());
            }
            queue.at = k;
            if let Some(acc) = queue.slide(bounds, merge) {
                output.emit(window_fn(key, window, aggregate.get_result(acc)), window.max_timestamp());
            }
            if queue.newest() == i128::MAX || queue.newest() < next {
                finished.push(key.clone());
            }
            Ok::<_, VisitError>(output.flush_if_full()?)
        });
        shell.visited(visit)?;
        for key in self.finished.drain(..) {
            self.queues.take(&shell.store, &ALL, &key).map_err(|e| shell.state_error(e))?;
        }
        shell.output.flush()
    }
}

impl<K, G, W, O, T> KeyedHandler<Partial<K, G::Acc>, O> for SlidingHandler<K, G, W, T>
where
    K: Key,
    G: AggregateFunction<T>,
    W: Fn(&K, TimeWindow, G::Out) -> O + Send,
    O: Send,
    T: 'static,
{
    fn on_record(
        &mut self,
        record: Record<Partial<K, G::Acc>>,
        shell: &mut Shell<O>,
    ) -> Result<Intake<Partial<K, G::Acc>>> {
        let Partial { key, window: pane, acc, records } = record.value;
        let late = Intake::Late { records, value: None };
        let next = self.slides.start(self.done.saturating_add(1));
        if self.done != NO_WINDOW && i128::from(pane.start) < next {
            return Ok(late);
        }
        let (aggregate, slides, done) = (&self.aggregate, self.slides, self.done);
        let merge = |acc: &mut G::Acc, other| aggregate.merge(acc, other);
        let init = || PaneQueue::new(done);
        let taken = self.queues.update(&shell.store, &ALL, &key, init, |queue, _| {
            queue.add(pane.start, acc, slides.bounds(queue.at), merge)
        });
        if !taken.map_err(|e| shell.state_error(e))? {
            return Ok(late);
        }
        self.live.insert(pane.start);
        Ok(Intake::Taken)
    }

    fn on_time(&mut self, domain: TimeDomain, time: Timestamp, shell: &mut Shell<O>) -> Result<()> {
        if domain == TimeDomain::EventTime {
            self.fire_until(time, shell)?;
        }
        Ok(())
    }

    fn on_finish(&mut self, shell: &mut Shell<O>) -> Result<()> {
        self.fire_until(Timestamp::MAX, shell)
    }
}

/// The keyed stage of sliding windows: over panes, or window at a time when the restored
/// state was written that way (by an earlier eddy, which kept an accumulator per window).
pub(crate) enum SlidingStage<P, W> {
    /// Over panes.
    Panes(P),
    /// Window at a time.
    Windows(W),
}

impl<P, W, T, O> KeyedHandler<T, O> for SlidingStage<P, W>
where
    P: KeyedHandler<T, O>,
    W: KeyedHandler<T, O>,
{
    fn on_record(&mut self, record: Record<T>, shell: &mut Shell<O>) -> Result<Intake<T>> {
        match self {
            SlidingStage::Panes(h) => h.on_record(record, shell),
            SlidingStage::Windows(h) => h.on_record(record, shell),
        }
    }

    fn on_time(&mut self, domain: TimeDomain, time: Timestamp, shell: &mut Shell<O>) -> Result<()> {
        match self {
            SlidingStage::Panes(h) => h.on_time(domain, time, shell),
            SlidingStage::Windows(h) => h.on_time(domain, time, shell),
        }
    }

    fn on_finish(&mut self, shell: &mut Shell<O>) -> Result<()> {
        match self {
            SlidingStage::Panes(h) => h.on_finish(shell),
            SlidingStage::Windows(h) => h.on_finish(shell),
        }
    }
}
