//! `KeyedStream::process`: a function per record with the key's state and timers (Flink's
//! `KeyedProcessFunction`).

use std::marker::PhantomData;

use eddy_core::time::{now_ms, MAX_TIMESTAMP, MIN_TIMESTAMP, NO_TIMESTAMP};
use eddy_core::{BoxError, Record, Result, Timestamp};
use eddy_state::{AnyBackend, FiredTimer, KeyedStateStore, StateError, TimeDomain};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::keyed_operator::{Intake, KeyedHandler, KeyedOperator, Setup, Shell};
use crate::keyed_stream::{Key, KeyedStream};
use crate::runtime_context::{Opened, RuntimeContext};
use crate::side_output::{OutputTag, SideOutputs};
use crate::{Data, DataStream};

/// What a keyed process function sees: the key, time, the key's state, timers, and outputs.
pub struct KeyedContext<'a, K, O> {
    key: &'a K,
    timestamp: Timestamp,
    watermark: Timestamp,
    state: &'a KeyedStateStore<AnyBackend>,
    out: &'a mut Vec<Record<O>>,
    side: &'a mut SideOutputs,
}

impl<'a, K, O> KeyedContext<'a, K, O> {
    /// The key of the current record (or of the firing timer).
    pub fn current_key(&self) -> &K {
        self.key
    }

    /// The current record's event time, or the firing timer's timestamp (clamped to
    /// `MIN_TIMESTAMP..=MAX_TIMESTAMP` for a timer at `i64::MIN` or `i64::MAX`).
    pub fn timestamp(&self) -> Option<Timestamp> {
        (self.timestamp != NO_TIMESTAMP).then_some(self.timestamp)
    }

    /// The operator's event-time watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.watermark
    }

    /// The wall clock, in ms since the epoch.
    pub fn current_processing_time(&self) -> Timestamp {
        now_ms()
    }

    /// The key's state: open handles by descriptor (`value_state`, `list_state`, `map_state`, …).
    /// Handles borrow the store, not the context, so they can be held while emitting.
    pub fn state(&self) -> &'a KeyedStateStore<AnyBackend> {
        self.state
    }

    /// Calls `on_timer` for this key once the watermark reaches `timestamp` (once per key and
    /// timestamp, however often registered).
    pub fn register_event_time_timer(&self, timestamp: Timestamp) -> Result<(), StateError> {
        self.state.register_timer(TimeDomain::EventTime, timestamp, &()).map(drop)
    }

    /// Calls `on_timer` for this key once the wall clock reaches `timestamp`.
    pub fn register_processing_time_timer(&self, timestamp: Timestamp) -> Result<(), StateError> {
        self.state.register_timer(TimeDomain::ProcessingTime, timestamp, &()).map(drop)
    }

    /// Removes this key's event-time timer at `timestamp`, if any.
    pub fn delete_event_time_timer(&self, timestamp: Timestamp) -> Result<(), StateError> {
        self.state.delete_timer(TimeDomain::EventTime, timestamp, &()).map(drop)
    }

    /// Removes this key's processing-time timer at `timestamp`, if any.
    pub fn delete_processing_time_timer(&self, timestamp: Timestamp) -> Result<(), StateError> {
        self.state.delete_timer(TimeDomain::ProcessingTime, timestamp, &()).map(drop)
    }

    /// Emits `value` with the current timestamp.
    pub fn collect(&mut self, value: O) {
        self.out.push(Record::new(value, self.timestamp));
    }

    /// Emits `value` to the side output `tag`.
    pub fn output<X: Clone + Send + 'static>(&mut self, tag: &OutputTag<X>, value: X) {
        self.side.emit(tag, value, self.timestamp);
    }
}

