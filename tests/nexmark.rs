//! The Nexmark queries of `examples/nexmark/`, run as eddy jobs at parallelism 1, 2 and 3,
//! against a straightforward computation written separately from the pipelines: plain loops
//! over the same events, generated in one sequence (not split by stride as the source does).

#[path = "../examples/nexmark/closed.rs"]
mod closed;
#[path = "common/example_binary.rs"]
mod example_binary;
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
mod rows;
#[path = "../examples/nexmark/source.rs"]
mod source;

use std::collections::{BTreeMap, BTreeSet};
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

/// The first [`EVENTS`] events, generated one after the other.
fn events() -> Vec<Event> {
    EventGenerator::new(config()).take(EVENTS as usize).collect()
}

/// The bids among the first [`EVENTS`] events, generated one after the other.
fn bids() -> Vec<Bid> {
    let events = events().into_iter();
    events
        .filter_map(|event| match event {
            Event::Bid(bid) => Some(bid),
            _ => None,
        })
        .collect()
}

/// The persons among the first [`EVENTS`] events, as rows.
fn persons() -> Vec<rows::PersonRow> {
    let persons = events().into_iter().filter_map(|event| match event {
        Event::Person(person) => Some(person),
        _ => None,
    });
    persons.map(rows::PersonRow::from).collect()
}

/// The auctions among the first [`EVENTS`] events, as rows.
fn auctions() -> Vec<rows::AuctionRow> {
    let auctions = events().into_iter().filter_map(|event| match event {
        Event::Auction(auction) => Some(auction),
        _ => None,
    });
    auctions.map(rows::AuctionRow::from).collect()
}

