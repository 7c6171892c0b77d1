//! The Nexmark queries of `examples/nexmark/`, run as eddy jobs at parallelism 1, 2 and 3,
//! against a straightforward computation written separately from the pipelines: plain loops
//! over the same events, generated in one sequence (not split by stride as the source does).

#[path = "../examples/nexmark/q0.rs"]
mod q0;
#[path = "../examples/nexmark/q1.rs"]
mod q1;
#[path = "../examples/nexmark/q2.rs"]
mod q2;
#[path = "../examples/nexmark/q7.rs"]
mod q7;
#[path = "../examples/nexmark/source.rs"]
mod source;

use std::collections::BTreeMap;
use std::time::Duration;

use eddy::prelude::*;
use nexmark::config::NexmarkConfig;
use nexmark::event::{Bid, Event};
use nexmark::EventGenerator;

const EVENTS: u64 = 100_000;

/// 1,000 events per second of event time, so 100,000 events span 100 s (11 windows of q7,
/// the first and last partial: the start is not on a 10 s boundary).
fn config() -> NexmarkConfig {
    let base_time = source::BASE_TIME_MS + 3_217;
    NexmarkConfig { base_time, first_rate: 1_000, next_rate: 1_000, ..source::default_config() }
}

/// The bids among the first [`EVENTS`] events, generated one after the other.
fn bids() -> Vec<Bid> {
    let events = EventGenerator::new(config()).take(EVENTS as usize);
    events
        .filter_map(|event| match event {
            Event::Bid(bid) => Some(bid),
            _ => None,
        })
        .collect()
}

/// Runs `query` over the events at `parallelism` and returns its results, sorted.
fn run<R, Q>(query: Q, parallelism: usize) -> Vec<R>
where
    R: Data + PartialOrd,
    Q: Fn(&DataStream<Event>) -> DataStream<R>,
{
    let env = StreamEnvironment::new();
    env.set_parallelism(parallelism);
    let events = source::NexmarkSource::new(config(), EVENTS).stream(&env);
    let results = query(&events).collect();
    env.execute("nexmark").unwrap().wait().unwrap();
    let mut results = results.take();
    results.sort_by(|a, b| a.partial_cmp(b).unwrap());
    results
}

fn check<R, Q>(query: Q, mut model: Vec<R>)
where
    R: Data + PartialOrd + std::fmt::Debug,
    Q: Fn(&DataStream<Event>) -> DataStream<R> + Copy,
{
    model.sort_by(|a, b| a.partial_cmp(b).unwrap());
    for parallelism in 1..=3 {
        let results = run(query, parallelism);
        assert_eq!(results.len(), model.len(), "result count at parallelism {parallelism}");
        assert!(results == model, "results differ from the model at parallelism {parallelism}");
    }
}

#[test]
fn q0_passes_every_bid_through() {
    let model: Vec<q0::BidRow> = bids()
        .into_iter()
        .map(|b| q0::BidRow {
            auction: b.auction as u64,
            bidder: b.bidder as u64,
            price: b.price as u64,
            date_time: b.date_time,
            extra: b.extra,
        })
        .collect();
    assert_eq!(model.len(), 92_000, "46 of every 50 events are bids");
    check(q0::q0, model);
}

#[test]
fn q1_converts_every_price_to_euros() {
    let model: Vec<q1::EuroBid> = bids()
        .into_iter()
        .map(|b| q1::EuroBid {
            auction: b.auction as u64,
            bidder: b.bidder as u64,
            price: 0.908 * b.price as f64,
            date_time: b.date_time,
            extra: b.extra,
        })
        .collect();
    check(q1::q1, model);
}

#[test]
fn q2_selects_the_bids_on_every_123rd_auction() {
    let mut model = Vec::new();
    for b in bids() {
        if b.auction % 123 == 0 {
            model.push(q2::AuctionPrice { auction: b.auction as u64, price: b.price as u64 });
        }
    }
    assert!(model.len() > 100, "the selection should not be empty: {}", model.len());
    check(q2::q2, model);
}

/// q7 as plain loops: each 10 s window's highest price, and every bid at it.
fn q7_model() -> Vec<q7::HighestBid> {
    let bids = bids();
    let window_of = |b: &Bid| {
        let start = b.date_time - b.date_time % 10_000;
        (start as i64, start as i64 + 10_000)
    };
    let mut highest: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    for b in &bids {
        let max = highest.entry(window_of(b)).or_insert(b.price);
        *max = (*max).max(b.price);
    }
    assert_eq!(highest.len(), 11, "100 s of event time from an offset start");
    let mut model = Vec::new();
    for b in bids {
        let (window_start, window_end) = window_of(&b);
        if b.price == highest[&(window_start, window_end)] {
            model.push(q7::HighestBid {
                auction: b.auction as u64,
                price: b.price as u64,
                bidder: b.bidder as u64,
                date_time: b.date_time,
                extra: b.extra,
                window_start,
                window_end,
            });
        }
    }
    model
}

#[test]
fn q7_finds_the_highest_bids_of_each_10_second_window() {
    let model = q7_model();
    let columns: Vec<String> = match serde_json::to_value(&model[0]).unwrap() {
        serde_json::Value::Object(row) => row.keys().cloned().collect(),
        other => panic!("a row is a JSON object, not {other}"),
    };
    let sql = ["auction", "bidder", "dateTime", "extra", "price", "window_end", "window_start"];
    assert_eq!(columns, sql, "the columns of the Nexmark SQL, plus the window");
    check(q7::q7, model);
}

/// The source's strides go through savepoints: q7 stopped at parallelism 2, restored at 3,
/// stopped again and restored at 1 gives the results of one run. A bid in fifty waits a
/// millisecond, so the stops land while events are still being generated.
#[test]
fn q7_through_stops_at_2_3_and_1_gives_the_results_of_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let (mut all, mut restore, mut stops) = (Vec::new(), None, 0);
    for (run, parallelism) in [2, 3, 1].into_iter().enumerate() {
        let env = StreamEnvironment::new();
        env.set_parallelism(parallelism);
        env.enable_checkpointing(CheckpointConfig::on_request());
        if let Some(path) = &restore {
            env.restore_from(path);
        }
        let events = source::NexmarkSource::new(config(), EVENTS).stream(&env).map(|event: Event| {
            if matches!(&event, Event::Bid(bid) if bid.date_time % 50 == 0) {
                std::thread::sleep(Duration::from_millis(1));
            }
            event
        });
        let results = q7::q7(&events).collect();
        let handle = env.execute("nexmark q7 rescaled").unwrap();
        if run < 2 {
            std::thread::sleep(Duration::from_millis(300));
            let savepoint = handle.stop_with_savepoint(dir.path().join(format!("savepoint-{run}")), false);
            restore = Some(savepoint.expect("stopped while events were still being generated"));
            stops += 1;
        }
        handle.wait().unwrap();
        all.extend(results.take());
    }
    assert_eq!(stops, 2);
    let mut model = q7_model();
    model.sort_by(|a, b| a.partial_cmp(b).unwrap());
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(all.len(), model.len(), "results through stops at 2, 3 and 1");
    let missing: Vec<_> = model.iter().filter(|r| !all.contains(r)).take(5).collect();
    let extra: Vec<_> = all.iter().filter(|r| !model.contains(r)).take(5).collect();
    assert!(
        all == model,
        "results through stops at 2, 3 and 1 differ from one run's: missing {missing:?}, extra {extra:?}"
    );
}
