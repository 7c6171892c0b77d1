//! The window operator for windows with a custom trigger: per key and window, an
//! accumulator and the trigger's state; the trigger decides when to fire and purge.
//! One keyed stage (a trigger sees every record, so there is no pre-aggregation).

use std::collections::BTreeMap;

use eddy_core::key::{key_group, KeyHasher};
use eddy_core::time::{now_ms, MIN_WATERMARK};
use eddy_core::{Error, OperatorInfo, Output, Record, Result, Timestamp};
use eddy_runtime::checkpoint::StateContext;
use eddy_runtime::graph::BuildContext;
use eddy_runtime::metrics::{names, Counter};

use crate::keyed_stream::Key;
use crate::keyed_table::KeyedTable;
use crate::side_output::{SideOutputs, WithSide};
use crate::state_codec::{decode, encode};
use crate::window::aggregate::AggregateFunction;
use crate::window::assigner::WindowAssigner;
use crate::window::intake::{add_records, TakesRecords};
use crate::window::operator::Lateness;
use crate::window::trigger::{Trigger, TriggerContext, TriggerResult};
use crate::window::TimeWindow;
use crate::Data;

/// A key's window: its accumulator, its trigger's state, and the timers registered for it
/// (a timer is registered once per time, as Flink's timer service de-duplicates).
struct Slot<Acc, S> {
    acc: Acc,
    state: S,
    timers: Vec<(bool, Timestamp)>,
}

/// Timers by time: (slot hash, key, window), checked against the slot when they come.
type Timers<K> = BTreeMap<Timestamp, Vec<(u64, K, TimeWindow)>>;

pub(crate) struct TriggeredOperator<T, K, F, A, G: AggregateFunction<T>, Tr: Trigger<T>, W, O> {
    key_of: F,
    assigner: A,
    aggregate: G,
    trigger: Tr,
    window_fn: W,
    lateness: Lateness<T>,
    hasher: KeyHasher,
    slots: KeyedTable<(K, TimeWindow), Slot<G::Acc, Tr::State>>,
    event_timers: Timers<K>,
    processing_timers: Timers<K>,
    /// When each window's contents go: its max timestamp plus allowed lateness.
    cleanup: Timers<K>,
    /// The current record's windows (a buffer kept to avoid an allocation per record).
    assigned: Vec<TimeWindow>,
    watermark: Timestamp,
    out: WithSide<O>,
    buffer: Vec<Record<O>>,
    late_dropped: Counter,
    info: OperatorInfo,
    state: Option<StateContext>,
}

/// The checkpointed state: per key and window, the accumulator, trigger state and timers.
const WINDOWS: &str = "windows";

fn slot_hash(key_hash: u64, window: TimeWindow) -> u64 {
    key_hash ^ (window.start as u64).rotate_left(21) ^ (window.end as u64).rotate_left(43)
}

