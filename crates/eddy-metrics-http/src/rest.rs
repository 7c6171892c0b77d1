//! The JSON REST API, after Flink's: `/jobs`, `/jobs/{id}`, `/jobs/{id}/vertices`,
//! `/jobs/{id}/checkpoints`, `/jobs/{id}/plan`. Errors are `{"errors": ["..."]}` with status 404, as Flink's.
//!
//! A vertex is a chain: the operators that run on one thread per subtask (Flink's job
//! vertex). Its records in are its first operator's, its records out its last operator's; its
//! watermark is the lowest input watermark of its first operator's subtasks; its busy, idle
//! and backpressured time are the most any of its subtasks shows (the one to look at).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use eddy_runtime::checkpoint::CheckpointRecord;
use eddy_runtime::{CheckpointStats, JobHandle, JobMetrics, JobStatus, Jobs, OperatorMetrics};
use serde::Serialize;

/// One job in `/jobs`.
#[derive(Debug, Serialize)]
pub struct JobSummary {
    /// Its id: its position among the environment's jobs.
    pub id: usize,
    /// Its name.
    pub name: String,
    /// `RUNNING`, `RESTARTING`, `FINISHED`, `FAILED` or `CANCELED` (Flink's names).
    pub status: &'static str,
}

/// `/jobs/{id}`.
#[derive(Debug, Serialize)]
pub struct JobDetail {
    /// Id, name and status.
    #[serde(flatten)]
    pub summary: JobSummary,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// Milliseconds since it started (until it ended).
    pub uptime_ms: u64,
    /// Restarts after failures.
    pub restarts: u64,
    /// Checkpoints.
    pub checkpoints: CheckpointStats,
    /// Its chains.
    pub vertices: Vec<Vertex>,
}

/// A chain of operators (Flink's job vertex).
#[derive(Debug, Serialize)]
pub struct Vertex {
    /// The id of its first operator.
    pub id: usize,
    /// Its operators' names joined by ` -> ` (as Flink names a chained vertex).
    pub name: String,
    /// Its operators, first to last, with their own metrics.
    pub operators: Vec<OperatorMetrics>,
    /// How many subtasks run it.
    pub parallelism: usize,
    /// Records into its first operator.
    pub records_in: u64,
    /// Records out of its last operator.
    pub records_out: u64,
    /// Records into its first operator per second (over the time since the previous read,
    /// at least a second).
    pub records_in_per_s: Option<u64>,
    /// Records out of its last operator per second.
    pub records_out_per_s: Option<u64>,
    /// The lowest watermark of its first operator's subtasks.
    pub watermark: Option<i64>,
    /// The most busy time any subtask shows, in ms per second.
    pub busy_ms_per_s: Option<u64>,
    /// The most idle time.
    pub idle_ms_per_s: Option<u64>,
    /// The most backpressured time.
    pub backpressured_ms_per_s: Option<u64>,
}

/// `/jobs/{id}/checkpoints`.
#[derive(Debug, Serialize)]
pub struct Checkpoints {
    /// Completed and failed (abandoned) ones.
    pub counts: CheckpointCounts,
    /// The newest completed one; `null` before the first.
    pub latest: Option<LatestCheckpoint>,
    /// The newest checkpoints, completed and failed, newest first (Flink's `history`).
    pub history: Vec<CheckpointRecord>,
}

/// Checkpoint counts.
#[derive(Debug, Serialize)]
pub struct CheckpointCounts {
    /// Completed.
    pub completed: u64,
    /// Abandoned: timed out, a task failed, or the input ended first.
    pub failed: u64,
}

/// The newest completed checkpoint.
#[derive(Debug, Serialize)]
pub struct LatestCheckpoint {
    /// From trigger to complete, in milliseconds.
    pub duration_ms: u64,
    /// Bytes of state (keys and values).
    pub size_bytes: u64,
    /// The longest barrier alignment of any subtask, in milliseconds.
    pub alignment_ms: u64,
}

/// Flink's name of `status`.
pub fn status_name(status: &JobStatus) -> &'static str {
    match status {
        JobStatus::Running => "RUNNING",
        JobStatus::Restarting(_) => "RESTARTING",
        JobStatus::Finished => "FINISHED",
        JobStatus::Failed(_) => "FAILED",
        JobStatus::Cancelled => "CANCELED",
    }
}

fn summary(id: usize, job: &JobHandle) -> JobSummary {
    JobSummary { id, name: job.name().to_string(), status: status_name(&job.status()) }
}

