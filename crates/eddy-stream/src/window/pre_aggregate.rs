//! A window's pre-aggregation: the stage before the shuffle that folds each upstream
//! subtask's records per key and pane into partial accumulators, so only those cross to
//! the keyed window stage (Flink's local/global aggregation).
//!
//! It is a cache in front of the keyed stage, not state: it sends its partials on when the
//! watermark passes their pane, at every barrier (so a checkpoint finds it empty, as Flink's
//! flush before the barrier), and whenever it holds more than a limit of them, so its memory
//! stays bounded however many keys a window has (the keyed stage merges partials of one key
//! and window whenever they come): [`MAX_PARTIALS`], or [`MAX_PARTIALS_SLED`] when keyed
//! state lives in sled, where the point is that state need not fit in memory. Only the keyed
//! stage, which sees every input's watermark, decides that a record is late: a record whose
//! pane this subtask has already sent goes on alone at once.

use eddy_core::key::local_hash;
use eddy_core::time::MIN_WATERMARK;
use eddy_core::{Barrier, Error, OperatorInfo, Output, Record, Result, Timestamp};
use eddy_runtime::graph::BuildContext;

use crate::keyed_stream::Key;
use crate::window::fold::Fold;
use crate::window::open_windows::OpenWindows;
use crate::window::record_time::record_time;
use crate::window::TimeWindow;
use crate::Data;

/// The most partial accumulators a pre-aggregation holds before it sends them all on: 64 Ki
/// keys and panes per subtask, a few MB for small keys (word count's windows hold under ten
/// thousand words, so this never shortens them).
pub(crate) const MAX_PARTIALS: usize = 1 << 16;

/// [`MAX_PARTIALS`] with the sled backend: 1 Ki, so even large accumulators (a sketch per
/// key, say) take little memory in front of a keyed stage that keeps them on disk.
pub(crate) const MAX_PARTIALS_SLED: usize = 1 << 10;

/// The pre-aggregation of one upstream subtask.
pub(crate) struct PreAggregateOperator<K, F, S: Fold<T>, W, O, T> {
    key_of: F,
    fold: S,
    /// Makes the partial the keyed stage receives.
    to_partial: W,
    windows: OpenWindows<K, S::Acc>,
    /// How many partials `windows` holds, and how many it may.
    held: usize,
    limit: usize,
    /// The panes of the previous record, reused while timestamps repeat.
    assigned: Vec<TimeWindow>,
    assigned_for: Option<Timestamp>,
    watermark: Timestamp,
    out: Box<dyn Output<O>>,
    buffer: Vec<Record<O>>,
    info: OperatorInfo,
    _input: std::marker::PhantomData<fn(T)>,
}

impl<T, K, F, S, W, O> PreAggregateOperator<K, F, S, W, O, T>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K,
    S: Fold<T>,
    W: Fn(&K, TimeWindow, S::Out) -> O,
    O: Send,
{
    pub(crate) fn new(ctx: &BuildContext, fold: S, key_of: F, to_partial: W, out: Box<dyn Output<O>>) -> Result<Self> {
        fold.validate().map_err(|e| Error::InvalidJob(format!("operator '{}': {e}", ctx.info.name)))?;
        Ok(PreAggregateOperator {
            key_of,
            fold,
            to_partial,
            windows: OpenWindows::default(),
            held: 0,
            limit: if ctx.config.state_dir.is_some() { MAX_PARTIALS_SLED } else { MAX_PARTIALS },
            assigned: Vec::new(),
            assigned_for: None,
            watermark: MIN_WATERMARK,
            out,
            buffer: Vec::new(),
            info: ctx.info.clone(),
            _input: std::marker::PhantomData,
        })
    }

    /// Folds a batch into its panes.
    fn add_batch(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        for record in batch.drain(..) {
            let timestamp = record_time(true, record.timestamp, 0, &self.info)?;
            if self.assigned_for != Some(timestamp) {
                self.assigned.clear();
                self.fold.windows(&record.value, timestamp, &mut self.assigned);
                self.assigned_for = Some(timestamp);
            }
            let key = (self.key_of)(&record.value);
            // The table stays in this subtask's memory, so a fast hash will do; the keyed
            // stage computes the stable one (the key group) once per partial.
            let hash = local_hash(&key)?;
            let mut value = Some(record.value);
            for (i, &pane) in self.assigned.iter().enumerate() {
                let item = if i + 1 < self.assigned.len() { value.clone() } else { value.take() };
                let Some(item) = item else { break };
                if pane.max_timestamp() <= self.watermark {
                    // This subtask has sent the pane already: the record goes on alone.
                    let mut acc = self.fold.create();
                    self.fold.fold(&mut acc, item);
                    self.buffer
                        .push(Record::new((self.to_partial)(&key, pane, self.fold.result(acc)), pane.max_timestamp()));
                    continue;
                }
                let table = &mut self.windows.get(pane).table;
                let fold = &self.fold;
                let mut created = false;
                let acc = table.get_or_insert_with(hash, &key, || {
                    created = true;
                    fold.create()
                });
                fold.fold(acc, item);
                self.held += usize::from(created);
            }
        }
        Ok(())
    }

    /// Sends on every pane whose max timestamp is at most `time`, a pane at a time.
    fn send_until(&mut self, time: Timestamp) -> Result<()> {
        let (fold, to_partial, buffer) = (&self.fold, &self.to_partial, &mut self.buffer);
        self.info.guard(|| -> Result<()> {
            while let Some(mut pane) = self.windows.pop_due(time) {
                self.held -= pane.table.len();
                for (key, acc) in pane.table.drain() {
                    buffer.push(Record::new(
                        to_partial(&key, pane.window, fold.result(acc)),
                        pane.window.max_timestamp(),
                    ));
                }
                self.out.records(buffer)?;
            }
            Ok(())
        })?
    }

    /// Sends every partial on.
    fn send_all(&mut self) -> Result<()> {
        let (fold, to_partial, buffer) = (&self.fold, &self.to_partial, &mut self.buffer);
        self.info.guard(|| {
            for mut pane in self.windows.drain() {
                for (key, acc) in pane.table.drain() {
                    buffer.push(Record::new(
                        to_partial(&key, pane.window, fold.result(acc)),
                        pane.window.max_timestamp(),
                    ));
                }
            }
        })?;
        self.held = 0;
        self.out.records(&mut self.buffer)
    }
}

impl<T, K, F, S, W, O> Output<T> for PreAggregateOperator<K, F, S, W, O, T>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K + Send,
    S: Fold<T>,
    W: Fn(&K, TimeWindow, S::Out) -> O + Send,
    O: Send,
{
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let info = self.info.clone();
        info.guard(|| self.add_batch(batch))??;
        if self.held > self.limit {
            return self.send_all();
        }
        self.out.records(&mut self.buffer)
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.watermark = watermark;
        self.send_until(watermark)?;
        self.out.watermark(watermark)
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.out.idle(idle)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.out.tick(now)
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.send_all()?;
        self.out.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        self.send_until(Timestamp::MAX)?;
        self.out.finish()
    }
}
