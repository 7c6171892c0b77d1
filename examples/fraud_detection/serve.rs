//! `--serve`: each account's current state over HTTP while the job runs, read from the
//! detector's queryable state (`GET /accounts/<id>` answers `{"account", "alerts",
//! "pending_small_at"}`).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use eddy::prelude::*;
use serde_json::json;

use crate::job;

/// How long a request waits for the subtask that owns the account.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The detector's states, per account.
#[derive(Clone)]
struct Accounts {
    alerts: QueryableState<u32, u64>,
    last_small: QueryableState<u32, i64>,
}

/// Serves `job`'s account states on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    job: &JobHandle,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let accounts = Accounts {
        alerts: job.state(job::DETECTOR, job::ALERTS)?,
        last_small: job.state(job::DETECTOR, job::LAST_SMALL)?,
    };
    let app = Router::new().route("/accounts/{account}", get(account)).with_state(accounts);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// Binds `addr`, saying what to do when it cannot.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (--serve): {e}; choose a free port, or 0 for any"))
}

async fn account(State(accounts): State<Accounts>, Path(account): Path<String>) -> Response {
    let Ok(account) = account.parse::<u32>() else {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": format!("'{account}' is not an account number") })))
            .into_response();
    };
    let read = async {
        Ok::<_, QueryError>((
            accounts.alerts.get_async(&account).await?,
            accounts.last_small.get_async(&account).await?,
        ))
    };
    match tokio::time::timeout(TIMEOUT, read).await {
        Ok(Ok((alerts, pending))) => {
            Json(json!({ "account": account, "alerts": alerts.unwrap_or(0), "pending_small_at": pending }))
                .into_response()
        }
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": e.to_string() }))).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": "the job did not answer in time" })))
            .into_response(),
    }
}