/// The chains of a job's operators, as vertices.
pub fn vertices_of(metrics: &JobMetrics) -> Vec<Vertex> {
    let mut vertices: Vec<Vertex> = Vec::new();
    for operator in &metrics.operators {
        match vertices.iter_mut().find(|v| v.id == operator.chain) {
            Some(vertex) => vertex.operators.push(operator.clone()),
            None => vertices.push(Vertex {
                id: operator.chain,
                name: String::new(),
                operators: vec![operator.clone()],
                parallelism: operator.parallelism,
                records_in: 0,
                records_out: 0,
                records_in_per_s: None,
                records_out_per_s: None,
                watermark: None,
                busy_ms_per_s: None,
                idle_ms_per_s: None,
                backpressured_ms_per_s: None,
            }),
        }
    }
    for vertex in &mut vertices {
        let (first, last) = (&vertex.operators[0], &vertex.operators[vertex.operators.len() - 1]);
        vertex.name = vertex.operators.iter().map(|op| op.name.as_str()).collect::<Vec<_>>().join(" -> ");
        vertex.records_in = first.records_in();
        vertex.records_out = last.records_out();
        vertex.records_in_per_s = first.records_in_per_s();
        vertex.records_out_per_s = last.records_out_per_s();
        vertex.watermark = first.watermark();
        let most =
            |f: fn(&eddy_runtime::TimeRates) -> u64| first.subtasks.iter().filter_map(|s| s.time).map(|t| f(&t)).max();
        vertex.busy_ms_per_s = most(|t| t.busy_ms_per_s);
        vertex.idle_ms_per_s = most(|t| t.idle_ms_per_s);
        vertex.backpressured_ms_per_s = most(|t| t.backpressured_ms_per_s);
    }
    vertices
}

fn not_found(id: &str, jobs: &Jobs) -> Response {
    let ids: Vec<String> = jobs.all().iter().map(|(id, _)| id.to_string()).collect();
    let message = format!("no job '{id}'; the jobs are: [{}]", ids.join(", "));
    (StatusCode::NOT_FOUND, Json(serde_json::json!({ "errors": [message] }))).into_response()
}

fn find(id: &str, jobs: &Jobs) -> Option<(usize, JobHandle)> {
    id.parse().ok().and_then(|n| Some((n, jobs.get(n)?)))
}

/// `GET /jobs`.
pub(crate) async fn jobs(State(jobs): State<Jobs>) -> Json<serde_json::Value> {
    let all: Vec<JobSummary> = jobs.all().iter().map(|(id, job)| summary(*id, job)).collect();
    Json(serde_json::json!({ "jobs": all }))
}

/// `GET /jobs/{id}`.
pub(crate) async fn job(State(jobs): State<Jobs>, Path(id): Path<String>) -> Response {
    let Some((id, job)) = find(&id, &jobs) else { return not_found(&id, &jobs) };
    let metrics = job.metrics();
    let failure = match job.status() {
        JobStatus::Failed(error) => Some(error.to_string()),
        _ => None,
    };
    Json(JobDetail {
        summary: summary(id, &job),
        failure,
        uptime_ms: metrics.job.uptime_ms,
        restarts: metrics.job.restarts,
        checkpoints: metrics.job.checkpoints.clone(),
        vertices: vertices_of(&metrics),
    })
    .into_response()
}

/// `GET /jobs/{id}/vertices`.
pub(crate) async fn vertices(State(jobs): State<Jobs>, Path(id): Path<String>) -> Response {
    match find(&id, &jobs) {
        Some((_, job)) => Json(serde_json::json!({ "vertices": vertices_of(&job.metrics()) })).into_response(),
        None => not_found(&id, &jobs),
    }
}

/// `GET /jobs/{id}/checkpoints`.
pub(crate) async fn checkpoints(State(jobs): State<Jobs>, Path(id): Path<String>) -> Response {
    let Some((_, job)) = find(&id, &jobs) else { return not_found(&id, &jobs) };
    let stats = job.metrics().job.checkpoints;
    let latest = stats.last_duration_ms.zip(stats.last_size_bytes).map(|(duration_ms, size_bytes)| LatestCheckpoint {
        duration_ms,
        size_bytes,
        alignment_ms: stats.last_alignment_ms.unwrap_or(0),
    });
    let counts = CheckpointCounts { completed: stats.completed, failed: stats.failed };
    let history = stats.history.into_iter().rev().collect();
    Json(Checkpoints { counts, latest, history }).into_response()
}

/// `GET /jobs/{id}/plan`: the job's operators (each with its chain and parallelism) and the
/// edges between them with their ship strategies (Flink's `/jobs/:id/plan`).
pub(crate) async fn plan(State(jobs): State<Jobs>, Path(id): Path<String>) -> Response {
    match find(&id, &jobs) {
        Some((_, job)) => Json(job.plan().clone()).into_response(),
        None => not_found(&id, &jobs),
    }
}
