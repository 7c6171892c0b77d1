//! Taxi analytics throughput: end-to-end events/s (JSON parsing → both windowed aggregations
//! → JSON-lines output) on generated trips, at parallelism 1 and 2, in one run.
//!
//! ```text
//! cargo bench --bench taxi                                  # 5 M trips (generated once)
//! TAXI_TRIPS=2e7 TAXI_PARALLELISM=1,2,4 cargo bench --bench taxi
//! ```
//!
//! Each configuration runs in a child process (its own peak RSS); their outputs must agree.

#[path = "../examples/taxi_analytics/generate.rs"]
mod generate;
#[allow(dead_code)] // The bench reads JSON only.
#[path = "../examples/taxi_analytics/job.rs"]
mod job;
#[path = "../examples/taxi_analytics/sink.rs"]
mod sink;
#[path = "../examples/taxi_analytics/tlc.rs"]
mod tlc;
#[path = "../examples/taxi_analytics/trip.rs"]
mod trip;

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use eddy::prelude::*;

#[path = "../examples/common/allocator.rs"]
mod allocator;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/nyc-taxi");

fn main() {
    allocator::return_freed_memory_promptly();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(args[i + 1].parse().expect("parallelism"), Path::new(&args[i + 2]), Path::new(&args[i + 3]));
    }
    let trips: f64 = std::env::var("TAXI_TRIPS").ok().and_then(|v| v.parse().ok()).unwrap_or(5e6);
    let parallelism = std::env::var("TAXI_PARALLELISM").unwrap_or_else(|_| "1,2".into());
    let dir = std::env::var("TAXI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data"));
    std::fs::create_dir_all(&dir).expect("create the data dir");
    let input = dir.join(format!("taxi_{}k.jsonl", (trips / 1e3) as u64));
    if !input.exists() {
        write_input(&input, trips as u64);
    }
    let lines = BufReader::new(File::open(&input).unwrap()).lines().count();
    println!("# taxi analytics, {lines} input lines ({trips} generated trips), {} cores", cores());
    println!("| parallelism | wall s | M events/s | peak RSS MB | outputs = p1 |");
    println!("|---|---|---|---|---|");
    let mut reference = None;
    for p in parallelism.split(',').map(str::trim) {
        let out = dir.join(format!("taxi-out-p{p}"));
        std::fs::create_dir_all(&out).unwrap();
        let run = Command::new(std::env::current_exe().unwrap()).args(["--child", p]).arg(&input).arg(&out).output();
        let run = run.expect("run child");
        let report = String::from_utf8_lossy(&run.stdout);
        let fields: Vec<&str> = report.split_whitespace().collect();
        if !run.status.success() || fields.len() != 2 {
            println!("| {p} | failed: {} |", String::from_utf8_lossy(&run.stderr).trim());
            continue;
        }
        let (secs, rss_kb): (f64, u64) = (fields[0].parse().unwrap(), fields[1].parse().unwrap());
        let outputs = sorted_outputs(&out);
        let same = reference.get_or_insert_with(|| outputs.clone()) == &outputs;
        println!(
            "| {p} | {secs:.2} | {:.2} | {} | {} |",
            lines as f64 / secs / 1e6,
            rss_kb / 1024,
            if same { "yes" } else { "NO" }
        );
    }
}

fn write_input(path: &Path, trips: u64) {
    let calibration = generate::Calibration::from_samples(Path::new(SAMPLES)).expect("read the samples");
    let spec = generate::Spec {
        seed: 11,
        trips,
        start_ms: 1_451_606_400_000,
        disorder_ms: 60_000,
        malformed_per_million: 200,
        watermark_every_ms: Some(60_000),
    };
    let mut out = BufWriter::new(File::create(path).unwrap());
    for line in generate::generate(&calibration, spec) {
        writeln!(out, "{line}").unwrap();
    }
    out.flush().unwrap();
}

/// Runs the job on `input` at `parallelism`, printing `seconds peak_rss_kb`.
fn child(parallelism: usize, input: &Path, out: &Path) {
    let start = Instant::now();
    let env = StreamEnvironment::new();
    env.set_parallelism(parallelism);
    let lines = env.read_text_file(input);
    let outputs = job::build(&lines, parallelism, job::Format::Json, &job::Options::default(), Arc::default());
    sink::write_json_lines(&outputs.pickups, &out.join("pickup_count.jsonl"));
    sink::write_json_lines(&outputs.durations, &out.join("trip_duration.jsonl"));
    sink::write_json_lines(&outputs.dead_letters, &out.join("dead_letters.jsonl"));
    env.execute("taxi bench").unwrap().wait().unwrap();
    println!("{:.3} {}", start.elapsed().as_secs_f64(), peak_rss_kb());
}

fn sorted_outputs(dir: &Path) -> Vec<String> {
    let mut all = Vec::new();
    for name in ["pickup_count.jsonl", "trip_duration.jsonl", "dead_letters.jsonl"] {
        all.extend(BufReader::new(File::open(dir.join(name)).unwrap()).lines().map(Result::unwrap));
    }
    all.sort_unstable();
    all
}

fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:"));
    hwm.and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
