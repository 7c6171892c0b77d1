//! Metrics a user's function registers for itself (Flink's `getMetricGroup()`): counters,
//! gauges and histograms of one operator subtask, read with the built-in ones through
//! [`JobHandle::metrics`](crate::JobHandle::metrics) (in
//! [`SubtaskMetrics::user`](crate::SubtaskMetrics::user)) and exported by the metrics
//! endpoint with the same `job`, `operator` and `subtask` labels.
//!
//! A function gets its subtask's [`MetricGroup`] from its context in `open` and keeps the
//! handles: each is a few atomics, cheap to update from the record path, and asking for a
//! name again returns the same one.
//!
//! ```
//! # use eddy_runtime::user_metrics::MetricGroup;
//! # fn open(metrics: &MetricGroup) {
//! let alerts = metrics.counter("fraud_alerts");
//! let open_cases = metrics.gauge("open_cases");
//! let amounts = metrics.histogram("alert_amount");
//! alerts.add(1);
//! open_cases.set(3);
//! amounts.record(250);
//! # }
//! ```
//!
//! Histograms count values into fixed buckets whose upper bounds run 1, 2, 5, 10, 20, 50 …
//! up to 10⁹ ([`BUCKETS`]), as Prometheus histograms do, so they can be added up across
//! subtasks and scrapes and their quantiles estimated with `histogram_quantile`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::counter::Counter;

/// The upper bounds (inclusive) of a histogram's buckets: 1-2-5 steps from 1 to 10⁹; values
/// above the last go only into the count (Prometheus' `+Inf` bucket).
pub const BUCKETS: [u64; 28] = {
    let mut bounds = [0u64; 28];
    let (mut i, mut decade) = (0, 1u64);
    while i < 28 {
        bounds[i] = decade;
        if i + 1 < 28 {
            bounds[i + 1] = 2 * decade;
        }
        if i + 2 < 28 {
            bounds[i + 2] = 5 * decade;
        }
        i += 3;
        decade *= 10;
    }
    bounds
};

/// A value that goes up and down (Flink's `Gauge`): the size of a cache, open cases.
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// Adds `delta` (negative to subtract).
    pub fn add(&self, delta: i64) {
        self.0.fetch_add(delta, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A distribution of values (latencies, sizes, amounts) in [`BUCKETS`].
#[derive(Debug, Clone)]
pub struct Histogram(Arc<HistogramCells>);

#[derive(Debug)]
struct HistogramCells {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram(Arc::new(HistogramCells {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }))
    }
}

impl Histogram {
    /// Counts `value`.
    pub fn record(&self, value: u64) {
        let cells = &self.0;
        if let Some(bucket) = BUCKETS.iter().position(|&bound| value <= bound) {
            cells.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        cells.count.fetch_add(1, Ordering::Relaxed);
        cells.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// What it has counted so far.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let cells = &self.0;
        let mut cumulative = 0;
        let buckets = BUCKETS
            .iter()
            .zip(&cells.buckets)
            .map(|(&le, count)| {
                cumulative += count.load(Ordering::Relaxed);
                (le, cumulative)
            })
            .collect();
        HistogramSnapshot {
            count: cells.count.load(Ordering::Relaxed),
            sum: cells.sum.load(Ordering::Relaxed),
            buckets,
        }
    }
}

/// A histogram's counts at one moment, as Prometheus exposes one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistogramSnapshot {
    /// Values counted.
    pub count: u64,
    /// Their sum.
    pub sum: u64,
    /// `(upper bound, values at or below it)`, cumulative, for each of [`BUCKETS`].
    pub buckets: Vec<(u64, u64)>,
}

/// One user metric's value at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserValue {
    /// A counter's count.
    Counter(u64),
    /// A gauge's value.
    Gauge(i64),
    /// A histogram's counts.
    Histogram(HistogramSnapshot),
}

/// A registered metric.
#[derive(Debug, Clone)]
enum Metric {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

impl Metric {
    fn value(&self) -> UserValue {
        match self {
            Metric::Counter(c) => UserValue::Counter(c.get()),
            Metric::Gauge(g) => UserValue::Gauge(g.get()),
            Metric::Histogram(h) => UserValue::Histogram(h.snapshot()),
        }
    }
}

/// One registered metric: (operator, subtask, name, metric).
type Registered = (String, usize, String, Metric);

/// Every user metric of a job; cheap to clone, every clone sees the same metrics.
#[derive(Debug, Clone, Default)]
pub struct UserMetrics(Arc<Mutex<Vec<Registered>>>);

impl UserMetrics {
    /// The metrics of `operator`'s subtask `subtask`.
    pub fn group(&self, operator: &str, subtask: usize) -> MetricGroup {
        MetricGroup { metrics: self.clone(), operator: operator.to_string(), subtask }
    }

