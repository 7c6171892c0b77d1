//! Nexmark throughput: per query, events/s at each parallelism, CPU seconds, events per CPU
//! second (the per-core figure engines publish), and peak RSS, next to the generator alone
//! on one thread in the same run (the ceiling for q0).
//!
//! ```text
//! cargo bench --bench nexmark                          # 10 M events (q0-q2: 50 M), p = 1, 2
//! NEXMARK_EVENTS=1e6 NEXMARK_STATELESS_EVENTS=2e6 NEXMARK_QUERIES=q0,q5 NEXMARK_PARALLELISM=1,2,4 \
//!     cargo bench --bench nexmark
//! ```
//!
//! Each run is a child process (its own peak RSS and CPU time); the checksums of a query's
//! results must agree across parallelisms (q12's follow the clock and may not).

#[path = "../examples/nexmark/closed.rs"]
mod closed;
#[path = "../examples/nexmark/q0.rs"]
mod q0;
#[path = "../examples/nexmark/q1.rs"]
mod q1;
#[path = "../examples/nexmark/q11.rs"]
mod q11;
#[path = "../examples/nexmark/q12.rs"]
mod q12;
#[path = "../examples/nexmark/q2.rs"]
mod q2;
#[path = "../examples/nexmark/q3.rs"]
mod q3;
#[path = "../examples/nexmark/q4.rs"]
mod q4;
#[path = "../examples/nexmark/q5.rs"]
mod q5;
#[path = "../examples/nexmark/q6.rs"]
mod q6;
#[path = "../examples/nexmark/q7.rs"]
mod q7;
#[path = "../examples/nexmark/q8.rs"]
mod q8;
#[path = "../examples/nexmark/q9.rs"]
mod q9;
#[path = "../examples/nexmark/rows.rs"]
#[allow(dead_code)] // The bench dumps no events.
mod rows;
#[path = "../examples/nexmark/runner.rs"]
mod runner;
#[path = "../examples/nexmark/source.rs"]
mod source;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Instant;

use clap::ValueEnum;

use crate::runner::{cpu_seconds, generator_alone, run, Query};

#[path = "../examples/common/allocator.rs"]
mod allocator;

/// Every query, in order.
const ALL: &str = "q0,q1,q2,q3,q4,q5,q6,q7,q8,q9,q11,q12";

fn main() {
    allocator::return_freed_memory_promptly();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1], args[i + 2].parse().expect("parallelism"), args[i + 3].parse().expect("events"));
    }
    let number = |name: &str, default: f64| -> u64 {
        std::env::var(name)
            .ok()
            .map(|v| v.parse::<f64>().unwrap_or_else(|_| panic!("{name}: a number")))
            .unwrap_or(default) as u64
    };
    let events = number("NEXMARK_EVENTS", 1e7);
    let stateless = number("NEXMARK_STATELESS_EVENTS", 5e7);
    let queries = std::env::var("NEXMARK_QUERIES").unwrap_or_else(|_| ALL.into());
    let parallelism = std::env::var("NEXMARK_PARALLELISM").unwrap_or_else(|_| "1,2".into());
    println!("# Nexmark, {events} events ({stateless} for q0-q2), {} cores", cores());
    println!(
        "| query | p | events | wall s | K events/s | CPU s | K events/CPU-s | peak RSS MB | results | checksum = p1 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    measure("generator", 1, stateless.max(events), &mut None);
    for query in queries.split(',').map(str::trim) {
        Query::from_str(query, true).unwrap_or_else(|e| panic!("NEXMARK_QUERIES: {query}: {e}"));
        let n = if ["q0", "q1", "q2"].contains(&query) { stateless } else { events };
        let mut reference = None;
        for p in parallelism.split(',').map(|p| p.trim().parse::<usize>().expect("NEXMARK_PARALLELISM: numbers")) {
            measure(query, p, n, &mut reference);
        }
    }
}

/// Runs `query` at `parallelism` in a child process and prints its row; `reference` is the
/// first parallelism's checksum.
fn measure(query: &str, parallelism: usize, events: u64, reference: &mut Option<String>) {
    let exe = std::env::current_exe().expect("the bench's path");
    let run = Command::new(exe).args(["--child", query, &parallelism.to_string(), &events.to_string()]).output();
    let run = run.expect("start a child");
    let report = String::from_utf8_lossy(&run.stdout);
    let fields: Vec<&str> = report.split_whitespace().collect();
    if !run.status.success() || fields.len() != 5 {
        println!("| {query} | {parallelism} | {events} | failed: {} |", String::from_utf8_lossy(&run.stderr).trim());
        return;
    }
    let number = |i: usize| fields[i].parse::<f64>().expect("a child's figures");
    let (wall, cpu, rss_kb, results) = (number(0), number(1), number(2), fields[3]);
    let checksum = fields[4].to_string();
    let same = match query {
        "generator" => "",
        _ if reference.get_or_insert_with(|| checksum.clone()) == &checksum => "yes",
        _ => "NO",
    };
    println!(
        "| {query} | {parallelism} | {events} | {wall:.2} | {:.0} | {cpu:.2} | {:.0} | {:.0} | {results} | {same} |",
        events as f64 / wall / 1e3,
        events as f64 / cpu / 1e3,
        rss_kb / 1024.0,
    );
}

/// One run: prints wall seconds, CPU seconds, peak RSS in KiB, results and checksum.
fn child(query: &str, parallelism: usize, events: u64) {
    let (cpu, wall) = (cpu_seconds(), Instant::now());
    let tally = match query {
        "generator" => generator_alone(events),
        name => {
            let query = Query::from_str(name, true).expect("a query");
            run(query, events, parallelism, None).expect("the query runs")
        }
    };
    let (cpu, wall) = (cpu_seconds() - cpu, wall.elapsed().as_secs_f64());
    let results = tally.results.load(Ordering::Relaxed);
    let checksum = tally.checksum.load(Ordering::Relaxed);
    println!("{wall} {cpu} {} {results} {checksum:016x}", peak_rss_kib());
}

/// This process's peak resident set size (`VmHWM`), in KiB (0 where `/proc` is missing).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).unwrap_or(0)
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
