//! Word count throughput: eddy at parallelism 1 and 2 next to a naive single-threaded loop
//! (read, tokenize, one HashMap per window), all on the same generated input in one run.
//!
//! ```text
//! cargo bench --bench word_count                          # 100 MB input (generated once, ~1 s)
//! WC_BYTES=1e9 cargo bench --bench word_count             # another size
//! WC_PARALLELISM=1,2,4,8 cargo bench --bench word_count   # other parallelisms (default 1,2)
//! WC_DIR=/tmp/wc cargo bench --bench word_count           # where input and outputs go
//! WC_SLED=1 cargo bench --bench word_count                # also with the windows' state in sled
//! WC_MAX_DRIFT_MS=none cargo bench --bench word_count     # without watermark alignment
//! WC_CONFIGS=loop,eddy-p1,eddy-p1+incr cargo bench --bench word_count   # only these configurations
//! ```
//!
//! Each parallelism runs five times: without checkpoints, with the per-operator metrics
//! turned off (`-nometrics`: their cost is the throughput they lose), and with a checkpoint
//! every second (`+ckpt`, to a sled directory under WC_DIR) whose cost is the throughput lost;
//! then with incremental checkpoints every second (`+incr`).
//! `+http` also serves the metrics endpoint and scrapes `/metrics` every 100 ms while the job
//! runs (a hundred times Prometheus' default rate), so its cost shows too. With `WC_SLED`
//! set, a fifth time with the sled state backend (`+sled`, under WC_DIR).
//! `WC_REPEAT=n` runs the whole list n times (the machine's noise next to the differences).
//!
//! Each configuration runs in a child process so its peak memory (VmHWM) is its own; every
//! output is checked against the loop's (sorted lines must be identical).

#[path = "../examples/word_count/generate.rs"]
mod generate;
#[path = "../examples/word_count/job.rs"]
mod job;
#[path = "common/machine.rs"]
mod machine;

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use eddy::prelude::*;
use eddy::runtime::metrics::names;
use rustc_hash::FxHashMap;

#[path = "../examples/common/allocator.rs"]
mod allocator;

const WINDOW_MS: i64 = 5000;

fn main() {
    allocator::return_freed_memory_promptly();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1], Path::new(&args[i + 2]), Path::new(&args[i + 3]));
    }
    let bytes: f64 = std::env::var("WC_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(1e8);
    let parallelism = std::env::var("WC_PARALLELISM").unwrap_or_else(|_| "1,2".into());
    let dir = std::env::var("WC_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data"));
    std::fs::create_dir_all(&dir).expect("create target/bench-data");
    let input = dir.join(format!("wc_{}mb.tsv", (bytes / 1e6) as u64));
    if !input.exists() {
        let spec = generate::Spec { target_bytes: bytes as u64, seed: 42, disorder_ms: 0, start_ms: 0 };
        generate::generate(&input, spec).expect("generate input");
    }
    println!("# word count, {} MB input, {}", bytes / 1e6, machine::machine());
    println!(
        "| config | words | wall s | M words/s | vs loop | peak RSS MB | checkpoints (last ms, MB; MB written in all) | sources paused s | output = loop |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut reference: Option<(f64, u64)> = None;
    let repeat: usize = std::env::var("WC_REPEAT").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let sled = std::env::var_os("WC_SLED").is_some();
    let configs = std::iter::once("loop".to_string()).chain(parallelism.split(',').flat_map(|p| {
        let p = p.trim();
        let with_sled = sled.then(|| format!("eddy-p{p}+sled"));
        [
            format!("eddy-p{p}"),
            format!("eddy-p{p}-nometrics"),
            format!("eddy-p{p}+http"),
            format!("eddy-p{p}+ckpt"),
            format!("eddy-p{p}+incr"),
        ]
        .into_iter()
        .chain(with_sled)
    }));
    let only = std::env::var("WC_CONFIGS").ok();
    let wanted = |config: &String| only.as_ref().is_none_or(|only| only.split(',').any(|c| c.trim() == config));
    let configs: Vec<String> = configs.filter(wanted).collect();
    for config in std::iter::repeat_n(configs, repeat).flatten() {
        let config = config.as_str();
        let output = dir.join(format!("out-{config}.csv"));
        let exe = std::env::current_exe().expect("own path");
        let run = Command::new(exe).args(["--child", config]).arg(&input).arg(&output).output().expect("run child");
        let report = String::from_utf8_lossy(&run.stdout);
        let fields: Vec<&str> = report.split_whitespace().collect();
        if !run.status.success() || fields.len() != 5 {
            println!("| {config} | failed: {} |", String::from_utf8_lossy(&run.stderr).trim());
            continue;
        }
        let (words, secs, rss_kb): (u64, f64, u64) =
            (fields[0].parse().unwrap(), fields[1].parse().unwrap(), fields[2].parse().unwrap());
        let rate = words as f64 / secs / 1e6;
        let checksum = sorted_checksum(&output);
        let (loop_rate, loop_sum) = *reference.get_or_insert((rate, checksum));
        println!(
            "| {config} | {words} | {secs:.2} | {rate:.1} | {:.2}x | {} | {} | {} | {} |",
            rate / loop_rate,
            rss_kb / 1024,
            fields[3].replace('/', " "),
            fields[4],
            if checksum == loop_sum { "yes" } else { "NO" }
        );
    }
}

