//! `KeyedStream::process`: a function per record with the key's state and timers (Flink's
//! `KeyedProcessFunction`).

use std::path::Path;

use eddy_core::key::KeyGroupRange;
use eddy_core::time::{now_ms, MAX_TIMESTAMP, MIN_TIMESTAMP, MIN_WATERMARK, NO_TIMESTAMP};
use eddy_core::{Barrier, BoxError, Error, OperatorInfo, Output, Record, Result, Timestamp};
use eddy_runtime::checkpoint::{StateContext, SubtaskList};
use eddy_runtime::graph::BuildContext;
use eddy_runtime::metrics::Counter;
use eddy_state::{
    AnyBackend, HeapBackend, KeyGroupSnapshot, KeyedEntries, KeyedStateStore, SledBackend, StateError, TimeDomain,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::dead_letter::{dead_letter_tag, DeadLetter};
use crate::keyed_stream::{Key, KeyedStream};
use crate::ops::try_map::DEAD_LETTERS;
use crate::queryable_state::queryable;
use crate::runtime_context::{Opened, RuntimeContext};
use crate::side_output::{OutputTag, SideOutputs, WithSide};
use crate::state_codec::{decode, encode};
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
            let handler = ProcessHandler {
                key_of: key_of.clone(),
                function: Opened::open(ctx, function.clone(), P::open, P::close)?,
                dead_letter: dead_letter_tag(),
                _key: std::marker::PhantomData,
            };
            let runtime = KeyedRuntime::open(ctx, out)?;
            Ok(Box::new(KeyedOperator { handler, runtime, dead_letters: ctx.counter(DEAD_LETTERS) }))
        })
    }
}

/// This subtask's keyed state: its key groups, in memory or in sled under the state dir.
fn open_state(ctx: &BuildContext) -> Result<KeyedStateStore<AnyBackend>> {
    let info = &ctx.info;
    let max = ctx.config.max_parallelism;
    let backend = match &ctx.config.state_dir {
        None => HeapBackend::new(max).map(AnyBackend::Heap),
        Some(dir) => SledBackend::open(subtask_dir(dir, info), max).map(AnyBackend::Sled),
    };
    let range = KeyGroupRange::of_subtask(info.subtask, max, info.parallelism);
    backend
        .and_then(|b| KeyedStateStore::with_key_groups(b, range))
        .map(|store| queryable(ctx, store))
        .map_err(|e| Error::InvalidJob(format!("operator '{}': cannot open keyed state: {e}", info.name)))
}

fn subtask_dir(dir: &Path, info: &OperatorInfo) -> std::path::PathBuf {
    let name: String = info.name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    dir.join(format!("{name}-{}", info.subtask))
}

/// What a keyed operator subtask holds besides its function: the key's state and timers,
/// its outputs, and event time.
/// The checkpointed timers of a keyed operator (its keyed state keeps the states' own names).
const TIMERS: &str = "_timers";

pub(crate) struct KeyedRuntime<O> {
    pub(crate) state: KeyedStateStore<AnyBackend>,
    pub(crate) checkpoints: Option<StateContext>,
    pub(crate) out: WithSide<O>,
    pub(crate) buffer: Vec<Record<O>>,
    pub(crate) watermark: Timestamp,
    pub(crate) info: OperatorInfo,
}

impl<O: Send> KeyedRuntime<O> {
    pub(crate) fn open(ctx: &BuildContext, out: Box<dyn Output<O>>) -> Result<Self> {
        let runtime = KeyedRuntime {
            state: open_state(ctx)?,
            checkpoints: ctx.state(),
            out: WithSide::new(ctx, out),
            buffer: Vec::new(),
            watermark: MIN_WATERMARK,
            info: ctx.info.clone(),
        };
        runtime.restore()?;
        Ok(runtime)
    }

