//! A job's metrics, readable while it runs and after it ends: the typed built-in ones per
//! operator, subtask and job ([`JobMetrics::operators`], [`JobMetrics::job`]; see
//! [`operator_metrics`](crate::operator_metrics)) and the named counters that operators and
//! connectors register ([`JobMetrics::subtasks`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::checkpoint::CheckpointHistory;
pub use crate::counter::Counter;
pub use crate::metric_names as names;
use crate::observed::SubtaskCells;
use crate::operator_metrics::{JobStats, Layout, OperatorMetrics, OperatorShape};
use crate::user_metrics::{MetricGroup, UserMetrics};

/// One registered counter: (operator, subtask, counter name, counter).
type Registered = (String, usize, String, Counter);

/// The counters of every subtask of a job, by operator name, subtask and counter name, and
/// the cells of its typed built-in metrics.
#[derive(Debug, Clone, Default)]
pub struct MetricRegistry {
    counters: Arc<Mutex<Vec<Registered>>>,
    layout: Arc<Mutex<Layout>>,
    checkpoints: CheckpointHistory,
    user: UserMetrics,
}

impl MetricRegistry {
    /// Registers (or finds) the counter `name` of `operator`'s subtask `subtask`.
    pub fn counter(&self, operator: &str, subtask: usize, name: &str) -> Counter {
        let mut all = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((.., c)) = all.iter().find(|(o, s, n, _)| o == operator && *s == subtask && n == name) {
            return c.clone();
        }
        let counter = Counter::default();
        all.push((operator.to_string(), subtask, name.to_string(), counter.clone()));
        counter
    }

    /// The user metrics of `operator`'s subtask `subtask` (what a function's context hands
    /// out; see [`user_metrics`](crate::user_metrics)).
    pub fn user_metrics(&self, operator: &str, subtask: usize) -> MetricGroup {
        self.user.group(operator, subtask)
    }

    /// Sets up the typed metrics of every subtask of `operators` (the job's nodes in order).
    pub(crate) fn describe(&self, operators: &[OperatorShape]) {
        let counter = |operator: &str, subtask: usize| self.counter(operator, subtask, names::RECORDS_IN);
        self.layout().describe(operators, counter);
    }

    /// The typed cells of node `node`'s subtask `subtask`.
    pub(crate) fn cells(&self, node: usize, subtask: usize) -> Option<Arc<SubtaskCells>> {
        self.layout().cells(node, subtask)
    }

    /// Counts a restart of the job.
    pub(crate) fn restarted(&self) {
        self.layout().restarts.add(1);
    }

    /// Stops the job's uptime clock.
    pub(crate) fn ended(&self) {
        self.layout().ended.get_or_insert_with(std::time::Instant::now);
    }

    /// The job's checkpoint history, which the coordinator adds to.
    pub(crate) fn checkpoint_history(&self) -> CheckpointHistory {
        self.checkpoints.clone()
    }

    fn layout(&self) -> std::sync::MutexGuard<'_, Layout> {
        self.layout.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A snapshot of every metric.
    pub fn snapshot(&self) -> JobMetrics {
        let mut subtasks: BTreeMap<(String, usize), BTreeMap<String, u64>> = BTreeMap::new();
        for (op, subtask, name, c) in self.counters.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            subtasks.entry((op.clone(), *subtask)).or_default().insert(name.clone(), c.get());
        }
        let (operators, mut job) = self.layout().read(&subtasks, &self.user.snapshot());
        job.checkpoints.history = self.checkpoints.records();
        job.checkpoints.last_alignment_ms =
            job.checkpoints.history.iter().rev().find(|c| c.status == "COMPLETED").map(|c| c.alignment_ms);
        JobMetrics { subtasks, operators, job }
    }
}

/// A job's metrics at one moment: the typed built-in ones per operator and per job, and the
/// named counters of every subtask.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobMetrics {
    /// Every operator's built-in metrics, in job-graph order (sources first).
    pub operators: Vec<OperatorMetrics>,
    /// Job-wide metrics: uptime, restarts, checkpoints.
    pub job: JobStats,
    /// Every subtask's named counters: `(operator, subtask) -> counter name -> value` (the
    /// built-in ones that operators and connectors keep, and users' own).
    pub subtasks: BTreeMap<(String, usize), BTreeMap<String, u64>>,
}

/// A counter asked for by a name no subtask of the operator has (a misspelled operator or
/// counter name, which [`JobMetrics::total`] would read as 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no counter '{name}' on operator '{operator}'; {known}")]
pub struct UnknownMetric {
    /// The operator asked for.
    pub operator: String,
    /// The counter asked for.
    pub name: String,
    /// What exists instead: the operator's counters, or the job's operators.
    pub known: String,
}

impl JobMetrics {
    /// The built-in metrics of the operator named `name` (the first, if several share the
    /// name); `None` when the job has no such operator.
    ///
    /// ```
    /// # let metrics = eddy_runtime::JobMetrics::default();
    /// assert!(metrics.operator("Sink: results").is_none()); // no such operator: not 0
    /// ```
    pub fn operator(&self, name: &str) -> Option<&OperatorMetrics> {
        self.operators.iter().find(|op| op.name == name)
    }

    /// The sum of counter `name` over all subtasks of `operator`, or an error that names the
    /// counters (or operators) there are when nothing by those names exists.
    ///
    /// ```
    /// # let metrics = eddy_runtime::JobMetrics::default();
    /// assert!(metrics.counter("Sink: results", "records_writen").is_err()); // not silently 0
    /// ```
    pub fn counter(&self, operator: &str, name: &str) -> Result<u64, UnknownMetric> {
        let of_operator: Vec<&BTreeMap<String, u64>> =
            self.subtasks.iter().filter(|((op, _), _)| op == operator).map(|(_, counters)| counters).collect();
        if of_operator.iter().any(|counters| counters.contains_key(name)) {
            return Ok(self.total(operator, name));
        }
        let known = if of_operator.is_empty() {
            let operators: std::collections::BTreeSet<&str> = self.subtasks.keys().map(|(op, _)| op.as_str()).collect();
            format!("the operators are: {}", operators.into_iter().collect::<Vec<_>>().join(", "))
        } else {
            let names: std::collections::BTreeSet<&str> =
                of_operator.iter().flat_map(|counters| counters.keys()).map(String::as_str).collect();
            format!("its counters are: {}", names.into_iter().collect::<Vec<_>>().join(", "))
        };
        Err(UnknownMetric { operator: operator.to_string(), name: name.to_string(), known })
    }

    /// The sum of counter `name` over all subtasks of `operator` (0 when there is none; see
    /// [`JobMetrics::counter`] for a lookup that tells a misspelling from a zero).
    pub fn total(&self, operator: &str, name: &str) -> u64 {
        self.subtasks.iter().filter(|((op, _), _)| op == operator).filter_map(|(_, counters)| counters.get(name)).sum()
    }

    /// The sum of counter `name` over every operator.
    pub fn total_all(&self, name: &str) -> u64 {
        self.subtasks.values().filter_map(|counters| counters.get(name)).sum()
    }
}
