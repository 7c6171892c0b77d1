//! Nexmark q7, highest bid: for each 10 s tumbling window of event time, the bids with the
//! highest price in it (every one of them when several tie).
//!
//! ```sql
//! SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra
//! FROM bid B
//! JOIN (SELECT MAX(price) AS maxprice, window_end as dateTime
//!       FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
//!       GROUP BY window_start, window_end) B1
//! ON B.price = B1.maxprice
//! WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10' SECOND AND B1.dateTime;
//! ```
//!
//! The SQL finds each window's maximum and joins it back with the bids. eddy needs no join:
//! one window aggregate keeps, per window, the highest price so far and the bids at that
//! price. A window holds the bids of `[start, end)`, as Beam's original q7 and Flink's windows
//! do; the SQL's `BETWEEN` would also take a bid at exactly `end` that happens to equal the
//! maximum of the window before, which is an artefact of the join, not of the question.
//!
//! The windows cover all bids (Flink's `windowAll`), written as a window keyed by `()`.
//! Event-time windows pre-aggregate in every upstream subtask, so each of them sends one
//! partial result per window to the single keyed subtask, not every bid: Flink's local/global
//! aggregation.

use std::time::Duration;

use eddy::prelude::*;
use nexmark::event::Event;
use serde::{Deserialize, Serialize};

use crate::q0::BidRow;
use crate::source::bids;

/// The length of q7's tumbling windows.
pub const WINDOW: Duration = Duration::from_secs(10);

/// A bid at the highest price of its window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HighestBid {
    pub auction: u64,
    pub price: u64,
    pub bidder: u64,
    #[serde(rename = "dateTime")]
    pub date_time: u64,
    pub extra: String,
    /// The window's start, epoch milliseconds (inclusive).
    pub window_start: i64,
    /// The window's end, epoch milliseconds (exclusive).
    pub window_end: i64,
}

/// The highest price seen and the bids at it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Highest {
    price: u64,
    bids: Vec<BidRow>,
}

/// Keeps the bids at the highest price: an aggregate, so windows never hold all their bids.
#[derive(Debug, Clone, Copy)]
pub struct HighestBids;

impl AggregateFunction<BidRow> for HighestBids {
    type Acc = Highest;
    type Out = Vec<BidRow>;

    fn create_accumulator(&self) -> Highest {
        Highest::default()
    }

    fn add(&self, acc: &mut Highest, bid: BidRow) {
        if acc.bids.is_empty() || bid.price > acc.price {
            acc.price = bid.price;
            acc.bids.clear();
        }
        if bid.price == acc.price {
            acc.bids.push(bid);
        }
    }

    fn get_result(&self, acc: Highest) -> Vec<BidRow> {
        acc.bids
    }

    fn merge(&self, acc: &mut Highest, other: Highest) {
        if acc.bids.is_empty() || (!other.bids.is_empty() && other.price > acc.price) {
            *acc = other;
        } else if other.price == acc.price {
            acc.bids.extend(other.bids);
        }
    }
}

/// q7 over `events`.
pub fn q7(events: &DataStream<Event>) -> DataStream<HighestBid> {
    bids(events)
        .map(BidRow::from)
        .key_by(|_| ())
        .window(TumblingEventTimeWindows::of(WINDOW))
        .aggregate_with(HighestBids, |_, window, bids| {
            let row = |bid: BidRow| HighestBid {
                auction: bid.auction,
                price: bid.price,
                bidder: bid.bidder,
                date_time: bid.date_time,
                extra: bid.extra,
                window_start: window.start,
                window_end: window.end,
            };
            bids.into_iter().map(row).collect::<Vec<_>>()
        })
        .uid("q7-highest-bids")
        .flat_map(|rows| rows)
}