    /// Fills every key group this subtask owns from the restored snapshot (empty where it has
    /// nothing, which also clears a sled directory an earlier attempt left behind).
    fn restore(&self) -> Result<()> {
        let Some(checkpoints) = &self.checkpoints else { return Ok(()) };
        let range = checkpoints.key_groups();
        let mut groups: Vec<KeyGroupSnapshot> =
            (range.start..=range.end).map(|key_group| KeyGroupSnapshot { key_group, ..Default::default() }).collect();
        for state in checkpoints.restored_keyed()? {
            for (key_group, key, value) in state.entries {
                let Some(group) = groups.get_mut((key_group as usize).wrapping_sub(range.start)) else {
                    return Err(Error::Checkpoint(format!("key group {key_group} is not this subtask's")));
                };
                if state.state == TIMERS {
                    group.timers.push(decode(&key)?);
                } else {
                    group.entries.push((key, value));
                }
            }
        }
        for mut group in groups {
            group.entries.sort();
            self.state.restore_key_group(group).map_err(|e| self.state_error(e))?;
        }
        Ok(())
    }

    /// Puts every key group's state and timers, and the handler's `lists`, into the checkpoint
    /// being taken; states keep their descriptors' names (the entry key holds the name after
    /// the key group).
    pub(crate) fn snapshot(&self, lists: Vec<SubtaskList>) -> Result<()> {
        let Some(checkpoints) = &self.checkpoints else { return Ok(()) };
        let range = checkpoints.key_groups();
        let mut states: Vec<KeyedEntries> = Vec::new();
        let mut timers = KeyedEntries { state: TIMERS.into(), entries: Vec::new() };
        for key_group in range.start..=range.end {
            let snapshot = self.state.snapshot_key_group(key_group).map_err(|e| self.state_error(e))?;
            for (key, value) in snapshot.entries {
                let name = state_name(&key);
                let at = match states.iter().position(|s| s.state == name) {
                    Some(at) => at,
                    None => {
                        states.push(KeyedEntries { state: name, entries: Vec::new() });
                        states.len() - 1
                    }
                };
                states[at].entries.push((key_group as u16, key, value));
            }
            for timer in snapshot.timers {
                timers.entries.push((key_group as u16, encode(&self.info, &timer)?, Vec::new()));
            }
        }
        states.push(timers);
        checkpoints.snapshot(states, lists);
        Ok(())
    }

    pub(crate) fn state_error(&self, e: StateError) -> Error {
        self.info.error(format!("keyed state: {e}"))
    }

    /// Makes `state_key` (the key as routed and stored) current and gives the context of a
    /// record of `key` at `timestamp`.
    pub(crate) fn context<'a, K, S: Serialize>(
        &'a mut self,
        key: &'a K,
        state_key: &S,
        timestamp: Timestamp,
    ) -> Result<KeyedContext<'a, K, O>> {
        self.state.set_current_key(state_key).map_err(|e| self.state_error(e))?;
        Ok(KeyedContext {
            key,
            timestamp,
            watermark: self.watermark,
            state: &self.state,
            out: &mut self.buffer,
            side: &mut self.out.side,
        })
    }

    /// Fires every timer of `domain` due at `time`, in timestamp order; `key_of` turns a
    /// timer's stored key back into the user's key.
    pub(crate) fn fire_timers<K, S: DeserializeOwned>(
        &mut self,
        domain: TimeDomain,
        time: Timestamp,
        key_of: impl Fn(S) -> Option<K>,
        mut on_timer: impl FnMut(Timestamp, &mut KeyedContext<'_, K, O>) -> Result<(), BoxError>,
    ) -> Result<()> {
        let info = self.info.clone();
        info.guard(|| -> Result<()> {
            while let Some(fired) = self.state.pop_due_timer(domain, time).map_err(|e| self.state_error(e))? {
                let stored: S = fired.key().map_err(|e| self.state_error(e))?;
                let key = key_of(stored).ok_or_else(|| info.error("a timer's key is not a key of this operator"))?;
                let timestamp = fired.timer.timestamp;
                let mut ctx = KeyedContext {
                    key: &key,
                    // A timer may be set at either end of the time line (i64::MAX: at the end of
                    // input); what it emits carries the nearest event time, never a marker.
                    timestamp: timestamp.clamp(MIN_TIMESTAMP, MAX_TIMESTAMP),
                    watermark: self.watermark,
                    state: &self.state,
                    out: &mut self.buffer,
                    side: &mut self.out.side,
                };
                on_timer(timestamp, &mut ctx).map_err(|e| info.error(format!("on_timer: {e}")))?;
            }
            Ok(())
        })??;
        self.flush()
    }

    /// Sends what the function emitted, then answers the reads of queryable state waiting.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.state.serve_queries();
        self.out.records(&mut self.buffer)
    }
}

