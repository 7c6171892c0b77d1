//! The web view at `/`: one self-contained page (HTML, CSS and script compiled into the
//! binary, nothing fetched from elsewhere) that draws the job graph and keeps its numbers
//! current by polling the JSON API, as Flink's web UI does.
//!
//! - **Job graph**: one box per chain (the operators the planner runs on one thread per
//!   subtask, as in [`Explained`](eddy_runtime::explain::Explained)), with its parallelism,
//!   records per second in and out, watermark and its lag, and busy / idle / backpressured
//!   time; the box is coloured by backpressure with Flink's levels (OK under 10% of the time
//!   blocked on output, high over 50%). Edges between chains carry their ship strategy.
//! - **Watermark lag**: a chart of each chain's watermark lag over the last two minutes.
//! - **Checkpoints**: counts, and the history of the newest ones with duration, barrier
//!   alignment, size and the state each operator put into them.
//!
//! The rates are the server's (over at least a second between reads). The page picks the newest running job; `/#job=2` opens another,
//! `&tab=checkpoints` the checkpoints tab.

use std::sync::LazyLock;

use axum::response::Html;

/// The page, with its style and script put in place once.
static PAGE: LazyLock<String> = LazyLock::new(|| {
    include_str!("page/index.html")
        .replace("/* STYLE */", include_str!("page/style.css"))
        .replace("// SCRIPT", include_str!("page/app.js"))
});

/// `GET /`.
pub(crate) async fn handler() -> Html<&'static str> {
    Html(PAGE.as_str())
}
