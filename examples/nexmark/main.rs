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
//! epoch ms for windowed queries), and `--dump-events PATH` the events themselves
//! (`{"type": "person"|"auction"|"bid", …}`). `--query generator` times the event generator alone, in a
//! plain loop on one thread: the limit for q0. The events start at 2015-07-15 00:00:00 UTC
//! of event time, 10,000 per second. See `docs/nexmark.md`.

mod closed;
#[path = "../common/flags.rs"]
mod flags;
#[path = "../common/logs.rs"]
mod logs;
mod q0;
mod q1;
mod q11;
mod q12;
mod q2;
mod q3;
mod q4;
mod q5;
mod q6;
mod q7;
mod q8;
mod q9;
mod rows;
mod runner;
mod source;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use nexmark::EventGenerator;

use crate::rows::EventRow;
use crate::runner::{cpu_seconds, generator_alone, run, Query};
use crate::source::default_config;

#[path = "../common/allocator.rs"]
mod allocator;

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
    /// Also write the generated events to this file as JSON lines (after the timed run).
    #[arg(long)]
    dump_events: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    allocator::return_freed_memory_promptly();
    let args = Args::parse();
    logs::init("nexmark");
    if let Some(path) = &args.output {
        anyhow::ensure!(args.query != Query::Generator, "--output needs a query; the generator has no results");
        flags::writable(path, "--output")?;
    }
    if let Some(path) = &args.dump_events {
        flags::writable(path, "--dump-events")?;
    }
    let (cpu, wall) = (cpu_seconds(), Instant::now());
    let tally = match args.query {
        Query::Generator => generator_alone(args.events),
        query => run(query, args.events, args.parallelism, args.output.as_ref())?,
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
    if let Some(path) = &args.dump_events {
        dump_events(args.events, path)?;
    }
    Ok(())
}

/// Writes the first `events` events to `path`, one JSON object a line, in the order of the
/// sequence (the same events the run generated: an event is a function of its position).
fn dump_events(events: u64, path: &PathBuf) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("--dump-events: cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for event in EventGenerator::new(default_config()).take(events as usize) {
        serde_json::to_writer(&mut out, &EventRow::from(event))?;
        out.write_all(b"\n")?;
    }
    out.flush().with_context(|| format!("--dump-events: cannot write {}", path.display()))
}