/// Runs one configuration and prints `words seconds peak_rss_kb checkpoints paused_s`.
fn child(config: &str, input: &Path, output: &Path) {
    let start = Instant::now();
    let (words, checkpoints, paused) = match config.strip_prefix("eddy-p") {
        None => (naive_loop(input, output), "-".to_string(), "-".to_string()),
        Some(p) => {
            let (p, checkpoints) = match (p.strip_suffix("+ckpt"), p.strip_suffix("+incr")) {
                (Some(p), _) => (p, Some((output.with_extension("checkpoints"), false))),
                (None, Some(p)) => (p, Some((output.with_extension("checkpoints"), true))),
                (None, None) => (p, None),
            };
            let (p, state) = match p.strip_suffix("+sled") {
                Some(p) => (p, Some(output.with_extension("state"))),
                None => (p, None),
            };
            let (p, metrics) = match (p.strip_suffix("+http"), p.strip_suffix("-nometrics")) {
                (Some(p), _) => (p, Metrics::Scraped),
                (None, Some(p)) => (p, Metrics::Off),
                (None, None) => (p, Metrics::On),
            };
            for dir in checkpoints.iter().map(|(dir, _)| dir).chain(&state) {
                let _ = std::fs::remove_dir_all(dir);
            }
            let checkpoints = checkpoints.as_ref().map(|(dir, incremental)| (dir.as_path(), *incremental));
            eddy(input, output, p.parse().expect("parallelism"), checkpoints, state.as_deref(), metrics)
        }
    };
    println!("{words} {:.3} {} {checkpoints} {paused}", start.elapsed().as_secs_f64(), peak_rss_kb());
}

/// Whether the per-operator metrics are counted, and scraped over HTTP.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Metrics {
    Off,
    On,
    Scraped,
}

/// The metrics endpoint of an environment, scraped every 100 ms until dropped.
struct Scraper {
    _server: eddy_metrics_http::MetricsServer,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Scraper {
    fn start(env: &StreamEnvironment) -> Self {
        use eddy_metrics_http::ServeMetrics;
        let server = env.serve_metrics("127.0.0.1:0").expect("a free port");
        let url = format!("http://{}/metrics", server.local_addr());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let text = eddy::runtime::io_runtime::block_on(async { reqwest::get(&url).await?.text().await });
                assert!(text.expect("the runtime").expect("a scrape").contains("eddy_operator_records_in_total"));
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
        Scraper { _server: server, stop }
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The hand-written reference: one thread, no engine.
fn naive_loop(input: &Path, output: &Path) -> u64 {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(input).unwrap());
    let mut out = BufWriter::with_capacity(1 << 20, File::create(output).unwrap());
    let mut counts: FxHashMap<Vec<u8>, u64> = FxHashMap::default();
    let (mut line, mut token, mut words, mut window) = (Vec::new(), Vec::new(), 0u64, None);
    let flush = |counts: &mut FxHashMap<Vec<u8>, u64>, start: i64, out: &mut BufWriter<File>| {
        for (word, n) in counts.drain() {
            writeln!(out, "{start},{},{},{n}", start + WINDOW_MS, String::from_utf8_lossy(&word)).unwrap();
        }
    };
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).unwrap() == 0 {
            break;
        }
        let tab = line.iter().position(|&b| b == b'\t').unwrap();
        let ts: i64 = std::str::from_utf8(&line[..tab]).unwrap().parse().unwrap();
        let start = ts - ts.rem_euclid(WINDOW_MS);
        if window != Some(start) {
            if let Some(previous) = window {
                flush(&mut counts, previous, &mut out);
            }
            window = Some(start);
        }
        for &b in &line[tab + 1..] {
            if b.is_ascii_alphanumeric() || b == b'_' {
                token.push(b.to_ascii_lowercase());
            } else if !token.is_empty() {
                words += 1;
                count(&mut counts, &mut token);
            }
        }
        if !token.is_empty() {
            words += 1;
            count(&mut counts, &mut token);
        }
    }
    if let Some(previous) = window {
        flush(&mut counts, previous, &mut out);
    }
    out.flush().unwrap();
    words
}

