//! Builds and runs one Nexmark query (or the generator alone) and tallies its results: what
//! the runner (`main.rs`) and `benches/nexmark.rs` share.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::ValueEnum;
use eddy::prelude::*;
use nexmark::EventGenerator;
use serde::Serialize;

use crate::source::{default_config, NexmarkSource};
use crate::{q0, q1, q11, q12, q2, q3, q4, q5, q6, q7, q8, q9};

/// A Nexmark query, or the generator alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Query {
    /// Pass-through: every bid.
    Q0,
    /// Currency conversion: every bid, its price in euros.
    Q1,
    /// Selection: the bids on every 123rd auction.
    Q2,
    /// Local item suggestion: category-10 auctions of sellers in OR, ID or CA (a join).
    Q3,
    /// Average winning price per category.
    Q4,
    /// Hot items: the most bid-on auctions of each 10 s sliding window (every 2 s).
    Q5,
    /// Average winning price of each seller's last 10 auctions.
    Q6,
    /// Highest bid per 10 s tumbling window.
    Q7,
    /// New users: persons who opened an auction in the 10 s window they registered in.
    Q8,
    /// Winning bids: each auction's highest bid while it was open.
    Q9,
    /// User sessions: each bidder's bids per session (10 s gap).
    Q11,
    /// Each bidder's bids per 10 s of processing time.
    Q12,
    /// The event generator alone, in a plain loop on one thread.
    Generator,
}

/// What a run produced: how many results and their checksum.
#[derive(Debug, Default)]
pub struct Tally {
    pub results: AtomicU64,
    pub checksum: AtomicU64,
}

/// Runs `query` over `events` events at `parallelism` and tallies its results, writing them
/// to `output` too if given.
pub fn run(query: Query, events: u64, parallelism: usize, output: Option<&PathBuf>) -> anyhow::Result<Arc<Tally>> {
    let env = StreamEnvironment::new();
    env.set_parallelism(parallelism);
    let tally = Arc::new(Tally::default());
    let events = NexmarkSource::new(default_config(), events).stream(&env);
    match query {
        Query::Q0 => finish(q0::q0(&events), output, &tally),
        Query::Q1 => finish(q1::q1(&events), output, &tally),
        Query::Q2 => finish(q2::q2(&events), output, &tally),
        Query::Q3 => finish(q3::q3(&events), output, &tally),
        Query::Q4 => finish(q4::q4(&events), output, &tally),
        Query::Q5 => finish(q5::q5(&events), output, &tally),
        Query::Q6 => finish(q6::q6(&events), output, &tally),
        Query::Q7 => finish(q7::q7(&events), output, &tally),
        Query::Q8 => finish(q8::q8(&events), output, &tally),
        Query::Q9 => finish(q9::q9(&events), output, &tally),
        Query::Q11 => finish(q11::q11(&events), output, &tally),
        Query::Q12 => finish(q12::q12(&events), output, &tally),
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
pub fn generator_alone(events: u64) -> Arc<Tally> {
    let mut bids = 0;
    for event in EventGenerator::new(default_config()).take(events as usize) {
        bids += matches!(std::hint::black_box(event), nexmark::event::Event::Bid(_)) as u64;
    }
    Arc::new(Tally { results: AtomicU64::new(bids), checksum: AtomicU64::new(0) })
}

/// CPU seconds (user + system) this process has used so far, or 0 where `/proc` is missing.
pub fn cpu_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = text.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0 // utime, stime (fields 14, 15) in clock ticks of 1/100 s
}
