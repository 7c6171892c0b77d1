//! Nexmark q0, pass-through: every bid, unchanged. It measures what every other query pays
//! anyway (generating events, picking out the bids, a sink), so it is the ceiling for the rest.
//!
//! ```sql
//! SELECT auction, bidder, price, dateTime, extra FROM bid;
//! ```

use eddy::prelude::*;
use nexmark::event::{Bid, Event};
use serde::{Deserialize, Serialize};

use crate::source::bids;

/// One bid, with the columns q0 selects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BidRow {
    pub auction: u64,
    pub bidder: u64,
    pub price: u64,
    #[serde(rename = "dateTime")]
    pub date_time: u64,
    pub extra: String,
}

impl From<Bid> for BidRow {
    fn from(bid: Bid) -> Self {
        BidRow {
            auction: bid.auction as u64,
            bidder: bid.bidder as u64,
            price: bid.price as u64,
            date_time: bid.date_time,
            extra: bid.extra,
        }
    }
}

/// q0 over `events`.
pub fn q0(events: &DataStream<Event>) -> DataStream<BidRow> {
    bids(events).map(BidRow::from)
}
