//! The Prometheus text exposition (format 0.0.4) of every job's metrics.
//!
//! Names follow Prometheus' conventions: they start with `eddy_`, counters end in `_total`,
//! units are in the name (`_ms`, `_bytes`). Every operator metric carries the labels `job`
//! (the job's name), `job_id`, `operator` and `subtask`; job metrics carry `job` and
//! `job_id`. A value that does not exist yet (no watermark, no checkpoint completed) is left
//! out rather than written as 0.
//!
//! | metric | type | what |
//! |---|---|---|
//! | `eddy_operator_records_in_total` | counter | records that entered the operator |
//! | `eddy_operator_records_out_total` | counter | records it emitted on its main output |
//! | `eddy_operator_records_in_per_second` | gauge | records in per second, over the time since the previous read (at least a second) |
//! | `eddy_operator_records_out_per_second` | gauge | records out per second |
//! | `eddy_source_bytes_in_total` | counter | bytes a source read (sources that count them) |
//! | `eddy_source_bytes_in_per_second` | gauge | … per second |
//! | `eddy_operator_late_records_dropped_total` | counter | records dropped because their window had fired |
//! | `eddy_operator_dead_letters_total` | counter | records sent to the dead-letter output |
//! | `eddy_operator_watermark_ms` | gauge | the newest watermark it received (a source: emitted) |
//! | `eddy_operator_watermark_lag_ms` | gauge | wall clock minus that watermark |
//! | `eddy_operator_busy_ms_per_second` | gauge | its thread's time working |
//! | `eddy_operator_idle_ms_per_second` | gauge | … waiting for input |
//! | `eddy_operator_backpressured_ms_per_second` | gauge | … blocked on a full output channel |
//! | `eddy_operator_idle_ms_total` | counter | time waiting for input since the start |
//! | `eddy_operator_backpressured_ms_total` | counter | time blocked on output since the start |
//! | `eddy_source_lag_records` | gauge | records behind the newest available (sources that report it) |
//! | `eddy_source_lag_ms` | gauge | milliseconds behind the newest available |
//! | `eddy_operator_state_size_bytes` | gauge | bytes of state the subtask put into the newest completed checkpoint |
//! | `eddy_job_uptime_ms` | gauge | since the job started |
//! | `eddy_job_restarts_total` | counter | restarts after failures |
//! | `eddy_job_checkpoints_completed_total` | counter | checkpoints and savepoints completed |
//! | `eddy_job_checkpoints_failed_total` | counter | abandoned ones |
//! | `eddy_job_last_checkpoint_duration_ms` | gauge | trigger to complete, newest completed |
//! | `eddy_job_last_checkpoint_size_bytes` | gauge | state bytes in it |
//! | `eddy_job_last_checkpoint_alignment_ms` | gauge | the longest barrier alignment of any subtask in it |
//!
//! Metrics that functions register ([`eddy_runtime::user_metrics`]) follow, with the same
//! operator labels: a counter `name` as `eddy_user_<name>_total`, a gauge as
//! `eddy_user_<name>`, a histogram as `eddy_user_<name>_bucket{le=…}`, `_sum` and `_count`.
//! Characters a Prometheus name cannot hold become `_` (as Flink's Prometheus reporter does);
//! where subtasks registered one name as different kinds, the first kind found is exported.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use eddy_runtime::user_metrics::UserValue;
use eddy_runtime::{JobMetrics, Jobs, SubtaskMetrics};

/// `GET /metrics`.
pub(crate) async fn handler(State(jobs): State<Jobs>) -> impl IntoResponse {
    let jobs: Vec<(usize, String, JobMetrics)> =
        jobs.all().into_iter().map(|(id, job)| (id, job.name().to_string(), job.metrics())).collect();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render(&jobs))
}

type OperatorValue = fn(&SubtaskMetrics) -> Option<u64>;