/// How a keyed operator handles its records and timers; [`KeyedOperator`] does the rest.
/// The state name inside a backend entry key (`key group u16 | name length u16 | name | …`).
fn state_name(entry_key: &[u8]) -> String {
    let len = entry_key.get(2..4).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) as usize);
    entry_key.get(4..4 + len).map_or_else(|| "<unknown>".into(), |name| String::from_utf8_lossy(name).into_owned())
}

pub(crate) trait KeyedHandler<T, O>: Send {
    /// Handles a batch; returns how many records became dead letters.
    fn process_batch(&mut self, runtime: &mut KeyedRuntime<O>, batch: &mut Vec<Record<T>>) -> Result<u64>;
    /// Fires the timers of `domain` due at `time`.
    fn fire_timers(&mut self, runtime: &mut KeyedRuntime<O>, domain: TimeDomain, time: Timestamp) -> Result<()>;
    /// State the handler keeps outside keyed state, for a checkpoint.
    fn snapshot(&self, _info: &OperatorInfo) -> Result<Vec<SubtaskList>> {
        Ok(Vec::new())
    }
    /// The input has ended: close the user's function.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A keyed operator: a handler over a keyed runtime, driven by records and time.
pub(crate) struct KeyedOperator<H, O> {
    pub(crate) handler: H,
    pub(crate) runtime: KeyedRuntime<O>,
    pub(crate) dead_letters: Counter,
}

impl<T, O: Send, H: KeyedHandler<T, O>> Output<T> for KeyedOperator<H, O> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let info = self.runtime.info.clone();
        let rejected = info.guard(|| self.handler.process_batch(&mut self.runtime, batch))??;
        if rejected > 0 {
            self.dead_letters.add(rejected);
        }
        self.runtime.flush()
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.runtime.watermark = watermark;
        self.handler.fire_timers(&mut self.runtime, TimeDomain::EventTime, watermark)?;
        self.runtime.out.watermark(watermark)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.handler.fire_timers(&mut self.runtime, TimeDomain::ProcessingTime, now)?;
        self.runtime.out.tick(now)
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.runtime.out.idle(idle)
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        let lists = self.handler.snapshot(&self.runtime.info)?;
        self.runtime.snapshot(lists)?;
        self.runtime.out.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        // Event-time timers have fired with the final watermark; processing-time timers that
        // are still pending do not fire after the input ends (as in Flink).
        self.handler.close()?;
        self.runtime.out.finish()
    }
}

/// Runs a [`KeyedProcessFunction`] per record of its key.
struct ProcessHandler<T, K, F, P> {
    key_of: F,
    function: Opened<P>,
    dead_letter: OutputTag<DeadLetter<T>>,
    _key: std::marker::PhantomData<fn() -> K>,
}

impl<T, K, F, P, O> KeyedHandler<T, O> for ProcessHandler<T, K, F, P>
where
    T: Data,
    K: Key + DeserializeOwned,
    F: Fn(&T) -> K + Send,
    P: KeyedProcessFunction<K, T, O>,
    O: Send,
{
    fn process_batch(&mut self, runtime: &mut KeyedRuntime<O>, batch: &mut Vec<Record<T>>) -> Result<u64> {
        let mut rejected = 0;
        for record in batch.drain(..) {
            let key = (self.key_of)(&record.value);
            let mut ctx = runtime.context(&key, &key, record.timestamp)?;
            if let Err(error) = self.function.process_element(&record.value, &mut ctx) {
                rejected += 1;
                let letter = DeadLetter { input: record.value, error: error.to_string() };
                runtime.out.side.emit(&self.dead_letter, letter, record.timestamp);
            }
        }
        Ok(rejected)
    }

    fn fire_timers(&mut self, runtime: &mut KeyedRuntime<O>, domain: TimeDomain, time: Timestamp) -> Result<()> {
        let function = &mut *self.function;
        runtime.fire_timers(domain, time, Some, |timestamp, ctx| function.on_timer(timestamp, ctx))
    }

    fn close(&mut self) -> Result<()> {
        self.function.close()
    }
}
