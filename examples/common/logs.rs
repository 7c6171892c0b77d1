//! The examples' logs: eddy's `tracing` spans and events (a job, its attempts, tasks and
//! checkpoints; restarts, failed checkpoints) as compact lines on stderr. Included with
//! `#[path]`.
//!
//! `RUST_LOG` chooses what is shown, as for any `tracing` program: `RUST_LOG=info` adds each
//! completed checkpoint and attempt, `RUST_LOG=eddy_stream=debug` late records and dead
//! letters. By default warnings and errors show, except the job's kept warnings (what a
//! restore skipped or rolled back), which the examples print themselves.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// What is shown without `RUST_LOG`.
const DEFAULT: &str = "warn,eddy_runtime::warnings=off";

/// Installs the subscriber; a `RUST_LOG` that does not parse is reported and the default used.
pub fn init(program: &str) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) => EnvFilter::try_new(&directives).unwrap_or_else(|e| {
            eprintln!("{program}: ignoring RUST_LOG={directives:?} ({e}); use e.g. RUST_LOG=info or RUST_LOG=eddy_runtime=debug");
            EnvFilter::new(DEFAULT)
        }),
        Err(_) => EnvFilter::new(DEFAULT),
    };
    // Colours only on a terminal: redirected logs stay plain text.
    let ansi = std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt()
        .compact()
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();
}
