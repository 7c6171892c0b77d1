//! Nexmark q12, processing-time windows: how many bids each bidder made in each 10 s of the
//! wall clock.
//!
//! ```sql
//! SELECT B.bidder, count(*) as bid_count, window_start, window_end
//! FROM TABLE(TUMBLE(TABLE (SELECT *, PROCTIME() as p_time FROM bid), DESCRIPTOR(p_time), INTERVAL '10' SECOND))
//! GROUP BY B.bidder, window_start, window_end;
//! ```
//!
//! A tumbling processing-time window per bidder: a bid counts in the window of the moment
//! the window operator takes it, so which window a bid lands in depends on how fast the run
//! goes (and the results differ between runs); only the counts summed over all windows, the
//! bids per bidder, are fixed. When the input ends every open window fires.

use std::time::Duration;

use eddy::prelude::*;
use nexmark::event::Event;
use serde::{Deserialize, Serialize};

use crate::source::bids;

/// The length of q12's windows, in processing time.
pub const WINDOW: Duration = Duration::from_secs(10);

/// A bidder's bids in one window of processing time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BidderCount {
    pub bidder: u64,
    pub bid_count: u64,
    /// The window's start, epoch milliseconds of the wall clock.
    pub window_start: i64,
    /// The window's end, epoch milliseconds of the wall clock.
    pub window_end: i64,
}

/// q12 over `events`.
pub fn q12(events: &DataStream<Event>) -> DataStream<BidderCount> {
    bids(events)
        .key_by(|bid| bid.bidder as u64)
        .window(TumblingProcessingTimeWindows::of(WINDOW))
        .aggregate_with(Count, |&bidder, window, bid_count| BidderCount {
            bidder,
            bid_count,
            window_start: window.start,
            window_end: window.end,
        })
        .uid("q12-counts")
}
