//! The handler for windows with a custom trigger: per key and window, an accumulator and
//! the trigger's state; the trigger decides when to fire and purge. One keyed stage (a
//! trigger sees every record, so there is no pre-aggregation).
//!
//! A key's windows are one namespaced state (the window is the namespace). The timers a
//! trigger registers go to the store's timer service with the window they are for, next to
//! one cleanup timer per key and window at its end plus the allowed lateness, in the
//! assigner's time; the service keeps one timer per key, window and time, as Flink's does.

use eddy_core::{Error, Record, Result, Timestamp};
use eddy_state::{FiredTimer, KeyedEntries, NamespacedState, NamespacedStateDescriptor, StateError, TimeDomain};

use crate::keyed_operator::{Intake, KeyedHandler, Shell};
use crate::keyed_stream::Key;
use crate::state_codec::decode;
use crate::window::aggregate::AggregateFunction;
use crate::window::assigner::WindowAssigner;
use crate::window::record_time::record_time;
use crate::window::trigger::{Trigger, TriggerContext};
use crate::window::TimeWindow;
use crate::Data;

/// Per window and key: the accumulator and the trigger's state.
fn windows<K, Acc, S>() -> NamespacedStateDescriptor<TimeWindow, K, (Acc, S)> {
    NamespacedStateDescriptor::new("trigger-windows")
}

/// The name eddy checkpointed these windows under before the keyed-operator shell.
pub(crate) const LEGACY_WINDOWS: &str = "windows";

/// A timer's namespace: whose it is (the trigger's, or the window's cleanup), and the window.
type TimerOf = (u8, TimeWindow);
const TRIGGER: u8 = 0;
const CLEANUP: u8 = 1;

fn domain(event_time: bool) -> TimeDomain {
    if event_time {
        TimeDomain::EventTime
    } else {
        TimeDomain::ProcessingTime
    }
}

/// The triggered window stage.
pub(crate) struct TriggeredHandler<K, F, A, G, Tr, W, Acc, S> {
    key_of: F,
    assigner: A,
    aggregate: G,
    trigger: Tr,
    window_fn: W,
    /// The allowed lateness in effect (none in processing time).
    lateness: i64,
    windows: NamespacedState<TimeWindow, K, (Acc, S)>,
    /// The current record's windows (a buffer kept to avoid an allocation per record).
    assigned: Vec<TimeWindow>,
}

impl<K, F, A, G, Tr, W, Acc, S> TriggeredHandler<K, F, A, G, Tr, W, Acc, S>
where
    K: Key,
    A: WindowAssigner,
    Acc: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static,
    S: Send + serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    /// Opens the windows, converting `legacy` entries (see [`LEGACY_WINDOWS`]) with their
    /// timers.
    pub(crate) fn open<O: Send>(
        (key_of, assigner, aggregate, trigger, window_fn): (F, A, G, Tr, W),
        allowed_lateness: i64,
        shell: &mut Shell<O>,
        legacy: Vec<KeyedEntries>,
    ) -> Result<Self> {
        assigner.validate().map_err(|e| Error::InvalidJob(format!("operator '{}': {e}", shell.info.name)))?;
        let windows = shell.store.namespaced_state(&windows()).map_err(|e| shell.state_error(e))?;
        let lateness = if assigner.is_event_time() { allowed_lateness } else { 0 };
        let handler = TriggeredHandler {
            key_of,
            assigner,
            aggregate,
            trigger,
            window_fn,
            lateness,
            windows,
            assigned: Vec::new(),
        };
        // Before the shell: `(key group, bincode((key, start, end)), bincode((acc, trigger
        // state, [(event time?, timer)])))`; the cleanup timer followed from the window.
        for (_, key, value) in legacy.into_iter().flat_map(|state| state.entries) {
            let (key, start, end): (K, i64, i64) = decode(&key)?;
            let (acc, state, timers): (Acc, S, Vec<(bool, Timestamp)>) = decode(&value)?;
            let window = TimeWindow::new(start, end);
            handler.state(shell, shell.store.set_current_key(&key))?;
            for (event_time, at) in timers {
                handler.register(shell, domain(event_time), at, (TRIGGER, window))?;
            }
            handler.register_cleanup(shell, window)?;
            handler.state(shell, handler.windows.put(&shell.store, &window, &key, (acc, state)))?;
        }
        Ok(handler)
    }

    /// When a window's contents go: the end of its allowed lateness.
    fn cleanup_time(&self, window: TimeWindow) -> Timestamp {
        window.max_timestamp().saturating_add(self.lateness)
    }

    /// Registers a timer of the current key.
    fn register<O: Send>(&self, shell: &Shell<O>, domain: TimeDomain, at: Timestamp, of: TimerOf) -> Result<()> {
        self.state(shell, shell.store.register_timer(domain, at, &of)).map(drop)
    }

    /// Registers the current key's cleanup of `window` (a global window is never cleaned up).
    fn register_cleanup<O: Send>(&self, shell: &Shell<O>, window: TimeWindow) -> Result<()> {
        if window.end == Timestamp::MAX {
            return Ok(());
        }
        self.register(shell, domain(self.assigner.is_event_time()), self.cleanup_time(window), (CLEANUP, window))
    }

    fn state<R, O: Send>(&self, shell: &Shell<O>, result: std::result::Result<R, StateError>) -> Result<R> {
        result.map_err(|e| shell.state_error(e))
    }
}