/// The operator metrics: name, type, help, value of one subtask.
const OPERATOR: &[(&str, &str, &str, OperatorValue)] = &[
    ("eddy_operator_records_in_total", "counter", "Records that entered the operator.", |s| Some(s.records_in)),
    ("eddy_operator_records_out_total", "counter", "Records the operator emitted on its main output.", |s| {
        Some(s.records_out)
    }),
    ("eddy_operator_records_in_per_second", "gauge", "Records into the operator per second.", |s| {
        s.rates.map(|r| r.records_in_per_s)
    }),
    ("eddy_operator_records_out_per_second", "gauge", "Records out of the operator per second.", |s| {
        s.rates.map(|r| r.records_out_per_s)
    }),
    ("eddy_source_bytes_in_total", "counter", "Bytes the source read.", |s| s.bytes_in),
    ("eddy_source_bytes_in_per_second", "gauge", "Bytes the source read per second.", |s| {
        s.bytes_in.and(s.rates.map(|r| r.bytes_in_per_s))
    }),
    ("eddy_operator_late_records_dropped_total", "counter", "Records dropped because their window had fired.", |s| {
        Some(s.late_records_dropped)
    }),
    ("eddy_operator_dead_letters_total", "counter", "Records sent to the dead-letter output.", |s| {
        Some(s.dead_letters)
    }),
    ("eddy_operator_busy_ms_per_second", "gauge", "Milliseconds per second the operator's thread worked.", |s| {
        s.time.map(|t| t.busy_ms_per_s)
    }),
    ("eddy_operator_idle_ms_per_second", "gauge", "Milliseconds per second it waited for input.", |s| {
        s.time.map(|t| t.idle_ms_per_s)
    }),
    ("eddy_operator_backpressured_ms_per_second", "gauge", "Milliseconds per second it was blocked on output.", |s| {
        s.time.map(|t| t.backpressured_ms_per_s)
    }),
    ("eddy_operator_idle_ms_total", "counter", "Milliseconds it waited for input.", |s| Some(s.idle_ms_total)),
    ("eddy_operator_backpressured_ms_total", "counter", "Milliseconds it was blocked on output.", |s| {
        Some(s.backpressured_ms_total)
    }),
    ("eddy_source_lag_records", "gauge", "Records the source is behind the newest available.", |s| s.lag_records),
    ("eddy_source_lag_ms", "gauge", "Milliseconds the source is behind the newest available.", |s| s.lag_ms),
    ("eddy_operator_state_size_bytes", "gauge", "Bytes of state in the newest completed checkpoint.", |s| {
        s.state_size_bytes
    }),
];

type WatermarkValue = fn(&SubtaskMetrics) -> Option<i64>;

/// Watermarks are signed (event time before 1970 is allowed).
const WATERMARKS: &[(&str, &str, WatermarkValue)] = &[
    ("eddy_operator_watermark_ms", "The newest watermark the operator received, in ms since the epoch.", |s| {
        s.watermark.filter(|&w| w != i64::MAX)
    }),
    ("eddy_operator_watermark_lag_ms", "Wall clock minus the watermark, in milliseconds.", |s| s.watermark_lag_ms),
];

type JobValue = fn(&JobMetrics) -> Option<u64>;

const JOB: &[(&str, &str, &str, JobValue)] = &[
    ("eddy_job_uptime_ms", "gauge", "Milliseconds since the job started.", |m| Some(m.job.uptime_ms)),
    ("eddy_job_restarts_total", "counter", "Restarts after failures.", |m| Some(m.job.restarts)),
    ("eddy_job_checkpoints_completed_total", "counter", "Checkpoints and savepoints completed.", |m| {
        Some(m.job.checkpoints.completed)
    }),
    ("eddy_job_checkpoints_failed_total", "counter", "Checkpoints and savepoints abandoned.", |m| {
        Some(m.job.checkpoints.failed)
    }),
    ("eddy_job_last_checkpoint_duration_ms", "gauge", "Trigger to complete of the newest checkpoint.", |m| {
        m.job.checkpoints.last_duration_ms
    }),
    ("eddy_job_last_checkpoint_size_bytes", "gauge", "Bytes of state in the newest checkpoint.", |m| {
        m.job.checkpoints.last_size_bytes
    }),
    ("eddy_job_last_checkpoint_alignment_ms", "gauge", "Longest barrier alignment in the newest checkpoint.", |m| {
        m.job.checkpoints.last_alignment_ms
    }),
];

