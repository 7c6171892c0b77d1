//! Sliding windows on word count: 1 h windows sliding every 1 min vs every 1 s (and 1 min
//! tumbling as a reference), in one run, counting results instead of writing them.
//!
//! ```text
//! cargo bench --bench sliding                  # 10 MB input (~1.2 M words, 2 min of event time)
//! SLIDING_BYTES=2e6 SLIDING_REPEAT=3 cargo bench --bench sliding
//! ```
//!
//! Each record is folded into one pane (gcd(size, slide)) whatever the slide, and the keyed
//! stage slides each key's window over its panes, so the cost per record stays flat and each
//! window result costs O(1); what grows with size/slide is the number of window results
//! (every key is in size/slide windows). Besides wall time, each run's CPU seconds (all
//! threads, from /proc/self/stat) are printed: on a shared machine they say more than wall.

#[path = "../examples/word_count/generate.rs"]
mod generate;
#[allow(dead_code)] // The bench builds its own job from the tokenizer.
#[path = "../examples/word_count/job.rs"]
mod job;
#[path = "common/machine.rs"]
mod machine;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy::prelude::*;

#[path = "../examples/common/allocator.rs"]
mod allocator;

/// Counts what reaches it.
#[derive(Clone)]
struct CountingSink(Arc<AtomicU64>);

impl<T> Sink<T> for CountingSink {
    fn write(&mut self, _: T, _: Timestamp) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// CPU seconds this process has used, all threads (user + system).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 Hz.
    (ticks(11) + ticks(12)) / 100.0
}

/// Wall seconds, CPU seconds and window results of one run.
fn run<A: WindowAssigner>(input: &PathBuf, assigner: A) -> (f64, f64, u64) {
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let results = Arc::new(AtomicU64::new(0));
    let sink = CountingSink(results.clone());
    env.read_text_file(input)
        .flat_map(job::parse_stamped)
        .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |s| s.timestamp())
        .flat_map(|s| s.tokens())
        .key_by(|w: &job::Word| w.clone())
        .window(assigner)
        .aggregate(Count)
        .add_sink("count", move |_, _| Ok(sink.clone()));
    let (start, cpu) = (Instant::now(), cpu_seconds());
    env.execute("sliding").unwrap().wait().unwrap();
    (start.elapsed().as_secs_f64(), cpu_seconds() - cpu, results.load(Ordering::Relaxed))
}

fn main() {
    allocator::return_freed_memory_promptly();
    let bytes: f64 = std::env::var("SLIDING_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(1e7);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join(format!("wc_sliding_{}kb.tsv", (bytes / 1e3) as u64));
    let spec = generate::Spec { target_bytes: bytes as u64, seed: 5, disorder_ms: 0, start_ms: 0 };
    let (lines, _) = generate::generate(&input, spec).unwrap();
    let words: u64 = std::fs::read_to_string(&input)
        .unwrap()
        .lines()
        .filter_map(|l| job::parse_stamped(l.to_string()))
        .map(|s| s.tokens().count() as u64)
        .sum();
    let repeat: usize = std::env::var("SLIDING_REPEAT").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    println!("# sliding windows, {lines} lines ({} s of event time), {words} words, p=1", lines / 1000);
    println!("# {}", machine::machine());
    println!("| round | windows | wall s | CPU s | M words/s | window results | results/s |");
    println!("|---|---|---|---|---|---|---|");
    let (minute, hour, second) = (Duration::from_secs(60), Duration::from_secs(3600), Duration::from_secs(1));
    let report = |round: usize, name: &str, (secs, cpu, results): (f64, f64, u64)| {
        println!(
            "| {round} | {name} | {secs:.2} | {cpu:.2} | {:.2} | {results} | {:.2} M |",
            words as f64 / secs / 1e6,
            results as f64 / secs / 1e6
        );
        (secs, cpu)
    };
    for round in 1..=repeat {
        report(round, "tumbling 1 min", run(&input, TumblingEventTimeWindows::of(minute)));
        let minutes = report(round, "sliding 1 h / 1 min", run(&input, SlidingEventTimeWindows::of(hour, minute)));
        let seconds = report(round, "sliding 1 h / 1 s", run(&input, SlidingEventTimeWindows::of(hour, second)));
        println!(
            "| {round} | 1 h / 1 s vs 1 h / 1 min | {:.2}x | {:.2}x | | | |",
            seconds.0 / minutes.0,
            seconds.1 / minutes.1
        );
    }
}