impl<K, F, A, G, Tr, W, Acc, S> TriggeredHandler<K, F, A, G, Tr, W, Acc, S> {
    /// Files the timers a trigger call registered for the current key's `window`, and emits
    /// the window's result if the trigger fired it (`fired` holds the accumulator then).
    fn apply<T, O>(
        &self,
        shell: &mut Shell<O>,
        (key, window): (&K, TimeWindow),
        ctx: TriggerContext,
        fired: Option<Acc>,
    ) -> Result<()>
    where
        K: Key,
        A: WindowAssigner,
        G: AggregateFunction<T, Acc = Acc>,
        W: Fn(&K, TimeWindow, G::Out) -> O,
        Acc: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static,
        S: Send + serde::Serialize + serde::de::DeserializeOwned + 'static,
        O: Send,
    {
        let registered = ctx.event_timers.into_iter().map(|t| (TimeDomain::EventTime, t));
        for (domain, at) in registered.chain(ctx.processing_timers.into_iter().map(|t| (TimeDomain::ProcessingTime, t)))
        {
            self.register(shell, domain, at, (TRIGGER, window))?;
        }
        if let Some(acc) = fired {
            shell.output.emit((self.window_fn)(key, window, self.aggregate.get_result(acc)), window.max_timestamp());
        }
        Ok(())
    }
}

impl<T, K, F, A, G, Tr, W, O> KeyedHandler<T, O> for TriggeredHandler<K, F, A, G, Tr, W, G::Acc, Tr::State>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K + Send,
    A: WindowAssigner,
    G: AggregateFunction<T>,
    Tr: Trigger<T>,
    W: Fn(&K, TimeWindow, G::Out) -> O + Send,
    O: Send,
{
    fn on_record(&mut self, record: Record<T>, shell: &mut Shell<O>) -> Result<Intake<T>> {
        let event_time = self.assigner.is_event_time();
        let timestamp = record_time(event_time, record.timestamp, shell.now, &shell.info)?;
        let key = (self.key_of)(&record.value);
        self.assigned.clear();
        self.assigned.extend(self.assigner.assign_windows(timestamp));
        let mut kept = false;
        for i in 0..self.assigned.len() {
            let window = self.assigned[i];
            if event_time && self.cleanup_time(window) <= shell.watermark {
                continue;
            }
            kept = true;
            let mut ctx = TriggerContext { watermark: shell.watermark, ..TriggerContext::default() };
            let (aggregate, trigger, value) = (&self.aggregate, &self.trigger, &record.value);
            let init = || (aggregate.create_accumulator(), Tr::State::default());
            let decided = self.windows.update(&shell.store, &window, &key, init, |(acc, state), fresh| {
                aggregate.add(acc, value.clone());
                let result = trigger.on_element(value, timestamp, window, state, &mut ctx);
                (result, result.fires().then(|| acc.clone()), fresh)
            });
            let (result, fired, fresh) = self.state(shell, decided)?;
            self.state(shell, shell.store.set_current_key(&key))?;
            if fresh {
                self.register_cleanup(shell, window)?;
            }
            self.apply(shell, (&key, window), ctx, fired)?;
            if result.purges() {
                self.state(shell, self.windows.take(&shell.store, &window, &key))?;
            }
        }
        if kept {
            Ok(Intake::Taken)
        } else {
            Ok(Intake::Late { records: 1, value: Some(record.value) })
        }
    }

    fn on_timer(&mut self, timer: FiredTimer, shell: &mut Shell<O>) -> Result<()> {
        let key: K = self.state(shell, timer.key())?;
        let (kind, window): TimerOf = self.state(shell, timer.namespace())?;
        if kind == CLEANUP {
            self.state(shell, self.windows.take(&shell.store, &window, &key))?;
            return Ok(());
        }
        // The window may have been purged since the timer was set: then it has nothing to do.
        let Some((acc, mut state)) = self.state(shell, self.windows.take(&shell.store, &window, &key))? else {
            return Ok(());
        };
        let at = timer.timer.timestamp;
        let mut ctx = TriggerContext { watermark: shell.watermark, ..TriggerContext::default() };
        let result = match timer.domain {
            TimeDomain::EventTime => self.trigger.on_event_time(at, window, &mut state, &mut ctx),
            TimeDomain::ProcessingTime => self.trigger.on_processing_time(at, window, &mut state, &mut ctx),
        };
        let fired = result.fires().then(|| acc.clone());
        if !result.purges() {
            self.state(shell, self.windows.put(&shell.store, &window, &key, (acc, state)))?;
        }
        self.apply(shell, (&key, window), ctx, fired)?;
        shell.output.flush_if_full()
    }

    // The final watermark has fired the event-time timers; what a trigger has not fired by
    // the end of the input is dropped, as in Flink (a count window short of its count).
}
