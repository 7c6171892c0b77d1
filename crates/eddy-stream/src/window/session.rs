//! The session window operator: per key, sessions that grow with each record and merge
//! when they come to overlap (Flink's merging windows), fired when time passes their end.

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
use crate::window::intake::{add_records, TakesRecords};
use crate::window::operator::Lateness;
use crate::window::TimeWindow;
use crate::Data;

/// One key's open session, its accumulator, and whether it has fired (then it is kept only
/// for allowed lateness).
struct Session<Acc> {
    window: TimeWindow,
    acc: Acc,
    fired: bool,
}

/// Sessions fire when time passes their end and stay for the allowed lateness, so a late
/// record can still merge into one, which then fires again.
pub(crate) struct SessionOperator<T, K, F, G: AggregateFunction<T>, W, O> {
    key_of: F,
    aggregate: G,
    window_fn: W,
    gap: i64,
    event_time: bool,
    lateness: Lateness<T>,
    hasher: KeyHasher,
    sessions: KeyedTable<K, Vec<Session<G::Acc>>>,
    /// Session ends (max timestamps) to fire, with their keys; entries of sessions that
    /// have since merged into longer ones are skipped when they come up.
    due: BTreeMap<Timestamp, Vec<(u64, K)>>,
    /// Fired sessions' cleanup times (max timestamp + allowed lateness), with their keys.
    cleanup: BTreeMap<Timestamp, Vec<(u64, K)>>,
    watermark: Timestamp,
    out: WithSide<O>,
    buffer: Vec<Record<O>>,
    late_dropped: Counter,
    info: OperatorInfo,
    state: Option<StateContext>,
}

/// The checkpointed state of a session window operator: each key's sessions.
const SESSIONS: &str = "sessions";

