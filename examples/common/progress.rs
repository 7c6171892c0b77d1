//! A long-running example's progress on a terminal: one line on stderr, redrawn twice a
//! second, with the records read per second, the watermark and its lag, how far the sources
//! are behind, and the newest checkpoint. Off when stderr is not a terminal (a pipe or a file
//! gets only the example's own lines) and with `--quiet`. Included with `#[path]`.

#![allow(dead_code)]

use std::io::IsTerminal;
use std::time::Duration;

use eddy::runtime::{JobHandle, JobMetrics};
use indicatif::{ProgressBar, ProgressStyle};

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(500);

/// The progress line of a running job; cleared when dropped.
pub struct Progress {
    bar: ProgressBar,
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Shows `job`'s progress until dropped, unless `quiet` or stderr is not a terminal.
    pub fn show(job: &JobHandle, quiet: bool) -> Option<Progress> {
        if quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("a valid template"));
        let (stop, stopped) = std::sync::mpsc::channel();
        let plan = job.plan();
        // A source is an operator nothing feeds.
        let sources: Vec<usize> =
            plan.operators.iter().map(|op| op.id).filter(|&id| !plan.edges.iter().any(|e| e.to == id)).collect();
        let (job, shown) = (job.clone(), bar.clone());
        let thread = std::thread::spawn(move || {
            while stopped.recv_timeout(TICK) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                shown.set_message(line(&job.metrics(), &sources));
                shown.tick();
            }
        });
        Some(Progress { bar, stop, thread: Some(thread) })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.bar.finish_and_clear();
    }
}

/// The line for `metrics`: records read per second by the `sources` (operator ids), the
/// watermark of the last operator and its lag, how far the sources are behind, the newest
/// checkpoint.
pub fn line(metrics: &JobMetrics, sources: &[usize]) -> String {
    let sources: Vec<_> = metrics.operators.iter().filter(|op| sources.contains(&op.id)).collect();
    let rate: u64 = sources.iter().filter_map(|op| op.records_in_per_s()).sum();
    let read: u64 = sources.iter().map(|op| op.records_in()).sum();
    let mut parts = vec![format!("{rate} records/s ({read} read)")];
    let last = metrics.operators.last();
    match last.and_then(|op| op.watermark()) {
        Some(i64::MAX) => parts.push("watermark: end of input".to_string()),
        Some(watermark) => {
            let lag = last.and_then(|op| op.subtasks.iter().filter_map(|s| s.watermark_lag_ms).max());
            let time = chrono::DateTime::from_timestamp_millis(watermark)
                .map_or_else(|| watermark.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string());
            parts.push(format!("watermark {time} (lag {})", seconds(lag.unwrap_or(0))));
        }
        None => {}
    }
    let behind = sources.iter().flat_map(|op| &op.subtasks).filter_map(|s| s.lag_ms).max();
    if let Some(behind) = behind {
        parts.push(format!("sources {} behind", seconds(behind as i64)));
    }
    let checkpoints = &metrics.job.checkpoints;
    if let (Some(duration), Some(size)) = (checkpoints.last_duration_ms, checkpoints.last_size_bytes) {
        parts.push(format!("checkpoint #{} took {duration} ms, {size} bytes", checkpoints.completed));
    }
    if metrics.job.restarts > 0 {
        parts.push(format!("{} restarts", metrics.job.restarts));
    }
    parts.join(" · ")
}

fn seconds(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}