impl<T, K, F, A, G, Tr, W, O> TriggeredOperator<T, K, F, A, G, Tr, W, O>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K,
    A: WindowAssigner,
    G: AggregateFunction<T>,
    Tr: Trigger<T>,
    W: Fn(&K, TimeWindow, G::Out) -> O,
    O: Send,
{
    pub(crate) fn new(
        ctx: &BuildContext,
        (key_of, assigner, aggregate, trigger, window_fn): (F, A, G, Tr, W),
        lateness: Lateness<T>,
        out: Box<dyn Output<O>>,
    ) -> Result<Self> {
        assigner.validate().map_err(|e| Error::InvalidJob(format!("operator '{}': {e}", ctx.info.name)))?;
        TriggeredOperator {
            key_of,
            assigner,
            aggregate,
            trigger,
            window_fn,
            lateness,
            hasher: KeyHasher::default(),
            slots: KeyedTable::default(),
            event_timers: BTreeMap::new(),
            processing_timers: BTreeMap::new(),
            cleanup: BTreeMap::new(),
            assigned: Vec::new(),
            watermark: MIN_WATERMARK,
            out: WithSide::new(ctx, out),
            buffer: Vec::new(),
            late_dropped: ctx.counter(names::LATE_RECORDS_DROPPED),
            info: ctx.info.clone(),
            state: ctx.state(),
        }
        .restored()
    }

    /// When a window's contents are dropped: the end of its allowed lateness.
    fn cleanup_time(&self, window: TimeWindow) -> Timestamp {
        let lateness = if self.assigner.is_event_time() { self.lateness.allowed } else { 0 };
        window.max_timestamp().saturating_add(lateness)
    }

    /// Refills every key's windows (accumulator, trigger state, timers) from the restored
    /// snapshot and schedules their timers and clean-up again.
    fn restored(mut self) -> Result<Self> {
        let Some(state) = self.state.clone() else { return Ok(self) };
        for (_, slot_key, value) in state.restored_entries(WINDOWS)? {
            let (key, start, end): (K, i64, i64) = decode(&slot_key)?;
            let (acc, trigger_state, timers): (G::Acc, Tr::State, Vec<(bool, Timestamp)>) = decode(&value)?;
            let window = TimeWindow::new(start, end);
            let hash = slot_hash(self.hasher.hash(&key)?, window);
            for &(event_time, at) in &timers {
                let schedule = if event_time { &mut self.event_timers } else { &mut self.processing_timers };
                schedule.entry(at).or_default().push((hash, key.clone(), window));
            }
            if window.end != Timestamp::MAX {
                let cleanup_at = self.cleanup_time(window);
                self.cleanup.entry(cleanup_at).or_default().push((hash, key.clone(), window));
            }
            let slot = Slot { acc, state: trigger_state, timers };
            self.slots.get_or_insert_with(hash, &(key, window), || slot);
        }
        Ok(self)
    }

    /// Puts every key's windows into the checkpoint being taken, filed by the key's group.
    fn snapshot(&mut self) -> Result<()> {
        let Some(state) = &self.state else { return Ok(()) };
        let max = state.max_parallelism();
        let mut entries = Vec::new();
        for ((key, window), slot) in self.slots.iter() {
            let key_group = key_group(self.hasher.hash(key)?, max) as u16;
            let value = (&slot.acc, &slot.state, &slot.timers);
            entries.push((
                key_group,
                encode(&self.info, &(key, window.start, window.end))?,
                encode(&self.info, &value)?,
            ));
        }
        state.snapshot_keyed(WINDOWS, entries);
        Ok(())
    }

    fn context(&self) -> TriggerContext {
        TriggerContext { watermark: self.watermark, ..TriggerContext::default() }
    }

    /// Files the timers a trigger call registered (once per window and time), and acts on
    /// its result.
    fn apply(&mut self, hash: u64, key: &K, window: TimeWindow, ctx: TriggerContext, result: TriggerResult) {
        let slot_key = (key.clone(), window);
        if let Some(slot) = self.slots.get_mut(hash, &slot_key) {
            let registered = ctx.event_timers.into_iter().map(|t| (true, t));
            for (event_time, time) in registered.chain(ctx.processing_timers.into_iter().map(|t| (false, t))) {
                if slot.timers.contains(&(event_time, time)) {
                    continue;
                }
                slot.timers.push((event_time, time));
                let timers = if event_time { &mut self.event_timers } else { &mut self.processing_timers };
                timers.entry(time).or_default().push((hash, key.clone(), window));
            }
        }
        if result.fires() {
            if let Some(slot) = self.slots.get_mut(hash, &slot_key) {
                let result = (self.window_fn)(key, window, self.aggregate.get_result(slot.acc.clone()));
                self.buffer.push(Record::new(result, window.max_timestamp()));
            }
        }
        if result.purges() {
            self.slots.remove(hash, &slot_key);
        }
    }

    fn add_record(&mut self, value: T, timestamp: Timestamp) -> Result<bool> {
        let key = (self.key_of)(&value);
        let key_hash = self.hasher.hash(&key)?;
        let event_time = self.assigner.is_event_time();
        let mut windows = std::mem::take(&mut self.assigned);
        windows.clear();
        windows.extend(self.assigner.assign_windows(timestamp));
        let mut kept = false;
        for &window in &windows {
            let cleanup_at = self.cleanup_time(window);
            if event_time && cleanup_at <= self.watermark {
                continue;
            }
            kept = true;
            let hash = slot_hash(key_hash, window);
            let slot_key = (key.clone(), window);
            let mut ctx = self.context();
            let mut fresh = false;
            let slot = self.slots.get_or_insert_with(hash, &slot_key, || {
                fresh = true;
                Slot { acc: self.aggregate.create_accumulator(), state: Tr::State::default(), timers: Vec::new() }
            });
            self.aggregate.add(&mut slot.acc, value.clone());
            let result = self.trigger.on_element(&value, timestamp, window, &mut slot.state, &mut ctx);
            if fresh && window.end != Timestamp::MAX {
                self.cleanup.entry(cleanup_at).or_default().push((hash, key.clone(), window));
            }
            self.apply(hash, &key, window, ctx, result);
        }
        self.assigned = windows;
        Ok(kept)
    }

    /// Calls the trigger for every timer of one domain due at `time`, then drops windows
    /// whose cleanup time has come.
    fn advance(&mut self, time: Timestamp, event_time: bool) -> Result<()> {
        loop {
            let timers = if event_time { &mut self.event_timers } else { &mut self.processing_timers };
            let Some(entry) = timers.first_entry().filter(|e| *e.key() <= time) else { break };
            let (at, due) = entry.remove_entry();
            for (hash, key, window) in due {
                let mut ctx = self.context();
                let Some(slot) = self.slots.get_mut(hash, &(key.clone(), window)) else { continue };
                slot.timers.retain(|&timer| timer != (event_time, at));
                let result = if event_time {
                    self.trigger.on_event_time(at, window, &mut slot.state, &mut ctx)
                } else {
                    self.trigger.on_processing_time(at, window, &mut slot.state, &mut ctx)
                };
                self.apply(hash, &key, window, ctx, result);
            }
            self.out.records(&mut self.buffer)?;
        }
        if event_time == self.assigner.is_event_time() {
            while let Some(entry) = self.cleanup.first_entry().filter(|e| *e.key() <= time) {
                for (hash, key, window) in entry.remove() {
                    self.slots.remove(hash, &(key, window));
                }
            }
        }
        Ok(())
    }
}