impl<T, K, F, G, W, O> SessionOperator<T, K, F, G, W, O>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K,
    G: AggregateFunction<T>,
    W: Fn(&K, TimeWindow, G::Out) -> O,
    O: Send,
{
    pub(crate) fn new(
        ctx: &BuildContext,
        (gap, event_time): (i64, bool),
        (key_of, aggregate, window_fn): (F, G, W),
        lateness: Lateness<T>,
        out: Box<dyn Output<O>>,
    ) -> Result<Self> {
        if gap <= 0 {
            return Err(Error::InvalidJob(format!("operator '{}': session gap must be positive", ctx.info.name)));
        }
        SessionOperator {
            key_of,
            aggregate,
            window_fn,
            gap,
            event_time,
            lateness,
            hasher: KeyHasher::default(),
            sessions: KeyedTable::default(),
            due: BTreeMap::new(),
            cleanup: BTreeMap::new(),
            watermark: MIN_WATERMARK,
            out: WithSide::new(ctx, out),
            buffer: Vec::new(),
            late_dropped: ctx.counter(names::LATE_RECORDS_DROPPED),
            info: ctx.info.clone(),
            state: ctx.state(),
        }
        .restored()
    }

    /// Refills the sessions from the restored snapshot, and schedules their firing and
    /// clean-up again (both follow from a session's end and whether it has fired).
    fn restored(mut self) -> Result<Self> {
        let Some(state) = self.state.clone() else { return Ok(self) };
        let lateness = self.lateness();
        for (_, key, value) in state.restored_entries(SESSIONS)? {
            let key: K = decode(&key)?;
            let hash = self.hasher.hash(&key)?;
            let stored: Vec<(i64, i64, bool, G::Acc)> = decode(&value)?;
            for (start, end, fired, acc) in stored {
                let window = TimeWindow::new(start, end);
                let schedule = if fired { &mut self.cleanup } else { &mut self.due };
                let at = window.max_timestamp().saturating_add(if fired { lateness } else { 0 });
                schedule.entry(at).or_default().push((hash, key.clone()));
                self.sessions.get_or_insert_with(hash, &key, Vec::new).push(Session { window, acc, fired });
            }
        }
        Ok(self)
    }

    /// Puts every key's sessions into the checkpoint being taken.
    fn snapshot(&self) -> Result<()> {
        let Some(state) = &self.state else { return Ok(()) };
        let max = state.max_parallelism();
        let mut entries = Vec::new();
        for (hash, key, sessions) in self.sessions.iter_hashed() {
            let stored: Vec<_> = sessions.iter().map(|s| (s.window.start, s.window.end, s.fired, &s.acc)).collect();
            entries.push((key_group(hash, max) as u16, encode(&self.info, key)?, encode(&self.info, &stored)?));
        }
        state.snapshot_keyed(SESSIONS, entries);
        Ok(())
    }

    fn lateness(&self) -> i64 {
        if self.event_time {
            self.lateness.allowed
        } else {
            0
        }
    }

    /// Adds one record to its key's sessions, merging those it bridges; `false` if late.
    fn add_record(&mut self, value: T, timestamp: Timestamp) -> Result<bool> {
        let lateness = self.lateness();
        let key = (self.key_of)(&value);
        let hash = self.hasher.hash(&key)?;
        let sessions = self.sessions.get_or_insert_with(hash, &key, Vec::new);
        let mut window = TimeWindow::new(timestamp, timestamp.saturating_add(self.gap));
        let mut acc = self.aggregate.create_accumulator();
        // Take every session that overlaps (or touches) the new one, and merge them in.
        let mut i = 0;
        while i < sessions.len() {
            let s = &sessions[i].window;
            if s.start <= window.end && window.start <= s.end {
                let merged = sessions.swap_remove(i);
                window = TimeWindow::new(window.start.min(merged.window.start), window.end.max(merged.window.end));
                self.aggregate.merge(&mut acc, merged.acc);
            } else {
                i += 1;
            }
        }
        if self.event_time && window.max_timestamp().saturating_add(lateness) <= self.watermark {
            // Late, as Flink decides it for merging windows: on the merged session. Nothing
            // can have merged then: any part would have been cleaned up already.
            self.forget_if_empty(hash, &key);
            return Ok(false);
        }
        self.aggregate.add(&mut acc, value);
        let due_now = self.event_time && window.max_timestamp() <= self.watermark;
        if due_now {
            // Within the allowed lateness of a session that is due: it fires at once.
            let result = (self.window_fn)(&key, window, self.aggregate.get_result(acc.clone()));
            self.buffer.push(Record::new(result, window.max_timestamp()));
            let cleanup_at = window.max_timestamp().saturating_add(lateness);
            self.cleanup.entry(cleanup_at).or_default().push((hash, key.clone()));
        } else {
            self.due.entry(window.max_timestamp()).or_default().push((hash, key.clone()));
        }
        let sessions = self.sessions.get_or_insert_with(hash, &key, Vec::new);
        sessions.push(Session { window, acc, fired: due_now });
        Ok(true)
    }

    /// Emits every session whose max timestamp is at most `time`, and removes those whose
    /// cleanup time (max timestamp + allowed lateness) has come.
    fn fire_until(&mut self, time: Timestamp) -> Result<()> {
        let lateness = self.lateness();
        while let Some(entry) = self.due.first_entry().filter(|e| *e.key() <= time) {
            let (max_timestamp, keys) = entry.remove_entry();
            for (hash, key) in keys {
                let Some(sessions) = self.sessions.get_mut(hash, &key) else { continue };
                let Some(at) = sessions.iter().position(|s| s.window.max_timestamp() == max_timestamp && !s.fired)
                else {
                    continue; // merged into a longer session since
                };
                let (window, acc) = if lateness == 0 {
                    let session = sessions.swap_remove(at);
                    (session.window, session.acc)
                } else {
                    let session = &mut sessions[at];
                    session.fired = true;
                    (session.window, session.acc.clone())
                };
                if lateness == 0 {
                    self.forget_if_empty(hash, &key);
                } else {
                    self.cleanup.entry(max_timestamp.saturating_add(lateness)).or_default().push((hash, key.clone()));
                }
                let (aggregate, window_fn) = (&self.aggregate, &self.window_fn);
                let result = self.info.guard(|| window_fn(&key, window, aggregate.get_result(acc)))?;
                self.buffer.push(Record::new(result, max_timestamp));
            }
            // Sent per end time, so the end of input does not hold every result at once.
            self.out.records(&mut self.buffer)?;
        }
        while let Some(entry) = self.cleanup.first_entry().filter(|e| *e.key() <= time) {
            let (cleanup_at, keys) = entry.remove_entry();
            for (hash, key) in keys {
                if let Some(sessions) = self.sessions.get_mut(hash, &key) {
                    sessions.retain(|s| !(s.fired && s.window.max_timestamp().saturating_add(lateness) == cleanup_at));
                }
                self.forget_if_empty(hash, &key);
            }
        }
        Ok(())
    }

    /// Drops a key's entry once it has no session left.
    fn forget_if_empty(&mut self, hash: u64, key: &K) {
        if self.sessions.get_mut(hash, key).is_some_and(|s| s.is_empty()) {
            self.sessions.remove(hash, key);
        }
    }
}

impl<T, K, F, G, W, O> TakesRecords<T> for SessionOperator<T, K, F, G, W, O>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K,
    G: AggregateFunction<T>,
    W: Fn(&K, TimeWindow, G::Out) -> O,
    O: Send,
{
    fn add(&mut self, value: T, timestamp: Timestamp) -> Result<bool> {
        self.add_record(value, timestamp)
    }

    fn event_time(&self) -> bool {
        self.event_time
    }

    fn intake_parts(&mut self) -> (&Lateness<T>, &mut SideOutputs, &OperatorInfo) {
        (&self.lateness, &mut self.out.side, &self.info)
    }
}

impl<T, K, F, G, W, O> Output<T> for SessionOperator<T, K, F, G, W, O>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K + Send,
    G: AggregateFunction<T>,
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
        if self.event_time {
            self.watermark = watermark;
            self.fire_until(watermark)?;
        }
        self.out.watermark(watermark)
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.out.idle(idle)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        if !self.event_time {
            self.fire_until(now)?;
        }
        self.out.tick(now)
    }

    fn barrier(&mut self, barrier: eddy_core::Barrier) -> Result<()> {
        self.snapshot()?;
        self.out.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        self.fire_until(Timestamp::MAX)?;
        self.out.finish()
    }
}