/// The exposition of `jobs` (id, name, metrics).
pub fn render(jobs: &[(usize, String, JobMetrics)]) -> String {
    let mut out = String::new();
    for (name, kind, help, value) in JOB {
        family(&mut out, name, kind, help);
        for (id, job, metrics) in jobs {
            if let Some(v) = value(metrics) {
                let _ = writeln!(out, "{name}{{job=\"{}\",job_id=\"{id}\"}} {v}", escape(job));
            }
        }
    }
    for (name, kind, help, value) in OPERATOR {
        family(&mut out, name, kind, help);
        each_subtask(&mut out, jobs, name, |s| value(s).map(|v| v.to_string()));
    }
    for (name, help, value) in WATERMARKS {
        family(&mut out, name, "gauge", help);
        each_subtask(&mut out, jobs, name, |s| value(s).map(|v| v.to_string()));
    }
    user_metrics(&mut out, jobs);
    out
}

/// The metrics functions registered, one family per name.
fn user_metrics(out: &mut String, jobs: &[(usize, String, JobMetrics)]) {
    // name -> (labels, value) of every subtask that has it, in job, operator, subtask order.
    let mut families: BTreeMap<String, Vec<(String, &UserValue)>> = BTreeMap::new();
    for (id, job, metrics) in jobs {
        for operator in &metrics.operators {
            for subtask in &operator.subtasks {
                for (name, value) in &subtask.user {
                    let labels = format!(
                        "job=\"{}\",job_id=\"{id}\",operator=\"{}\",subtask=\"{}\"",
                        escape(job),
                        escape(&operator.name),
                        subtask.subtask
                    );
                    families.entry(sanitize(name)).or_default().push((labels, value));
                }
            }
        }
    }
    for (name, samples) in families {
        let kind = std::mem::discriminant(samples[0].1);
        let samples = samples.iter().filter(|(_, v)| std::mem::discriminant(*v) == kind);
        match samples.clone().next().map(|(_, v)| *v) {
            Some(UserValue::Counter(_)) => {
                let name = format!("eddy_user_{name}_total");
                family(out, &name, "counter", "A counter a function registered.");
                for (labels, value) in samples {
                    if let UserValue::Counter(n) = value {
                        let _ = writeln!(out, "{name}{{{labels}}} {n}");
                    }
                }
            }
            Some(UserValue::Gauge(_)) => {
                let name = format!("eddy_user_{name}");
                family(out, &name, "gauge", "A gauge a function registered.");
                for (labels, value) in samples {
                    if let UserValue::Gauge(v) = value {
                        let _ = writeln!(out, "{name}{{{labels}}} {v}");
                    }
                }
            }
            Some(UserValue::Histogram(_)) => {
                let name = format!("eddy_user_{name}");
                family(out, &name, "histogram", "A histogram a function registered.");
                for (labels, value) in samples {
                    if let UserValue::Histogram(h) = value {
                        for (le, count) in &h.buckets {
                            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {count}");
                        }
                        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
                        let _ = writeln!(out, "{name}_sum{{{labels}}} {}\n{name}_count{{{labels}}} {}", h.sum, h.count);
                    }
                }
            }
            None => {}
        }
    }
}

/// A user's metric name as a Prometheus name can hold it: `[a-zA-Z0-9_]`, the rest `_`.
fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn each_subtask(
    out: &mut String,
    jobs: &[(usize, String, JobMetrics)],
    name: &str,
    value: impl Fn(&SubtaskMetrics) -> Option<String>,
) {
    for (id, job, metrics) in jobs {
        for operator in &metrics.operators {
            for subtask in &operator.subtasks {
                if let Some(v) = value(subtask) {
                    let (job, operator) = (escape(job), escape(&operator.name));
                    let labels = format!(
                        "job=\"{job}\",job_id=\"{id}\",operator=\"{operator}\",subtask=\"{}\"",
                        subtask.subtask
                    );
                    let _ = writeln!(out, "{name}{{{labels}}} {v}");
                }
            }
        }
    }
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
