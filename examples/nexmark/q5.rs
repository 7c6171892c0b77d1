//! Nexmark q5, hot items: every 2 s, the auctions with the most bids in the last 10 s (all of
//! them when several tie).
//!
//! ```sql
//! SELECT AuctionBids.auction, AuctionBids.num
//! FROM (
//!   SELECT auction, count(*) AS num, window_start AS starttime, window_end AS endtime
//!   FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
//!   GROUP BY auction, window_start, window_end
//! ) AS AuctionBids
//! JOIN (
//!   SELECT max(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime
//!   FROM (
//!     SELECT count(*) AS num, window_start AS starttime, window_end AS endtime
//!     FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
//!     GROUP BY auction, window_start, window_end
//!   ) AS CountBids
//!   GROUP BY CountBids.starttime, CountBids.endtime
//! ) AS MaxBids
//! ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime
//!    AND AuctionBids.num >= MaxBids.maxn;
//! ```
//!
//! Two windows: a sliding window counts each auction's bids (pre-aggregated per 2 s pane, so
//! a bid costs one update, not five), and each count goes out at its window's last
//! millisecond, so a tumbling 2 s window over all counts holds exactly one sliding window's;
//! its [`TopN`] keeps the highest count and its ties, merging the partial top lists of the
//! upstream subtasks. The rows carry `window_start`/`window_end` of the sliding window.

use std::time::Duration;

use eddy::prelude::*;
use nexmark::event::Event;
use serde::{Deserialize, Serialize};

use crate::source::bids;

/// The sliding window's length.
pub const SIZE: Duration = Duration::from_secs(10);
/// How often the sliding window moves.
pub const SLIDE: Duration = Duration::from_secs(2);

/// An auction's bid count in one window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HotItem {
    pub auction: u64,
    pub num: u64,
    /// The window's start, epoch milliseconds (inclusive).
    pub window_start: i64,
    /// The window's end, epoch milliseconds (exclusive).
    pub window_end: i64,
}

/// q5 over `events`.
pub fn q5(events: &DataStream<Event>) -> DataStream<HotItem> {
    bids(events)
        .key_by(|bid| bid.auction as u64)
        .window(SlidingEventTimeWindows::of(SIZE, SLIDE))
        .aggregate_with(Count, |&auction, window, num| HotItem {
            auction,
            num,
            window_start: window.start,
            window_end: window.end,
        })
        .uid("q5-counts")
        .key_by(|_| ())
        .window(TumblingEventTimeWindows::of(SLIDE))
        .aggregate(TopN::with_ties(1, |item: &HotItem| item.num))
        .uid("q5-hottest")
        .flat_map(|hottest| hottest)
}
