//! eddy's metrics endpoint: what a running job is doing, over HTTP, for Prometheus and for
//! people.
//!
//! [`ServeMetrics::serve_metrics`] starts a small HTTP server (axum, on eddy's shared I/O
//! runtime) over every job the environment starts, before or after the call:
//!
//! | path | what |
//! |---|---|
//! | `/` | a web page: the job graph with live numbers, a watermark lag chart, the checkpoints (see [the web view](#the-web-view)) |
//! | `/metrics` | Prometheus text exposition: `eddy_operator_records_in_total{job,operator,subtask}` and the rest (see [`prometheus`]) |
//! | `/jobs` | every job: id, name, status (Flink's `/jobs/overview`) |
//! | `/jobs/{id}` | one job: status, uptime, restarts, checkpoints, its vertices |
//! | `/jobs/{id}/vertices` | the job's chains (Flink's job vertices) with their operators, parallelism, records, watermark, busy / idle / backpressured time |
//! | `/jobs/{id}/checkpoints` | checkpoint counts, the newest one's duration, size and alignment, and the history of the newest ones |
//! | `/jobs/{id}/plan` | the job's operators, chains and the edges between them with their ship strategies |
//!
//! ## The web view
//!
//! `/` serves one self-contained page (no CDN: its HTML, CSS and script are compiled in) with
//! the job graph, one box per chain with its parallelism, records per second in and out,
//! watermark and a backpressure colour (Flink's levels: OK under 10% of the time blocked on
//! output, high over 50%); a chart of each chain's watermark lag; and a checkpoints tab
//! with the newest checkpoints' duration, alignment and size. It polls the JSON API every
//! second.
//!
//! A job's id is its position among the jobs the environment started (`0` first). The
//! JSON follows Flink's REST API in spirit, not in every field (see [`rest`]).
//!
//! ```no_run
//! use eddy_metrics_http::ServeMetrics;
//! use eddy_stream::prelude::*;
//!
//! let env = StreamEnvironment::new();
//! let server = env.serve_metrics("127.0.0.1:9249").expect("the port is free");
//! println!("metrics at http://{}/metrics", server.local_addr());
//! env.from_collection((0..100u64).collect()).map(|x| x * 2).print();
//! env.execute("doubles").unwrap().wait().unwrap();
//! // Dropping `server` stops it.
//! ```

mod page;
pub mod prometheus;
pub mod rest;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use axum::routing::get;
use axum::Router;
use eddy_runtime::{io_runtime, Jobs};
use eddy_stream::StreamEnvironment;
use tokio::sync::oneshot;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address did not parse or resolve.
    #[error("cannot use '{addr}' as the metrics address: {reason}; give HOST:PORT, e.g. 127.0.0.1:9249")]
    Address {
        /// What was given.
        addr: String,
        /// Why it is not an address.
        reason: String,
    },
    /// Binding failed (the port is taken, or not ours to take).
    #[error("cannot listen on {addr} for metrics: {source}; pick another port (0 picks a free one)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The shared I/O runtime could not start.
    #[error(transparent)]
    Runtime(#[from] io_runtime::IoRuntimeError),
}

/// A running metrics endpoint; dropping it stops it.
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl MetricsServer {
    /// Where it listens (the port chosen, when `:0` was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `env.serve_metrics(addr)`: the metrics endpoint over an environment's jobs.
pub trait ServeMetrics {
    /// Serves `/metrics`, `/jobs`, `/jobs/{id}`, `/jobs/{id}/vertices` and
    /// `/jobs/{id}/checkpoints` on `addr` (`HOST:PORT`; port 0 picks a free one) for every
    /// job this environment starts. The address is bound before this returns, so a taken
    /// port is an error here, not later.
    fn serve_metrics(&self, addr: &str) -> Result<MetricsServer, ServeError>;
}

impl ServeMetrics for StreamEnvironment {
    fn serve_metrics(&self, addr: &str) -> Result<MetricsServer, ServeError> {
        serve(addr, self.jobs())
    }
}

/// Checks that `addr` is a `HOST:PORT` the endpoint can listen on, without binding it: for
/// validating a `--metrics-addr` flag before anything starts.
pub fn parse_addr(addr: &str) -> Result<SocketAddr, ServeError> {
    let invalid = |reason: String| ServeError::Address { addr: addr.to_string(), reason };
    addr.to_socket_addrs()
        .map_err(|e| invalid(e.to_string()))?
        .next()
        .ok_or_else(|| invalid("it resolves to no address".into()))
}

/// Serves the endpoint on `addr` over `jobs` (see [`ServeMetrics::serve_metrics`]).
pub fn serve(addr: &str, jobs: Jobs) -> Result<MetricsServer, ServeError> {
    let addr = parse_addr(addr)?;
    let listener = TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
    let local_addr = listener.local_addr().map_err(|source| ServeError::Bind { addr, source })?;
    listener.set_nonblocking(true).map_err(|source| ServeError::Bind { addr, source })?;
    let app = Router::new()
        .route("/", get(page::handler))
        .route("/metrics", get(prometheus::handler))
        .route("/jobs", get(rest::jobs))
        .route("/jobs/{id}", get(rest::job))
        .route("/jobs/{id}/vertices", get(rest::vertices))
        .route("/jobs/{id}/checkpoints", get(rest::checkpoints))
        .route("/jobs/{id}/plan", get(rest::plan))
        .with_state(jobs);
    let (stop, stopped) = oneshot::channel::<()>();
    let listener = {
        let _runtime = io_runtime::handle().enter();
        tokio::net::TcpListener::from_std(listener).map_err(|source| ServeError::Bind { addr, source })?
    };
    io_runtime::try_spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            eprintln!("eddy: the metrics endpoint stopped: {error}");
        }
    })?;
    Ok(MetricsServer { local_addr, stop: Some(stop) })
}
