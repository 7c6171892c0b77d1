//! The typed view of a job's metrics: per operator and subtask (records in and out,
//! watermarks and their lag, late and dead-lettered records, busy / idle / backpressured
//! time, a source's lag) and per job (uptime, restarts, checkpoints).
//!
//! Every value is a field, so a misspelled metric is a compile error; a value that does not
//! exist yet (no watermark, a source that does not report its lag, no checkpoint completed)
//! is `None`, never 0. The cells behind them are per-subtask atomics ([`SubtaskCells`])
//! that the job's threads update and [`JobMetrics`](crate::JobMetrics) reads and adds up
//! when asked, so reading costs the job nothing.
//!
//! ```
//! # fn show(handle: &eddy_runtime::JobHandle) {
//! let metrics = handle.metrics();
//! for operator in &metrics.operators {
//!     let backpressured = operator.subtasks.iter().filter_map(|s| s.time).map(|t| t.backpressured_ms_per_s).max();
//!     println!("{}: {} in, {} out, backpressured {backpressured:?} ms/s", operator.name, operator.records_in(), operator.records_out());
//! }
//! println!("restarts: {}, checkpoints: {}", metrics.job.restarts, metrics.job.checkpoints.completed);
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use eddy_core::time::{now_ms, MAX_WATERMARK};
use eddy_core::Timestamp;
use serde::Serialize;

use crate::checkpoint::CheckpointRecord;
use crate::counter::Counter;
use crate::metric_names as names;
use crate::observed::SubtaskCells;
use crate::record_rates::RecordRates;
use crate::task_time::{TaskTime, TimeRates};
use crate::user_metrics::UserValue;

/// One operator's metrics, its subtasks' values and their sums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorMetrics {
    /// The operator's name (as given to the API; also its `operator` label).
    pub name: String,
    /// Its uid, if it has one.
    pub uid: Option<String>,
    /// Its position in the job graph (0 for the first source).
    pub id: usize,
    /// The first operator of the chain it runs in (its own `id` when it heads a chain): the
    /// operators of one chain share a thread per subtask, so they share busy / idle /
    /// backpressured time.
    pub chain: usize,
    /// How many subtasks run it.
    pub parallelism: usize,
    /// Each subtask's values, by subtask index.
    pub subtasks: Vec<SubtaskMetrics>,
}

/// One operator subtask's metrics at the moment they were read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubtaskMetrics {
    /// The subtask's index.
    pub subtask: usize,
    /// Records that entered the operator (a source: records it read). Records replayed after
    /// a restart count again, as in Flink.
    pub records_in: u64,
    /// Records it emitted on its main output, once each however many operators consume it.
    pub records_out: u64,
    /// A source: bytes it read, summed over its splits (`None` when the source does not
    /// count them; other operators pass records in memory, so they have none).
    pub bytes_in: Option<u64>,
    /// Records in and out (and a source's bytes in) per second, over the time since the
    /// previous read (at least a second), `None` before it started.
    pub rates: Option<RecordRates>,
    /// The newest watermark it received (a source: the newest it emitted); `None` before the
    /// first. After the end of input it is the end of time (`i64::MAX`).
    pub watermark: Option<Timestamp>,
    /// The newest watermark it emitted; `None` before the first.
    pub output_watermark: Option<Timestamp>,
    /// Wall clock minus `watermark`, in milliseconds: how far event time is behind now.
    /// `None` without a watermark, or once event time has reached its end.
    pub watermark_lag_ms: Option<i64>,
    /// Records a window dropped because their window had already fired.
    pub late_records_dropped: u64,
    /// Records it sent to the dead-letter output.
    pub dead_letters: u64,
    /// Busy, idle and backpressured milliseconds per second of its chain's thread, over the
    /// time since the previous read (at least a second), `None` before it started.
    pub time: Option<TimeRates>,
    /// Milliseconds its chain's thread waited for input, since the job started.
    pub idle_ms_total: u64,
    /// Milliseconds its chain's thread was blocked on a full output channel.
    pub backpressured_ms_total: u64,
    /// A source: records behind the newest available record, summed over its splits (`None`
    /// when the source does not report it).
    pub lag_records: Option<u64>,
    /// A source: milliseconds behind the newest available record, the most of its splits.
    pub lag_ms: Option<u64>,
    /// Bytes of state (keys and values) it put into the newest completed checkpoint; `None`
    /// before the first, or when it keeps no state.
    pub state_size_bytes: Option<u64>,
    /// The metrics its functions registered (see [`user_metrics`](crate::user_metrics)), by
    /// name.
    pub user: BTreeMap<String, UserValue>,
}

/// Job-wide metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobStats {
    /// Milliseconds since the job started (until it ended, for a finished job's result).
    pub uptime_ms: u64,
    /// How often the job restarted from a checkpoint after a failure.
    pub restarts: u64,
    /// Checkpoints and savepoints.
    pub checkpoints: CheckpointStats,
}

