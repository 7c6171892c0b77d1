//! The window operator: per window, one accumulator per key; fires windows in order of
//! their end as the watermark (event time) or the clock (processing time) passes them.

use eddy_core::key::{key_group, KeyHasher};
use eddy_core::time::{now_ms, MIN_WATERMARK, NO_TIMESTAMP};
use eddy_core::{Barrier, Error, OperatorInfo, Output, Record, Result, Timestamp};
use eddy_runtime::checkpoint::StateContext;
use eddy_runtime::graph::BuildContext;
use eddy_runtime::metrics::{names, Counter};

use crate::keyed_stream::Key;
use crate::side_output::{OutputTag, WithSide};
use crate::state_codec::{decode, decode_prefix, encode};
use crate::window::fold::Fold;
use crate::window::intake::missing_timestamp;
use crate::window::open_windows::OpenWindows;
use crate::window::TimeWindow;
use crate::Data;

/// What happens to a record whose window has already fired here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Late {
    /// Drop it and count it (the keyed stage, as Flink does).
    Drop,
    /// Emit it alone at once (a pre-aggregation: only the keyed stage, which sees every
    /// input's watermark, may decide that a record is late).
    EmitAlone,
}

/// How long fired windows stay open, and where records go that come after that.
#[derive(Clone)]
pub(crate) struct Lateness<T> {
    /// Milliseconds a window stays open after it fired (Flink's `allowedLateness`).
    pub(crate) allowed: i64,
    /// Where records for windows past that go, instead of being dropped.
    pub(crate) side_output: Option<OutputTag<T>>,
}

impl<T> Default for Lateness<T> {
    fn default() -> Self {
        Lateness { allowed: 0, side_output: None }
    }
}

pub(crate) struct WindowOperator<T, K, F, S: Fold<T>, W, O> {
    key_of: F,
    fold: S,
    window_fn: W,
    late: Late,
    lateness: Lateness<T>,
    hasher: KeyHasher,
    windows: OpenWindows<K, S::Acc>,
    /// The windows of the previous record, reused while timestamps repeat.
    assigned: Vec<TimeWindow>,
    assigned_for: Option<Timestamp>,
    watermark: Timestamp,
    out: WithSide<O>,
    buffer: Vec<Record<O>>,
    late_dropped: Counter,
    info: OperatorInfo,
    /// Checkpointing of a keyed stage (a pre-aggregation holds nothing at a barrier).
    state: Option<StateContext>,
}

/// The checkpointed state of a window operator: every open window's accumulator per key.
const WINDOWS: &str = "windows";