fn count(counts: &mut FxHashMap<Vec<u8>, u64>, token: &mut Vec<u8>) {
    match counts.get_mut(token.as_slice()) {
        Some(n) => *n += 1,
        None => {
            counts.insert(token.clone(), 1);
        }
    }
    token.clear();
}

/// The example's job, reading `input` at `parallelism`, with a checkpoint every second into
/// `checkpoints` if given, its keyed state in sled under `state` if given, with the
/// per-operator `metrics` off, on, or on and scraped; returns the number of words,
/// `count/(last_ms,/last_MB,/written_MB)` of the checkpoints (`-` without), and the seconds its source
/// subtasks spent paused by watermark alignment, summed.
fn eddy(
    input: &Path,
    output: &Path,
    parallelism: usize,
    checkpoints: Option<(&Path, bool)>,
    state: Option<&Path>,
    metrics: Metrics,
) -> (u64, String, String) {
    let env = StreamEnvironment::new();
    env.set_parallelism(parallelism).set_operator_metrics(metrics != Metrics::Off);
    if let Some(dir) = state {
        env.set_state_dir(dir);
    }
    let _scraper = (metrics == Metrics::Scraped).then(|| Scraper::start(&env));
    if let Some((dir, incremental)) = checkpoints {
        let every_second = CheckpointConfig::every(std::time::Duration::from_secs(1));
        env.enable_checkpointing(every_second.dir(dir).incremental(incremental));
    }
    let options = job::Options {
        timestamped: true,
        window_ms: WINDOW_MS as u64,
        out_of_orderness_ms: 0,
        max_drift_ms: std::env::var("WC_MAX_DRIFT_MS").map_or(Some(120_000), |v| v.parse().ok()),
        stamped_by_source: false,
    };
    let lines = env.read_text_file(input).uid("lines");
    let counts = job::word_counts(&lines, &options, Arc::new(AtomicU64::new(0))).uid("counts");
    counts.write_text(output).set_parallelism(1);
    let result = env.execute("word count bench").unwrap().wait().unwrap();
    let checkpointed = match checkpoints {
        None => "-".to_string(),
        Some(_) => {
            let gauge = |name| result.metrics.total(names::CHECKPOINTS, name);
            let (ms, mb) = (gauge(names::LAST_CHECKPOINT_MS), gauge(names::LAST_CHECKPOINT_BYTES) as f64 / 1e6);
            let written = gauge(names::WRITTEN_STATE_BYTES) as f64 / 1e6;
            format!("{}/({ms},/{mb:.1},/{written:.1})", result.checkpoints)
        }
    };
    let paused = result.metrics.total_all(names::ALIGNMENT_PAUSED_MS) as f64 / 1e3;
    // Words are counted from the output: the sum of all window counts.
    let reader = BufReader::new(File::open(output).unwrap());
    let words = reader.lines().map(|l| l.unwrap().rsplit(',').next().unwrap().parse::<u64>().unwrap()).sum();
    (words, checkpointed, format!("{paused:.2}"))
}

fn sorted_checksum(path: &Path) -> u64 {
    let mut lines: Vec<String> = BufReader::new(File::open(path).unwrap()).lines().map(|l| l.unwrap()).collect();
    lines.sort_unstable();
    lines
        .iter()
        .fold(0xcbf29ce484222325u64, |h, l| l.bytes().fold(h ^ 0xff, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3)))
}

fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