    /// Every metric's value now: `(operator, subtask) -> name -> value`.
    pub fn snapshot(&self) -> BTreeMap<(String, usize), BTreeMap<String, UserValue>> {
        let mut values: BTreeMap<(String, usize), BTreeMap<String, UserValue>> = BTreeMap::new();
        for (operator, subtask, name, metric) in self.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            values.entry((operator.clone(), *subtask)).or_default().insert(name.clone(), metric.value());
        }
        values
    }

    /// The metric `name` of a subtask, registered by `new` the first time.
    fn find_or_add(&self, operator: &str, subtask: usize, name: &str, new: fn() -> Metric) -> Metric {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((.., metric)) = all.iter().find(|(o, s, n, _)| o == operator && *s == subtask && n == name) {
            return metric.clone();
        }
        let metric = new();
        all.push((operator.to_string(), subtask, name.to_string(), metric.clone()));
        metric
    }
}

/// The user metrics of one operator subtask (Flink's `MetricGroup`).
#[derive(Debug, Clone)]
pub struct MetricGroup {
    metrics: UserMetrics,
    operator: String,
    subtask: usize,
}

impl MetricGroup {
    /// A metric of the kind asked for that is not registered (nor exported), because `name`
    /// already is another kind; says so, as Flink does on a name clash.
    fn clash<M: Default>(&self, name: &str, kind: &str) -> M {
        tracing::warn!(
            operator = %self.operator,
            subtask = self.subtask,
            "user metric '{name}' is already registered as another kind; this {kind} is not reported (give it another name)"
        );
        M::default()
    }

    /// The counter `name` (Prometheus: `eddy_user_<name>_total`). A name already used for a
    /// gauge or histogram of this subtask gets a counter that is not reported, with a
    /// warning (the first kind registered under a name wins).
    pub fn counter(&self, name: &str) -> Counter {
        match self.metrics.find_or_add(&self.operator, self.subtask, name, || Metric::Counter(Counter::default())) {
            Metric::Counter(counter) => counter,
            _ => self.clash(name, "counter"),
        }
    }

    /// The gauge `name` (Prometheus: `eddy_user_<name>`).
    pub fn gauge(&self, name: &str) -> Gauge {
        match self.metrics.find_or_add(&self.operator, self.subtask, name, || Metric::Gauge(Gauge::default())) {
            Metric::Gauge(gauge) => gauge,
            _ => self.clash(name, "gauge"),
        }
    }

    /// The histogram `name` (Prometheus: `eddy_user_<name>_bucket`, `_sum`, `_count`).
    pub fn histogram(&self, name: &str) -> Histogram {
        match self.metrics.find_or_add(&self.operator, self.subtask, name, || Metric::Histogram(Histogram::default())) {
            Metric::Histogram(histogram) => histogram,
            _ => self.clash(name, "histogram"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_run_one_two_five_up_to_a_billion() {
        assert_eq!(&BUCKETS[..7], &[1, 2, 5, 10, 20, 50, 100]);
        assert_eq!(BUCKETS[BUCKETS.len() - 1], 1_000_000_000);
        assert!(BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_histogram_counts_values_into_cumulative_buckets() {
        let histogram = Histogram::default();
        for value in [0, 1, 2, 3, 7, 100, 2_000_000_000] {
            histogram.record(value);
        }
        let snapshot = histogram.snapshot();
        assert_eq!((snapshot.count, snapshot.sum), (7, 2_000_000_113));
        let at = |le: u64| snapshot.buckets.iter().find(|(bound, _)| *bound == le).unwrap().1;
        // Hand-counted: ≤1: 0 and 1; ≤2: +2; ≤5: +3; ≤10: +7; ≤100: +100; above 10⁹: count only.
        assert_eq!([at(1), at(2), at(5), at(10), at(50), at(100), at(1_000_000_000)], [2, 3, 4, 5, 5, 6, 6]);
    }

    #[test]
    fn a_name_asked_for_again_is_the_same_metric_and_kinds_do_not_mix() {
        let metrics = UserMetrics::default();
        let group = metrics.group("fraud", 1);
        group.counter("alerts").add(2);
        group.counter("alerts").add(3);
        group.gauge("open").set(-4);
        group.gauge("alerts").set(99); // a counter already has the name: not registered
        metrics.group("fraud", 0).counter("alerts").add(1);
        let values = metrics.snapshot();
        let one = &values[&("fraud".to_string(), 1)];
        assert_eq!(one["alerts"], UserValue::Counter(5));
        assert_eq!(one["open"], UserValue::Gauge(-4));
        assert_eq!(values[&("fraud".to_string(), 0)]["alerts"], UserValue::Counter(1));
    }
}
