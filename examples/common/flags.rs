//! Flag checks the example binaries share, so each says what to do when a value cannot work
//! before any work starts. Included with `#[path]`; each binary uses what it needs.

#![allow(dead_code)]

use std::fs::OpenOptions;
use std::path::Path;

/// A parallelism from 1 to the max parallelism (an operator cannot have more subtasks than
/// key groups, and eddy would otherwise lower a larger value without a word).
pub fn parallelism(text: &str) -> Result<usize, String> {
    let max = eddy::core::key::DEFAULT_MAX_PARALLELISM;
    match text.parse::<usize>() {
        Ok(p) if (1..=max).contains(&p) => Ok(p),
        _ => Err(format!("use a whole number from 1 to {max} (the max parallelism)")),
    }
}

/// A `HOST:PORT` to serve metrics on (`--metrics-addr`), checked before anything starts.
pub fn metrics_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    eddy_metrics_http::parse_addr(text).map_err(|e| e.to_string())
}

/// Serves the metrics endpoint of `env`'s jobs on `addr`, if given, and says where.
pub fn serve_metrics(
    env: &eddy::StreamEnvironment,
    addr: Option<std::net::SocketAddr>,
    program: &str,
) -> anyhow::Result<Option<eddy_metrics_http::MetricsServer>> {
    use eddy_metrics_http::ServeMetrics;
    let Some(addr) = addr else { return Ok(None) };
    let server = env.serve_metrics(&addr.to_string())?;
    eprintln!("{program}: metrics at http://{0}/metrics, jobs at http://{0}/jobs", server.local_addr());
    Ok(Some(server))
}

/// Checks that a file the run writes only at its end can be written (opening it for
/// writing without changing it, or creating it and removing it again), so a bad path fails
/// before the work rather than after; the error names the file and the flag that chose it.
pub fn writable(path: &Path, flag: &str) -> anyhow::Result<()> {
    let existed = path.exists();
    let opened = OpenOptions::new().write(true).create(true).truncate(false).open(path);
    if opened.is_ok() && !existed {
        let _ = std::fs::remove_file(path);
    }
    opened.map(drop).map_err(|e| {
        anyhow::anyhow!("cannot write {} ({flag}): {e}; choose a path in a writable directory", path.display())
    })
}