/// The bids as q0's rows.
fn bid_rows() -> Vec<q0::BidRow> {
    bids().into_iter().map(q0::BidRow::from).collect()
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

/// The start of the `size` ms tumbling window holding `time`.
fn window_start(time: u64, size: u64) -> i64 {
    (time - time % size) as i64
}

#[test]
fn q3_finds_category_10_auctions_of_sellers_in_or_id_and_ca() {
    let sellers: BTreeMap<u64, rows::PersonRow> =
        persons().into_iter().filter(|p| ["or", "id", "ca"].contains(&p.state.as_str())).map(|p| (p.id, p)).collect();
    let mut model = Vec::new();
    for a in auctions() {
        if let (10, Some(p)) = (a.category, sellers.get(&a.seller)) {
            model.push(q3::LocalItem { name: p.name.clone(), city: p.city.clone(), state: p.state.clone(), id: a.id });
        }
    }
    assert!(model.len() > 50, "the join should find some: {}", model.len());
    check(q3::q3, model);
}

/// q9 as plain loops: per auction, the best bid made while it was open (highest price, then
/// earliest, then lowest bidder, then least `extra`).
fn q9_model() -> Vec<q9::WinningBid> {
    let mut by_auction: BTreeMap<u64, Vec<q0::BidRow>> = BTreeMap::new();
    for b in bid_rows() {
        by_auction.entry(b.auction).or_default().push(b);
    }
    let mut model = Vec::new();
    for a in auctions() {
        let mut best: Option<&q0::BidRow> = None;
        for b in by_auction.get(&a.id).into_iter().flatten() {
            if b.date_time < a.date_time || b.date_time > a.expires {
                continue;
            }
            let better = match best {
                None => true,
                Some(c) => {
                    b.price > c.price
                        || (b.price == c.price
                            && (b.date_time < c.date_time
                                || (b.date_time == c.date_time
                                    && (b.bidder < c.bidder || (b.bidder == c.bidder && b.extra < c.extra)))))
                }
            };
            if better {
                best = Some(b);
            }
        }
        if let Some(b) = best {
            model.push(q9::WinningBid {
                auction_row: a.clone(),
                auction: b.auction,
                bidder: b.bidder,
                price: b.price,
                bid_date_time: b.date_time,
                bid_extra: b.extra.clone(),
            });
        }
    }
    model
}

#[test]
fn q9_finds_the_winning_bid_of_every_auction() {
    let model = q9_model();
    assert!(model.len() > 1_000, "most auctions get bids: {}", model.len());
    let row = serde_json::to_value(&model[0]).unwrap();
    for column in
        ["id", "itemName", "dateTime", "expires", "seller", "category", "auction", "price", "bid_dateTime", "bid_extra"]
    {
        assert!(row.get(column).is_some(), "column {column} in {row}");
    }
    check(q9::q9, model);
}

/// The winning bids in order of close (expires, then auction id).
fn closed_in_order() -> Vec<q9::WinningBid> {
    let mut winners = q9_model();
    winners.sort_by_key(|w| (w.auction_row.expires, w.auction));
    winners
}

#[test]
fn q4_averages_the_winning_prices_of_each_category() {
    let mut sums: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut model = Vec::new();
    for w in closed_in_order() {
        let (sum, count) = sums.entry(w.auction_row.category).or_default();
        (*sum, *count) = (*sum + w.price, *count + 1);
        model.push(q4::CategoryAverage { category: w.auction_row.category, avg: *sum as f64 / *count as f64 });
    }
    assert_eq!(sums.len(), 5, "five categories");
    check(q4::q4, model);
}

#[test]
fn q6_averages_each_sellers_last_ten_winning_prices() {
    let mut last: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut model = Vec::new();
    for w in closed_in_order() {
        let prices = last.entry(w.auction_row.seller).or_default();
        prices.push(w.price);
        let window = &prices[prices.len().saturating_sub(10)..];
        let avg = window.iter().sum::<u64>() as f64 / window.len() as f64;
        model.push(q6::SellerAverage { seller: w.auction_row.seller, avg });
    }
    assert!(last.values().any(|p| p.len() > 10), "some seller closes more than 10 auctions");
    check(q6::q6, model);
}

#[test]
fn q5_finds_the_most_bid_on_auctions_of_each_sliding_window() {
    let mut counts: BTreeMap<(i64, u64), u64> = BTreeMap::new();
    for b in bids() {
        let last = window_start(b.date_time, 2_000);
        for k in 0..5 {
            *counts.entry((last - k * 2_000, b.auction as u64)).or_default() += 1;
        }
    }
    let mut max: BTreeMap<i64, u64> = BTreeMap::new();
    for (&(start, _), &n) in &counts {
        let m = max.entry(start).or_default();
        *m = (*m).max(n);
    }
    let mut model = Vec::new();
    for ((start, auction), num) in counts {
        if num == max[&start] {
            model.push(q5::HotItem { auction, num, window_start: start, window_end: start + 10_000 });
        }
    }
    assert!(max.len() > 50, "windows every 2 s over 100 s: {}", max.len());
    check(q5::q5, model);
}

#[test]
fn q8_finds_persons_who_open_an_auction_in_the_window_they_registered_in() {
    let sellers: BTreeSet<(i64, u64)> =
        auctions().iter().map(|a| (window_start(a.date_time, 10_000), a.seller)).collect();
    let mut model = Vec::new();
    for p in persons() {
        let starttime = window_start(p.date_time, 10_000);
        if sellers.contains(&(starttime, p.id)) {
            model.push(q8::NewUser { id: p.id, name: p.name, starttime });
        }
    }
    assert!(model.len() > 20, "new users who sell at once: {}", model.len());
    check(q8::q8, model);
}

#[test]
fn q11_counts_each_bidders_bids_per_session() {
    let mut times: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for b in bids() {
        times.entry(b.bidder as u64).or_default().push(b.date_time as i64);
    }
    let mut model = Vec::new();
    for (bidder, mut times) in times {
        // Sessions: runs of bids at most the gap apart ([t, t + gap) windows that touch merge).
        times.sort();
        let (mut start, mut last, mut count) = (times[0], times[0], 0);
        for t in times {
            if t > last + 10_000 {
                model.push(q11::Session { bidder, bid_count: count, starttime: start, endtime: last + 10_000 });
                (start, count) = (t, 0);
            }
            last = t;
            count += 1;
        }
        model.push(q11::Session { bidder, bid_count: count, starttime: start, endtime: last + 10_000 });
    }
    check(q11::q11, model);
}

/// Processing-time windows depend on the run's speed; what is fixed is that every bid is
/// counted once: the counts of a bidder's windows add up to their bids.
#[test]
fn q12_counts_every_bid_of_every_bidder_once() {
    let mut model: BTreeMap<u64, u64> = BTreeMap::new();
    for b in bids() {
        *model.entry(b.bidder as u64).or_default() += 1;
    }
    for parallelism in 1..=3 {
        let mut totals: BTreeMap<u64, u64> = BTreeMap::new();
        for row in run(q12::q12, parallelism) {
            assert_eq!(row.window_end - row.window_start, 10_000, "10 s windows: {row:?}");
            assert_eq!(row.window_start % 10_000, 0, "aligned to the epoch: {row:?}");
            *totals.entry(row.bidder).or_default() += row.bid_count;
        }
        assert_eq!(totals, model, "bids per bidder at parallelism {parallelism}");
    }
}

/// `--dump-events` writes each event as a JSON object with its type and the Nexmark columns.
#[test]
fn dumped_events_carry_their_type_and_the_nexmark_columns() {
    let keys = |event: Event| -> Vec<String> {
        match serde_json::to_value(rows::EventRow::from(event)).unwrap() {
            serde_json::Value::Object(row) => row.keys().cloned().collect(),
            other => panic!("an event is a JSON object, not {other}"),
        }
    };
    let mut seen = BTreeMap::new();
    for event in events().into_iter().take(50) {
        let kind = match &event {
            Event::Person(_) => "person",
            Event::Auction(_) => "auction",
            Event::Bid(_) => "bid",
        };
        seen.insert(kind, keys(event));
    }
    let columns = |c: &[&str]| -> Vec<String> {
        let mut c: Vec<String> = c.iter().map(|s| s.to_string()).collect();
        c.sort();
        c
    };
    let person = ["type", "id", "name", "emailAddress", "creditCard", "city", "state", "dateTime", "extra"];
    let auction = [
        "type",
        "id",
        "itemName",
        "description",
        "initialBid",
        "reserve",
        "dateTime",
        "expires",
        "seller",
        "category",
        "extra",
    ];
    let bid = ["type", "auction", "bidder", "price", "channel", "url", "dateTime", "extra"];
    assert_eq!(seen["person"], columns(&person));
    assert_eq!(seen["auction"], columns(&auction));
    assert_eq!(seen["bid"], columns(&bid));
    let first = serde_json::to_value(rows::EventRow::from(events().remove(0))).unwrap();
    assert_eq!(first["type"], "person", "the sequence starts with a person");
    assert_eq!(first["dateTime"], source::BASE_TIME_MS + 3_217, "epoch milliseconds");
}

/// The runner's `--dump-events` and `--output` let anyone check a run: q5's rows, computed
/// again from the dumped events alone, are the rows the run wrote.
#[test]
fn the_runner_dumps_its_events_and_writes_rows_that_check_against_them() {
    let dir = tempfile::tempdir().unwrap();
    let (output, dump) = (dir.path().join("q5.jsonl"), dir.path().join("events.jsonl"));
    let run = std::process::Command::new(example_binary::path("nexmark"))
        .args(["--query", "q5", "--events", "40000", "--parallelism", "2", "--output"])
        .arg(&output)
        .arg("--dump-events")
        .arg(&dump)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout} {}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("40000 events at parallelism 2"), "{stdout}");
    let lines = |path: &std::path::Path| -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    };
    let events = lines(&dump);
    assert_eq!(events.len(), 40_000, "every event, one a line");
    let mut counts: BTreeMap<(i64, u64), u64> = BTreeMap::new();
    for bid in events.iter().filter(|e| e["type"] == "bid") {
        let (time, auction) = (bid["dateTime"].as_u64().unwrap(), bid["auction"].as_u64().unwrap());
        for k in 0..5 {
            *counts.entry((window_start(time, 2_000) - k * 2_000, auction)).or_default() += 1;
        }
    }
    let mut max: BTreeMap<i64, u64> = BTreeMap::new();
    for (&(start, _), &n) in &counts {
        let m = max.entry(start).or_default();
        *m = (*m).max(n);
    }
    let mut model: Vec<(u64, u64, i64, i64)> = counts
        .into_iter()
        .filter(|((start, _), num)| *num == max[start])
        .map(|((start, auction), num)| (auction, num, start, start + 10_000))
        .collect();
    let mut rows: Vec<(u64, u64, i64, i64)> = lines(&output)
        .iter()
        .map(|r| {
            let n = |c: &str| r[c].as_i64().unwrap_or_else(|| panic!("column {c} in {r}"));
            (n("auction") as u64, n("num") as u64, n("window_start"), n("window_end"))
        })
        .collect();
    model.sort();
    rows.sort();
    assert!(!rows.is_empty());
    assert_eq!(rows, model, "the rows the run wrote, against the dumped events");
    assert!(stdout.contains(&format!("{} results", model.len())), "{stdout}");
}

#[test]
fn an_unwritable_dump_path_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no such dir").join("events.jsonl");
    let run = std::process::Command::new(example_binary::path("nexmark"))
        .args(["--query", "q0", "--events", "1000", "--dump-events"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("--dump-events"), "{stderr}");
    assert!(run.stdout.is_empty(), "the run went ahead: {}", String::from_utf8_lossy(&run.stdout));
}
