//! Sliding windows on word count: 1 h windows sliding every 1 min vs every 1 s (and 1 min
//! tumbling as a reference), in one run, counting results instead of writing them.
//!
//! ```text
//! cargo bench --bench sliding                  # 2 MB input (~230 k words, 23 s of event time)
//! SLIDING_BYTES=5e6 cargo bench --bench sliding
//! ```
//!
//! Each record is folded into one pane (gcd(size, slide)) whatever the slide, so the cost per
//! record stays flat; what grows with size/slide is the number of window results (every key
//! is in size/slide windows) and the merging of panes into them.

#[path = "../examples/word_count/generate.rs"]
mod generate;
#[allow(dead_code)] // The bench builds its own job from the tokenizer.
#[path = "../examples/word_count/job.rs"]
mod job;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy::prelude::*;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Counts what reaches it.
#[derive(Clone)]
struct CountingSink(Arc<AtomicU64>);

impl<T> Sink<T> for CountingSink {
    fn write(&mut self, _: T, _: Timestamp) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn run<A: WindowAssigner>(input: &PathBuf, assigner: A) -> (f64, u64) {
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
    let start = Instant::now();
    env.execute("sliding").unwrap().wait().unwrap();
    (start.elapsed().as_secs_f64(), results.load(Ordering::Relaxed))
}

fn main() {
    let bytes: f64 = std::env::var("SLIDING_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(2e6);
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
    println!("# sliding windows, {lines} lines ({} s of event time), {words} words, p=1", lines / 1000);
    println!("| windows | wall s | M words/s | window results | results/s |");
    println!("|---|---|---|---|---|");
    let (minute, hour, second) = (Duration::from_secs(60), Duration::from_secs(3600), Duration::from_secs(1));
    let report = |name: &str, (secs, results): (f64, u64)| {
        println!(
            "| {name} | {secs:.2} | {:.2} | {results} | {:.2} M |",
            words as f64 / secs / 1e6,
            results as f64 / secs / 1e6
        );
    };
    report("tumbling 1 min", run(&input, TumblingEventTimeWindows::of(minute)));
    report("sliding 1 h / 1 min", run(&input, SlidingEventTimeWindows::of(hour, minute)));
    report("sliding 1 h / 1 s", run(&input, SlidingEventTimeWindows::of(hour, second)));
}
