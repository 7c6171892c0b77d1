//! The service's HTTP interface: events in, results out as server-sent events, each key's
//! total from the job's queryable state.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use eddy::prelude::*;
use futures::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};

use crate::job::Event;

/// How long `GET /state/<key>` waits for the subtask that owns the key.
const STATE_TIMEOUT: Duration = Duration::from_secs(5);

/// What every handler shares.
#[derive(Clone)]
pub struct App {
    /// Into the job's channel source.
    pub events: mpsc::Sender<Event>,
    /// Window results, once written to the results file.
    pub results: broadcast::Sender<String>,
    /// Each key's total.
    pub totals: QueryableState<String, i64>,
    /// Turns `true` when the service shuts down: result streams end.
    pub shutdown: watch::Receiver<bool>,
}

pub fn router(app: App) -> Router {
    Router::new()
        .route("/events", post(post_events))
        .route("/results", get(results))
        .route("/state/{key}", get(state_of))
        .with_state(app)
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// `POST /events`: a body of JSON lines `{"key", "ts", "value"}`. Every line is checked
/// before any is fed to the job: one bad line rejects the body with 400 and the reason.
async fn post_events(State(app): State<App>, body: String) -> Response {
    let events = match parse_events(&body) {
        Ok(events) => events,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let count = events.len();
    for (sent, event) in events.into_iter().enumerate() {
        // Waits while the job is busy (backpressure); fails once the job stopped reading.
        if app.events.send(event).await.is_err() {
            let message = format!("the service is shutting down; {sent} of {count} events were accepted");
            return error(StatusCode::SERVICE_UNAVAILABLE, message);
        }
    }
    Json(json!({ "accepted": count })).into_response()
}

/// The events of a body, or why it cannot be taken (naming the line).
pub fn parse_events(body: &str) -> Result<Vec<Event>, String> {
    let mut events = Vec::new();
    for (at, line) in body.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        let event: Event = serde_json::from_str(line).map_err(|e| {
            format!("line {}: {e} (expected {{\"key\": \"a\", \"ts\": 1700000000000, \"value\": 1}})", at + 1)
        })?;
        if let Some(reason) = eddy::core::time::reserved(event.ts) {
            return Err(format!("line {}: ts {}: {reason}", at + 1, event.ts));
        }
        events.push(event);
    }
    if events.is_empty() {
        return Err("the body holds no events: send JSON lines {\"key\", \"ts\", \"value\"}".into());
    }
    Ok(events)
}

/// `GET /results`: every window result from now on, as server-sent events whose data is the
/// result's JSON line. A client too slow to keep up gets a `lagged` event saying how many it
/// missed (the results file has them all).
async fn results(State(app): State<App>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let state = (app.results.subscribe(), app.shutdown.clone());
    let stream = futures::stream::unfold(state, |(mut results, mut shutdown)| async move {
        let event = tokio::select! {
            result = results.recv() => match result {
                Ok(line) => SseEvent::default().data(line),
                Err(RecvError::Lagged(missed)) => SseEvent::default().event("lagged").data(missed.to_string()),
                Err(RecvError::Closed) => return None,
            },
            _ = shutdown.wait_for(|down| *down) => return None,
        };
        Some((Ok(event), (results, shutdown)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `GET /state/<key>`: the key's all-time sum of values, read from the job's state now.
async fn state_of(State(app): State<App>, Path(key): Path<String>) -> Response {
    match tokio::time::timeout(STATE_TIMEOUT, app.totals.get_async(&key)).await {
        Ok(Ok(Some(total))) => Json(json!({ "key": key, "total": total })).into_response(),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, format!("no events for key '{key}'")),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, format!("the job did not answer within {STATE_TIMEOUT:?}")),
    }
}