impl<T, K, F, S, W, O> WindowOperator<T, K, F, S, W, O>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K,
    S: Fold<T>,
    W: Fn(&K, TimeWindow, S::Out) -> O,
    O: Send,
{
    pub(crate) fn new(
        ctx: &BuildContext,
        stage: (S, Late, Lateness<T>),
        key_of: F,
        window_fn: W,
        out: Box<dyn Output<O>>,
    ) -> Result<Self> {
        let (fold, late, lateness) = stage;
        fold.validate().map_err(|e| Error::InvalidJob(format!("operator '{}': {e}", ctx.info.name)))?;
        if lateness.allowed < 0 {
            return Err(Error::InvalidJob(format!(
                "operator '{}': allowed lateness must not be negative",
                ctx.info.name
            )));
        }
        WindowOperator {
            key_of,
            fold,
            window_fn,
            late,
            lateness,
            hasher: KeyHasher::default(),
            windows: OpenWindows::default(),
            assigned: Vec::new(),
            assigned_for: None,
            watermark: MIN_WATERMARK,
            out: WithSide::new(ctx, out),
            buffer: Vec::new(),
            late_dropped: ctx.counter(names::LATE_RECORDS_DROPPED),
            info: ctx.info.clone(),
            state: ctx.state(),
        }
        .restored()
    }

    /// Refills the open windows from the restored snapshot.
    fn restored(mut self) -> Result<Self> {
        let Some(state) = &self.state else { return Ok(self) };
        for (_, key, value) in state.restored_entries(WINDOWS)? {
            let (key, window) = split_window_key::<K>(&key)?;
            let (fired, acc): (bool, S::Acc) = decode(&value)?;
            let hash = self.hasher.hash(&key)?;
            let open = self.windows.get(window);
            open.fired |= fired;
            let fold = &self.fold;
            *open.table.get_or_insert_with(hash, &key, || fold.create()) = acc;
        }
        Ok(self)
    }

    /// At a barrier a pre-aggregation sends its partials on (so it holds no state in the
    /// checkpoint: Flink's flush before the barrier); a keyed stage snapshots its windows.
    fn on_barrier(&mut self) -> Result<()> {
        if self.late == Late::EmitAlone {
            return self.flush_partials();
        }
        let Some(state) = &self.state else { return Ok(()) };
        let max = state.max_parallelism();
        let mut entries = Vec::new();
        for open in self.windows.iter() {
            for (hash, key, acc) in open.table.iter_hashed() {
                let mut bytes = encode(&self.info, key)?;
                bytes.extend_from_slice(&open.window.start.to_be_bytes());
                bytes.extend_from_slice(&open.window.end.to_be_bytes());
                entries.push((key_group(hash, max) as u16, bytes, encode(&self.info, &(open.fired, acc))?));
            }
        }
        state.snapshot_keyed(WINDOWS, entries);
        Ok(())
    }

    /// Emits every open window's accumulators as they are and forgets them.
    fn flush_partials(&mut self) -> Result<()> {
        let (fold, window_fn, buffer) = (&self.fold, &self.window_fn, &mut self.buffer);
        self.info.guard(|| {
            for mut open in self.windows.drain() {
                for (key, acc) in open.table.drain() {
                    buffer
                        .push(Record::new(window_fn(&key, open.window, fold.result(acc)), open.window.max_timestamp()));
                }
            }
        })?;
        self.out.records(&mut self.buffer)
    }

    fn timestamp_of(&self, record: &Record<T>, now: Timestamp) -> Result<Timestamp> {
        if !self.fold.is_event_time() {
            Ok(now)
        } else if record.timestamp == NO_TIMESTAMP {
            Err(missing_timestamp(&self.info))
        } else {
            Ok(record.timestamp)
        }
    }

    /// Adds a batch to its windows; returns how many records were dropped as late.
    fn add_batch(&mut self, batch: &mut Vec<Record<T>>, now: Timestamp) -> Result<u64> {
        let event_time = self.fold.is_event_time();
        let mut dropped = 0;
        for record in batch.drain(..) {
            let timestamp = self.timestamp_of(&record, now)?;
            if self.assigned_for != Some(timestamp) || !self.fold.windows_by_timestamp() {
                self.assigned.clear();
                self.fold.windows(&record.value, timestamp, &mut self.assigned);
                self.assigned_for = Some(timestamp);
            }
            let key = (self.key_of)(&record.value);
            let hash = self.hasher.hash(&key)?;
            let records = self.fold.records(&record.value);
            let mut value = Some(record.value);
            let (mut kept, mut late_value) = (false, None);
            for (i, &window) in self.assigned.iter().enumerate() {
                let item = if i + 1 < self.assigned.len() { value.clone() } else { value.take() };
                let Some(item) = item else { break };
                let cleanup = window.max_timestamp().saturating_add(self.lateness.allowed);
                if event_time && cleanup <= self.watermark {
                    if self.late == Late::EmitAlone {
                        let mut acc = self.fold.create();
                        self.fold.fold(&mut acc, item);
                        let result = (self.window_fn)(&key, window, self.fold.result(acc));
                        self.buffer.push(Record::new(result, window.max_timestamp()));
                        kept = true;
                    } else {
                        late_value = Some(item);
                    }
                    continue;
                }
                let open = self.windows.get(window);
                let acc = open.table.get_or_insert_with(hash, &key, || self.fold.create());
                self.fold.fold(acc, item);
                if event_time && window.max_timestamp() <= self.watermark {
                    // Late but within the allowed lateness: fire this key's window at once
                    // (as Flink's EventTimeTrigger does for such a record).
                    open.fired = true;
                    let result = (self.window_fn)(&key, window, self.fold.result(acc.clone()));
                    self.buffer.push(Record::new(result, window.max_timestamp()));
                }
                kept = true;
            }
            // A record in no window at all (gaps between sliding windows) is not late.
            if !kept && !self.assigned.is_empty() {
                dropped += records;
                if let (Some(tag), Some(late)) = (&self.lateness.side_output, late_value) {
                    self.out.side.emit(tag, late, timestamp);
                }
            }
        }
        Ok(dropped)
    }

    /// Emits every window whose max timestamp is at most `time`, and removes those whose
    /// cleanup time (max timestamp + allowed lateness) has come.
    fn fire_until(&mut self, time: Timestamp) -> Result<()> {
        let lateness = if self.fold.is_event_time() { self.lateness.allowed } else { 0 };
        let (fold, window_fn, buffer, out) = (&self.fold, &self.window_fn, &mut self.buffer, &mut self.out);
        let emit = |key: &K, window: TimeWindow, acc: S::Acc, buffer: &mut Vec<Record<O>>| {
            buffer.push(Record::new(window_fn(key, window, fold.result(acc)), window.max_timestamp()));
        };
        // Each window's results go out before the next fires, so a watermark that fires many
        // windows at once (the end of input) never holds all their results in memory.
        self.info.guard(|| -> Result<()> {
            while let Some(mut expired) = self.windows.pop_expired(time, lateness) {
                if !expired.fired {
                    for (key, acc) in expired.table.drain() {
                        emit(&key, expired.window, acc, buffer);
                    }
                    out.records(buffer)?;
                }
            }
            for open in self.windows.due_unfired(time) {
                for (key, acc) in open.table.iter() {
                    emit(key, open.window, acc.clone(), buffer);
                }
                open.fired = true;
                out.records(buffer)?;
            }
            Ok(())
        })?
    }
}

