//! The word count job itself, shared by the example binary, its tests and the benchmark:
//! tokenize → key_by word → tumbling window → count → `window_start_ms,window_end_ms,word,count`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eddy::prelude::*;

#[path = "tokens.rs"]
mod tokens;
pub use tokens::{Tokens, Word};

/// How the job reads its input and sizes its windows.
#[derive(Debug, Clone)]
pub struct Options {
    /// Lines are `<epoch_ms>\t<text>` and windows use event time; otherwise processing time.
    pub timestamped: bool,
    /// Window length in milliseconds.
    pub window_ms: u64,
    /// How late (in event time) a line may arrive without being dropped.
    pub out_of_orderness_ms: u64,
    /// Watermark alignment: a source subtask whose event time runs more than this many
    /// milliseconds ahead of the slowest pauses until it has caught up, so the window stage
    /// does not hold what one subtask read far ahead (`None`: not aligned).
    pub max_drift_ms: Option<u64>,
    /// The source already stamped each line and generates the watermarks (per Kafka
    /// partition), so the job must not replace them. Without `timestamped`, the lines are
    /// plain text and the source's time (a Kafka record's timestamp, Kafka Streams' default
    /// event time) is their event time: the windows are event-time windows all the same.
    pub stamped_by_source: bool,
}

/// How often aligned sources compare their watermarks, and how often the watermarks they
/// compare are generated: a subtask reads on for up to about this long before it sees that
/// it is too far ahead, so it is short next to how fast the input passes.
pub const ALIGNMENT_INTERVAL: Duration = Duration::from_millis(20);

/// One output row: the count of `word` in the window `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WindowCount {
    /// Window start (inclusive), ms since the epoch.
    pub start: i64,
    /// Window end (exclusive), ms since the epoch.
    pub end: i64,
    /// The word, lowercased.
    pub word: Word,
    /// How often it occurred in the window.
    pub count: u64,
}

impl fmt::Display for WindowCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `itoa` writes the numbers without `fmt`'s padding and width machinery, which a CSV
        // row never uses (the same text as `{}`).
        let mut number = itoa::Buffer::new();
        f.write_str(number.format(self.start))?;
        f.write_str(",")?;
        f.write_str(number.format(self.end))?;
        f.write_str(",")?;
        f.write_str(&self.word)?;
        f.write_str(",")?;
        f.write_str(number.format(self.count))
    }
}

/// A `<epoch_ms>\t<text>` line: its timestamp and where its text starts.
#[derive(Debug, Clone)]
pub struct Stamped {
    timestamp: i64,
    line: String,
    text_start: usize,
}

impl Stamped {
    /// The line's event time.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The line's tokens.
    pub fn tokens(self) -> Tokens {
        Tokens::new(self.line, self.text_start)
    }
}

/// Parses a timestamped line; `None` when the prefix is missing or not a number.
pub fn parse_stamped(line: String) -> Option<Stamped> {
    // A byte search: the prefix is a dozen digits, too short for `str::find`'s searcher setup.
    let tab = line.bytes().position(|b| b == b'\t')?;
    let timestamp = line[..tab].trim().parse().ok()?;
    Some(Stamped { timestamp, line, text_start: tab + 1 })
}

/// Counts the lines a stage skipped into `skipped` and prints the first few `reasons` (one
/// per skipped line) to stderr (stdout holds the CSV).
pub fn report_skipped(reasons: &DataStream<String>, skipped: Arc<AtomicU64>) {
    reasons.add_sink("Skipped", move |_, _| Ok(SkippedLines(skipped.clone()))).set_parallelism(1);
}

/// How many skipped lines have their reason printed.
const REASONS_SHOWN: u64 = 10;

struct SkippedLines(Arc<AtomicU64>);

impl Sink<String> for SkippedLines {
    fn write(&mut self, reason: String, _: Timestamp) -> Result<(), BoxError> {
        match self.0.fetch_add(1, Ordering::Relaxed) {
            n if n < REASONS_SHOWN => eprintln!("word count: skipped a line: {reason}"),
            REASONS_SHOWN => eprintln!("word count: more lines skipped (counted in the summary)"),
            _ => {}
        }
        Ok(())
    }
}

/// Event time for timestamped lines: bounded out-of-orderness, aligned (group `lines`) when
/// `max_drift_ms` is set: on the assigner for a file, inside the source (per partition) for
/// a Kafka topic.
pub fn watermark_strategy(out_of_orderness_ms: u64, max_drift_ms: Option<u64>) -> WatermarkStrategy {
    let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(out_of_orderness_ms));
    match max_drift_ms {
        Some(drift) => strategy.with_interval(ALIGNMENT_INTERVAL).with_watermark_alignment(
            "lines",
            Duration::from_millis(drift),
            ALIGNMENT_INTERVAL,
        ),
        None => strategy,
    }
}

/// The name of the word count's repartition: the `key_by` word is cut there in a
/// distributed run, its topic `<application id>-window-repartition` (the one-process run
/// ignores it).
pub const REPARTITION: &str = "window";

/// Builds the job on `lines`, shared by the one-process run (lines from a file, stdin or a
/// Kafka topic) and the distributed one (lines from `from_kafka`). Lines that are not `<epoch_ms>\t<text>` in timestamped mode,
/// or whose timestamp is not an event time (`i64::MIN` and `i64::MAX` are reserved), are
/// skipped and counted in `malformed`.
pub fn word_counts(
    lines: &DataStream<String>,
    options: &Options,
    malformed: Arc<AtomicU64>,
) -> DataStream<WindowCount> {
    let size = Duration::from_millis(options.window_ms);
    let to_row = |word: &Word, window: TimeWindow, count| WindowCount {
        start: window.start,
        end: window.end,
        word: word.clone(),
        count,
    };
    if options.timestamped {
        // The assigner is chained to the source (it runs at the source's parallelism with
        // nothing between them that moves lines), so the source pauses on its watermarks.
        let strategy = watermark_strategy(options.out_of_orderness_ms, options.max_drift_ms);
        let counted = malformed.clone();
        let parsed = lines
            .flat_map(move |line| {
                let parsed = parse_stamped(line);
                if parsed.is_none() {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                parsed
            })
            .name("ParseTimestamp");
        // A Kafka source stamps each record itself (its dead letters are counted with the
        // source's); the timestamps assigned here make their own dead letters.
        let stamped = match options.stamped_by_source {
            true => parsed,
            false => {
                let stamped = parsed.assign_timestamps_and_watermarks(strategy, Stamped::timestamp);
                report_skipped(&stamped.dead_letters::<Stamped>().map(|letter| letter.error), malformed);
                stamped
            }
        };
        stamped
            .flat_map(Stamped::tokens)
            .name("Tokenize")
            .key_by(|word: &Word| word.clone())
            .repartitioned(Repartitioned::named(REPARTITION))
            .window(TumblingEventTimeWindows::of(size))
            .aggregate_with(Count, to_row)
    } else if options.stamped_by_source {
        lines
            .flat_map(|line| Tokens::new(line, 0))
            .name("Tokenize")
            .key_by(|word: &Word| word.clone())
            .repartitioned(Repartitioned::named(REPARTITION))
            .window(TumblingEventTimeWindows::of(size))
            .aggregate_with(Count, to_row)
    } else {
        lines
            .flat_map(|line| Tokens::new(line, 0))
            .name("Tokenize")
            .key_by(|word: &Word| word.clone())
            .repartitioned(Repartitioned::named(REPARTITION))
            .window(TumblingProcessingTimeWindows::of(size))
            .aggregate_with(Count, to_row)
    }
}
