//! The Nexmark benchmark (an online auction: persons, auctions and bids in the ratio 1:3:46)
//! as eddy programs, one file per query, and a runner that times them.
//!
//! ```text
//! cargo run --release --example nexmark -- --query q7 --events 1000000 --parallelism 2
//! cargo run --release --example nexmark -- --query q1 --events 100000 --output q1.jsonl
//! cargo run --release --example nexmark -- --query generator --events 10000000
//! ```
//!
//! It prints the events per second, the wall and CPU seconds (user + system, all threads)
//! and a checksum of the results that does not depend on their order or the parallelism,
//! so runs at p=1 and p=2 can be compared. `--output PATH` also writes the results as JSON
//! lines, with the columns named as in the Nexmark SQL (plus `window_start`/`window_end` in
//! epoch ms for windowed queries). `--query generator` times the event generator alone, in a
//! plain loop on one thread: the limit for q0. The events start at 2015-07-15 00:00:00 UTC
//! of event time, 10,000 per second. See `docs/nexmark.md`.

#[path = "../common/flags.rs"]
mod flags;
#[path = "../common/logs.rs"]
mod logs;
mod q0;
mod q1;
mod q2;
mod q7;
mod source;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use eddy::prelude::*;
use nexmark::EventGenerator;
use serde::Serialize;

use crate::source::{default_config, NexmarkSource};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Query {
    /// Pass-through: every bid.
    Q0,
    /// Currency conversion: every bid, its price in euros.
    Q1,
    /// Selection: the bids on every 123rd auction.
    Q2,
    /// Highest bid per 10 s tumbling window.
    Q7,
    /// The event generator alone, in a plain loop on one thread.
    Generator,
}

#[derive(Parser, Debug)]
#[command(about = "Nexmark queries on eddy: events/s, wall and CPU seconds, and a checksum of the results")]
struct Args {
    /// The query to run.
    #[arg(long, value_enum)]
    query: Query,
    /// How many Nexmark events to generate (persons, auctions and bids together), at least 1.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    events: u64,
    /// Subtasks per operator (the generator always runs on one thread).
    #[arg(long, default_value_t = 1, value_parser = flags::parallelism)]
    parallelism: usize,
    /// Also write the results to this file as JSON lines.
    #[arg(long)]
    output: Option<PathBuf>,
}

/// What a run produced: how many results and their checksum.
#[derive(Debug, Default)]
struct Tally {
    results: AtomicU64,
    checksum: AtomicU64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logs::init("nexmark");
    if let Some(path) = &args.output {
        anyhow::ensure!(args.query != Query::Generator, "--output needs a query; the generator has no results");
        flags::writable(path, "--output")?;
    }
    let (cpu, wall) = (cpu_seconds(), Instant::now());
    let tally = match args.query {
        Query::Generator => generator_alone(args.events),
        query => run(query, &args)?,
    };
    let (cpu, wall) = (cpu_seconds() - cpu, wall.elapsed().as_secs_f64());
    let parallelism = if args.query == Query::Generator { 1 } else { args.parallelism };
    println!(
        "nexmark {:?}: {} events at parallelism {} in {wall:.3} s wall, {cpu:.2} s CPU: {:.0} events/s; \
         {} results, checksum {:016x}",
        args.query,
        args.events,
        parallelism,
        args.events as f64 / wall,
        tally.results.load(Ordering::Relaxed),
        tally.checksum.load(Ordering::Relaxed),
    );
    Ok(())
}

/// Runs `query` over `args.events` events and tallies its results.
fn run(query: Query, args: &Args) -> anyhow::Result<Arc<Tally>> {
    let env = StreamEnvironment::new();
    env.set_parallelism(args.parallelism);
    let events = NexmarkSource::new(default_config(), args.events).stream(&env);
    let tally = Arc::new(Tally::default());
    let output = args.output.as_ref();
    match query {
        Query::Q0 => finish(q0::q0(&events), output, &tally),
        Query::Q1 => finish(q1::q1(&events), output, &tally),
        Query::Q2 => finish(q2::q2(&events), output, &tally),
        Query::Q7 => finish(q7::q7(&events), output, &tally),
        Query::Generator => unreachable!("the generator runs without a job"),
    }
    env.execute("nexmark")?.wait().with_context(|| format!("{query:?} failed"))?;
    Ok(tally)
}

/// Sends `rows` into the checksum and, if asked, into `output` as JSON lines.
fn finish<R: Data + Hash + Serialize>(rows: DataStream<R>, output: Option<&PathBuf>, tally: &Arc<Tally>) {
    let tally = tally.clone();
    rows.add_sink("Checksum", move |_, _| Ok(ChecksumSink { tally: tally.clone(), results: 0, checksum: 0 }));
    if let Some(path) = output {
        let json = rows.map(|row| serde_json::to_string(&row).expect("rows are plain data"));
        json.write_text(path.clone()).set_parallelism(1);
    }
}

/// Sums the rows' hashes: the same for the same results in any order and at any parallelism.
struct ChecksumSink {
    tally: Arc<Tally>,
    results: u64,
    checksum: u64,
}

impl<R: Hash> Sink<R> for ChecksumSink {
    fn write(&mut self, row: R, _: Timestamp) -> Result<(), BoxError> {
        let mut hasher = DefaultHasher::new();
        row.hash(&mut hasher);
        self.checksum = self.checksum.wrapping_add(hasher.finish());
        self.results += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        self.tally.checksum.fetch_add(std::mem::take(&mut self.checksum), Ordering::Relaxed);
        self.tally.results.fetch_add(std::mem::take(&mut self.results), Ordering::Relaxed);
        Ok(())
    }
}

/// Generates `events` events on this thread and counts the bids (so nothing is optimised away).
fn generator_alone(events: u64) -> Arc<Tally> {
    let mut bids = 0;
    for event in EventGenerator::new(default_config()).take(events as usize) {
        bids += matches!(std::hint::black_box(event), nexmark::event::Event::Bid(_)) as u64;
    }
    Arc::new(Tally { results: AtomicU64::new(bids), checksum: AtomicU64::new(0) })
}

/// CPU seconds (user + system) this process has used so far, or 0 where `/proc` is missing.
fn cpu_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = text.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0 // utime, stime (fields 14, 15) in clock ticks of 1/100 s
}
