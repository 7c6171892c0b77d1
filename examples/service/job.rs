//! The service's job: per-key sums of the events' values in 1 s tumbling event-time windows,
//! written to the results file and streamed to subscribers, and each key's all-time total in
//! queryable state.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use eddy::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

/// The uid of the operator holding each key's total, and the state's name: what `GET
/// /state/<key>` reads.
pub const TOTALS: &str = "totals";
pub const TOTAL: &str = "total";

/// One event, as a line of `POST /events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub key: String,
    /// Event time, ms since the epoch.
    pub ts: i64,
    pub value: i64,
}

/// One window's sum for one key, as a line of the results file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSum {
    pub key: String,
    pub window_start: i64,
    pub window_end: i64,
    pub sum: i64,
}

/// Sums the events' values.
#[derive(Clone)]
struct SumOfValues;

impl AggregateFunction<Event> for SumOfValues {
    type Acc = i64;
    type Out = i64;

    fn create_accumulator(&self) -> i64 {
        0
    }

    fn add(&self, acc: &mut i64, event: Event) {
        *acc = acc.saturating_add(event.value);
    }

    fn get_result(&self, acc: i64) -> i64 {
        acc
    }

    fn merge(&self, acc: &mut i64, other: i64) {
        *acc = acc.saturating_add(other);
    }
}

/// Adds the job to `env`: events from `events` (event time `ts`, up to 1 s out of order; after
/// `advance_after` without events, event time follows the clock so the last windows close),
/// window sums appended to `results` and sent to `subscribers` once written.
pub fn build(
    env: &StreamEnvironment,
    events: mpsc::Receiver<Event>,
    advance_after: Option<Duration>,
    results: &Path,
    subscribers: broadcast::Sender<String>,
) {
    let bounded = WatermarkStrategy::bounded_out_of_orderness(Duration::from_secs(1));
    let source = env.from_channel(events).name("events");
    let keyed = match advance_after {
        Some(quiet) => source.assign_timestamps_and_watermarks(bounded.with_processing_time_advance(quiet), event_time),
        None => source.assign_timestamps_and_watermarks(bounded, event_time),
    }
    .key_by(|e: &Event| e.key.clone());

    let path = results.to_path_buf();
    keyed
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .aggregate_with(SumOfValues, |key, window, sum| WindowSum {
            key: key.clone(),
            window_start: window.start,
            window_end: window.end,
            sum,
        })
        .uid("window-sums")
        .add_sink("results", move |_, _| ResultsSink::open(&path, subscribers.clone()))
        .set_parallelism(1);

    let total = ValueStateDescriptor::<i64>::new(TOTAL);
    keyed
        .process(move |event: &Event, ctx: &mut KeyedContext<'_, String, ()>| {
            let state = ctx.state().value_state(&total)?;
            state.update(state.value()?.unwrap_or(0).saturating_add(event.value))?;
            Ok(())
        })
        .name("totals")
        .uid(TOTALS);
}

fn event_time(event: &Event) -> i64 {
    event.ts
}

/// Appends results to the file as JSON lines; on every flush (ticks and the end of input)
/// writes what came, then tells subscribers, so a subscriber never sees what is not written.
struct ResultsSink {
    file: BufWriter<File>,
    path: PathBuf,
    pending: Vec<String>,
    subscribers: broadcast::Sender<String>,
}

impl ResultsSink {
    fn open(path: &Path, subscribers: broadcast::Sender<String>) -> Result<Self, BoxError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open {} (--results): {e}", path.display()))?;
        Ok(ResultsSink { file: BufWriter::new(file), path: path.to_path_buf(), pending: Vec::new(), subscribers })
    }
}

impl Sink<WindowSum> for ResultsSink {
    fn write(&mut self, result: WindowSum, _: i64) -> Result<(), BoxError> {
        self.pending.push(serde_json::to_string(&result)?);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        for line in &self.pending {
            writeln!(self.file, "{line}")?;
        }
        self.file.flush().map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        for line in self.pending.drain(..) {
            // No subscriber is no error: the file has it.
            let _ = self.subscribers.send(line);
        }
        Ok(())
    }
}