impl<T, K, F, S, W, O> Output<T> for WindowOperator<T, K, F, S, W, O>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K + Send,
    S: Fold<T>,
    W: Fn(&K, TimeWindow, S::Out) -> O + Send,
    O: Send,
{
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let now = if self.fold.is_event_time() { 0 } else { now_ms() };
        let info = self.info.clone();
        let dropped = info.guard(|| self.add_batch(batch, now))??;
        if dropped > 0 {
            self.late_dropped.add(dropped);
        }
        self.out.records(&mut self.buffer)
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        if self.fold.is_event_time() {
            self.watermark = watermark;
            self.fire_until(watermark)?;
        }
        self.out.watermark(watermark)
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.out.idle(idle)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        if !self.fold.is_event_time() {
            self.fire_until(now)?;
        }
        self.out.tick(now)
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.on_barrier()?;
        self.out.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        // A bounded input has ended: every open window fires, processing-time ones included.
        self.fire_until(Timestamp::MAX)?;
        self.out.finish()
    }
}

/// Splits a checkpointed window entry key: the key's bincode bytes, then start and end.
fn split_window_key<K: Key>(bytes: &[u8]) -> Result<(K, TimeWindow)> {
    let (key, rest) = decode_prefix::<K>(bytes)?;
    let bounds: Option<[u8; 16]> = rest.try_into().ok();
    let bounds = bounds.ok_or_else(|| Error::Checkpoint("a window entry's key is damaged".into()))?;
    let both = u128::from_be_bytes(bounds);
    Ok((key, TimeWindow { start: (both >> 64) as u64 as i64, end: both as u64 as i64 }))
}