/// A function called per record with its key's state and timers. `process_element`
/// borrows the record: an `Err` sends it, with the error's text, to the dead-letter output
/// (`dead_letters::<T>()`); `on_timer` errors fail the job. Closures
/// `FnMut(&T, &mut KeyedContext<K, O>) -> Result<(), BoxError>` implement it without timers.
pub trait KeyedProcessFunction<K, T, O>: Clone + Send + Sync + 'static {
    /// Handles one record of the current key.
    fn process_element(&mut self, value: &T, ctx: &mut KeyedContext<'_, K, O>) -> Result<(), BoxError>;

    /// A timer of the current key has fired at `timestamp`.
    fn on_timer(&mut self, timestamp: Timestamp, ctx: &mut KeyedContext<'_, K, O>) -> Result<(), BoxError> {
        let _ = (timestamp, ctx);
        Ok(())
    }

    /// Sets up this subtask's copy of the function before its first record (see
    /// [`RuntimeContext`]); an error fails the attempt.
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        let _ = ctx;
        Ok(())
    }

    /// Releases what `open` set up, after the last record (see [`RuntimeContext`]).
    fn close(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<K, T, O, F> KeyedProcessFunction<K, T, O> for F
where
    F: FnMut(&T, &mut KeyedContext<'_, K, O>) -> Result<(), BoxError> + Clone + Send + Sync + 'static,
{
    fn process_element(&mut self, value: &T, ctx: &mut KeyedContext<'_, K, O>) -> Result<(), BoxError> {
        self(value, ctx)
    }
}

impl<T, K, F> KeyedStream<T, K, F>
where
    T: Data,
    K: Key + DeserializeOwned,
    F: Fn(&T) -> K + Clone + Send + Sync + 'static,
{
    /// Runs `function` on every record with its key's state and timers.
    pub fn process<O: Data, P: KeyedProcessFunction<K, T, O>>(&self, function: P) -> DataStream<O> {
        let key_of = self.key_of.clone();
        self.transform_keyed("KeyedProcess", move |ctx, out| {
            // As Flink's `open`, after the key groups' state is restored.
            let operator = KeyedOperator::open(ctx, out, Setup::default(), |_, _| {
                let function = Opened::open(ctx, function.clone(), P::open, P::close)?;
                Ok(ProcessHandler { key_of: key_of.clone(), function, _key: PhantomData })
            })?;
            Ok(Box::new(operator))
        })
    }
}

impl<'a, K, O: Send> KeyedContext<'a, K, O> {
    /// The context of a record of `key` (stored and routed as `state_key`, now the store's
    /// current key) at `timestamp`.
    pub(crate) fn of_record<S: Serialize>(
        shell: &'a mut Shell<O>,
        key: &'a K,
        state_key: &S,
        timestamp: Timestamp,
    ) -> Result<Self> {
        shell.store.set_current_key(state_key).map_err(|e| shell.state_error(e))?;
        Ok(KeyedContext {
            key,
            timestamp,
            watermark: shell.watermark,
            state: &shell.store,
            out: &mut shell.output.buffer,
            side: &mut shell.output.out.side,
        })
    }

    /// The context of a fired timer of `key` (its key is the store's current key already).
    pub(crate) fn of_timer(shell: &'a mut Shell<O>, key: &'a K, timer: &FiredTimer) -> Self {
        KeyedContext {
            key,
            // A timer may be set at either end of the time line (i64::MAX: at the end of
            // input); what it emits carries the nearest event time, never a marker.
            timestamp: timer.timer.timestamp.clamp(MIN_TIMESTAMP, MAX_TIMESTAMP),
            watermark: shell.watermark,
            state: &shell.store,
            out: &mut shell.output.buffer,
            side: &mut shell.output.out.side,
        }
    }
}

/// A fired timer's key as the user's key: `key_of` turns the stored key (what records of
/// the key were stored under) into it.
pub(crate) fn timer_key<K, S: DeserializeOwned, O: Send>(
    shell: &Shell<O>,
    timer: &FiredTimer,
    key_of: impl Fn(S) -> Option<K>,
) -> Result<K> {
    let stored: S = timer.key().map_err(|e| shell.state_error(e))?;
    key_of(stored).ok_or_else(|| shell.info.error("a timer's key is not a key of this operator"))
}

/// Runs a [`KeyedProcessFunction`] per record of its key.
struct ProcessHandler<K, F, P> {
    key_of: F,
    function: Opened<P>,
    _key: PhantomData<fn() -> K>,
}

impl<T, K, F, P, O> KeyedHandler<T, O> for ProcessHandler<K, F, P>
where
    T: Data,
    K: Key + DeserializeOwned,
    F: Fn(&T) -> K + Send,
    P: KeyedProcessFunction<K, T, O>,
    O: Send,
{
    fn on_record(&mut self, record: Record<T>, shell: &mut Shell<O>) -> Result<Intake<T>> {
        let key = (self.key_of)(&record.value);
        let mut ctx = KeyedContext::of_record(shell, &key, &key, record.timestamp)?;
        Ok(match self.function.process_element(&record.value, &mut ctx) {
            Ok(()) => Intake::Taken,
            Err(error) => Intake::Rejected { value: record.value, error: error.to_string() },
        })
    }

    fn on_timer(&mut self, timer: FiredTimer, shell: &mut Shell<O>) -> Result<()> {
        let key: K = timer_key(shell, &timer, Some)?;
        let info = shell.info.clone();
        let mut ctx = KeyedContext::of_timer(shell, &key, &timer);
        self.function.on_timer(timer.timer.timestamp, &mut ctx).map_err(|e| info.error(format!("on_timer: {e}")))
    }

    fn close(&mut self) -> Result<()> {
        self.function.close()
    }
}