impl<T, K, F, A, G, Tr, W, O> TakesRecords<T> for TriggeredOperator<T, K, F, A, G, Tr, W, O>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K,
    A: WindowAssigner,
    G: AggregateFunction<T>,
    Tr: Trigger<T>,
    W: Fn(&K, TimeWindow, G::Out) -> O,
    O: Send,
{
    fn add(&mut self, value: T, timestamp: Timestamp) -> Result<bool> {
        self.add_record(value, timestamp)
    }

    fn event_time(&self) -> bool {
        self.assigner.is_event_time()
    }

    fn intake_parts(&mut self) -> (&Lateness<T>, &mut SideOutputs, &OperatorInfo) {
        (&self.lateness, &mut self.out.side, &self.info)
    }
}

impl<T, K, F, A, G, Tr, W, O> Output<T> for TriggeredOperator<T, K, F, A, G, Tr, W, O>
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
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let info = self.info.clone();
        let dropped = info.guard(|| add_records(self, batch, now_ms()))??;
        if dropped > 0 {
            self.late_dropped.add(dropped);
        }
        self.out.records(&mut self.buffer)
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.watermark = watermark;
        self.advance(watermark, true)?;
        self.out.watermark(watermark)
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.out.idle(idle)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.advance(now, false)?;
        self.out.tick(now)
    }

    fn barrier(&mut self, barrier: eddy_core::Barrier) -> Result<()> {
        self.snapshot()?;
        self.out.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        // The final watermark has fired the event-time timers; what a trigger has not fired
        // by the end of the input is dropped, as in Flink (a count window short of its count).
        self.out.finish()
    }
}