/// A job's checkpoints and savepoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckpointStats {
    /// Completed.
    pub completed: u64,
    /// Abandoned: timed out, a task failed, or the input ended first (Flink's failed ones).
    pub failed: u64,
    /// From trigger to complete, of the newest completed one; `None` before the first.
    pub last_duration_ms: Option<u64>,
    /// Bytes of state (keys and values) in the newest completed one.
    pub last_size_bytes: Option<u64>,
    /// The longest barrier alignment of any subtask in the newest completed one, in
    /// milliseconds.
    pub last_alignment_ms: Option<u64>,
    /// The newest checkpoints, completed and failed, oldest first (see
    /// [`checkpoint::history`](crate::checkpoint::history)).
    pub history: Vec<CheckpointRecord>,
}

impl OperatorMetrics {
    /// Records in, over every subtask.
    pub fn records_in(&self) -> u64 {
        self.subtasks.iter().map(|s| s.records_in).sum()
    }

    /// Records out, over every subtask.
    pub fn records_out(&self) -> u64 {
        self.subtasks.iter().map(|s| s.records_out).sum()
    }

    /// Records in per second, over every subtask (`None` before any started).
    pub fn records_in_per_s(&self) -> Option<u64> {
        self.subtasks.iter().filter_map(|s| s.rates).map(|r| r.records_in_per_s).reduce(|a, b| a + b)
    }

    /// Records out per second, over every subtask.
    pub fn records_out_per_s(&self) -> Option<u64> {
        self.subtasks.iter().filter_map(|s| s.rates).map(|r| r.records_out_per_s).reduce(|a, b| a + b)
    }

    /// The user counter `name`, summed over every subtask (`None` when no subtask has a
    /// counter by that name).
    pub fn user_counter(&self, name: &str) -> Option<u64> {
        let counts = self.subtasks.iter().filter_map(|s| match s.user.get(name) {
            Some(UserValue::Counter(n)) => Some(*n),
            _ => None,
        });
        counts.reduce(|a, b| a + b)
    }

    /// Late records dropped, over every subtask.
    pub fn late_records_dropped(&self) -> u64 {
        self.subtasks.iter().map(|s| s.late_records_dropped).sum()
    }

    /// Dead letters, over every subtask.
    pub fn dead_letters(&self) -> u64 {
        self.subtasks.iter().map(|s| s.dead_letters).sum()
    }

    /// The operator's watermark: the lowest of its subtasks' (`None` while any has none).
    pub fn watermark(&self) -> Option<Timestamp> {
        self.subtasks.iter().map(|s| s.watermark).min().flatten()
    }

    /// The most any subtask was backpressured, in milliseconds per second.
    pub fn backpressured_ms_per_s(&self) -> Option<u64> {
        self.subtasks.iter().filter_map(|s| s.time).map(|t| t.backpressured_ms_per_s).max()
    }

    /// Bytes of state over every subtask in the newest completed checkpoint (`None` before
    /// the first, or when it keeps no state).
    pub fn state_size_bytes(&self) -> Option<u64> {
        self.subtasks.iter().filter_map(|s| s.state_size_bytes).reduce(|a, b| a + b)
    }

    /// The most any subtask was idle, in milliseconds per second.
    pub fn idle_ms_per_s(&self) -> Option<u64> {
        self.subtasks.iter().filter_map(|s| s.time).map(|t| t.idle_ms_per_s).max()
    }
}

/// One operator as the registry knows it: its place in the plan and its subtasks' cells.
#[derive(Debug)]
pub(crate) struct OperatorCells {
    name: String,
    uid: Option<String>,
    chain: usize,
    source: bool,
    subtasks: Vec<Arc<SubtaskCells>>,
}

/// What the typed metrics need to know of an operator, as the job is planned.
#[derive(Debug, Clone)]
pub(crate) struct OperatorShape {
    pub(crate) name: String,
    pub(crate) uid: Option<String>,
    pub(crate) parallelism: usize,
    /// The operator that heads its chain (itself, or an operator before it).
    pub(crate) chain: usize,
    /// Whether it is a source (no inputs).
    pub(crate) source: bool,
}

/// The operators of a job and when it started, set once the job is planned.
#[derive(Debug)]
pub(crate) struct Layout {
    pub(crate) started: Instant,
    pub(crate) ended: Option<Instant>,
    pub(crate) operators: Vec<OperatorCells>,
    pub(crate) restarts: Counter,
}

impl Default for Layout {
    fn default() -> Self {
        Layout { started: Instant::now(), ended: None, operators: Vec::new(), restarts: Counter::default() }
    }
}

impl Layout {
    /// One set of cells per subtask of every operator; an operator's cells share the time
    /// of its chain's head. Sources count their records in with the counter the source task
    /// bumps (`counter`).
    pub(crate) fn describe(&mut self, operators: &[OperatorShape], counter: impl Fn(&str, usize) -> Counter) {
        self.operators.clear();
        for (id, operator) in operators.iter().enumerate() {
            let subtasks = (0..operator.parallelism)
                .map(|subtask| {
                    let time = match operator.chain {
                        head if head == id => Arc::new(TaskTime::default()),
                        head => self.operators[head].subtasks[subtask].time.clone(),
                    };
                    let records_in =
                        if operator.source { counter(&operator.name, subtask) } else { Counter::default() };
                    Arc::new(SubtaskCells { records_in, time, ..SubtaskCells::default() })
                })
                .collect();
            self.operators.push(OperatorCells {
                name: operator.name.clone(),
                uid: operator.uid.clone(),
                chain: operator.chain,
                source: operator.source,
                subtasks,
            });
        }
    }

    /// The cells of `node`'s subtask `subtask`.
    pub(crate) fn cells(&self, node: usize, subtask: usize) -> Option<Arc<SubtaskCells>> {
        self.operators.get(node)?.subtasks.get(subtask).cloned()
    }

    /// The typed values now; `counters` are the named counters (`(operator, subtask) -> name
    /// -> value`) that late records, dead letters and a source's lag are read from.
    pub(crate) fn read(
        &self,
        counters: &BTreeMap<(String, usize), BTreeMap<String, u64>>,
        user: &BTreeMap<(String, usize), BTreeMap<String, UserValue>>,
    ) -> (Vec<OperatorMetrics>, JobStats) {
        let now = now_ms();
        let operators = self
            .operators
            .iter()
            .enumerate()
            .map(|(id, op)| OperatorMetrics {
                name: op.name.clone(),
                uid: op.uid.clone(),
                id,
                chain: op.chain,
                parallelism: op.subtasks.len(),
                subtasks: op
                    .subtasks
                    .iter()
                    .enumerate()
                    .map(|(subtask, cells)| {
                        let key = (op.name.clone(), subtask);
                        let mut metrics = read_subtask(subtask, cells, op.source, counters.get(&key), now);
                        metrics.user = user.get(&key).cloned().unwrap_or_default();
                        metrics
                    })
                    .collect(),
            })
            .collect();
        let checkpoint = |name: &str| {
            counters.get(&(names::CHECKPOINTS.to_string(), 0)).and_then(|c| c.get(name)).copied().unwrap_or(0)
        };
        let completed = checkpoint(names::CHECKPOINTS_COMPLETED);
        let stats = JobStats {
            uptime_ms: self.ended.unwrap_or_else(Instant::now).duration_since(self.started).as_millis() as u64,
            restarts: self.restarts.get(),
            checkpoints: CheckpointStats {
                completed,
                failed: checkpoint(names::CHECKPOINTS_ABANDONED),
                last_duration_ms: (completed > 0).then(|| checkpoint(names::LAST_CHECKPOINT_MS)),
                last_size_bytes: (completed > 0).then(|| checkpoint(names::LAST_CHECKPOINT_BYTES)),
                ..CheckpointStats::default()
            },
        };
        (operators, stats)
    }
}

fn read_subtask(
    subtask: usize,
    cells: &SubtaskCells,
    source: bool,
    named: Option<&BTreeMap<String, u64>>,
    now: Timestamp,
) -> SubtaskMetrics {
    let value = |name: &str| named.and_then(|c| c.get(name)).copied().unwrap_or(0);
    // A source's per-split lag counters are named `<split>.lag_records` and `<split>.lag_ms`.
    let splits = |suffix: &str| {
        named.map(|c| c.iter().filter(|(n, _)| n.ends_with(suffix)).map(|(_, &v)| v).collect::<Vec<u64>>())
    };
    let lag_records = splits(&format!(".{}", names::LAG_RECORDS)).filter(|v| !v.is_empty()).map(|v| v.iter().sum());
    let lag_ms = splits(&format!(".{}", names::LAG_MS)).and_then(|v| v.into_iter().max());
    let bytes_in = splits(&format!(".{}", names::BYTES_IN)).filter(|v| !v.is_empty()).map(|v| v.iter().sum());
    let (records_in, records_out) = (cells.records_in.get(), cells.records_out.get());
    let (started, until) = cells.time.span();
    let rates = cells.rates.per_second([records_in, records_out, bytes_in.unwrap_or(0)], started, until);
    let output_watermark = cells.output_watermark.get();
    let watermark = if source { output_watermark } else { cells.input_watermark.get() };
    SubtaskMetrics {
        subtask,
        records_in,
        records_out,
        bytes_in,
        rates,
        watermark,
        output_watermark,
        watermark_lag_ms: watermark.filter(|&w| w != MAX_WATERMARK).map(|w| now.saturating_sub(w)),
        late_records_dropped: value(names::LATE_RECORDS_DROPPED),
        dead_letters: value(names::DEAD_LETTERS),
        time: cells.time.per_second(),
        idle_ms_total: cells.time.idle_ms(),
        backpressured_ms_total: cells.time.backpressured_ms(),
        lag_records,
        lag_ms,
        state_size_bytes: named.and_then(|c| c.get(names::STATE_BYTES)).copied(),
        user: BTreeMap::new(),
    }
}
