//! Nexmark q1, currency conversion: every bid with its price turned from dollars into euros.
//! A stateless map, so it runs at q0's speed plus one multiplication.
//!
//! ```sql
//! SELECT auction, bidder, 0.908 * price as price, dateTime, extra FROM bid;
//! ```

use std::hash::{Hash, Hasher};

use eddy::prelude::*;
use nexmark::event::{Bid, Event};
use serde::{Deserialize, Serialize};

use crate::source::bids;

/// Euros per dollar, as the Nexmark SQL has it.
pub const DOLLAR_TO_EURO: f64 = 0.908;

/// A bid with its price in euros.
#[derive(Debug, Clone, PartialEq, PartialOrd, Serialize, Deserialize)]
pub struct EuroBid {
    pub auction: u64,
    pub bidder: u64,
    pub price: f64,
    #[serde(rename = "dateTime")]
    pub date_time: u64,
    pub extra: String,
}

/// Hashes the price by its bits: the runner's checksum needs `Hash`, which `f64` lacks.
impl Hash for EuroBid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.auction, self.bidder, self.price.to_bits(), self.date_time, &self.extra).hash(state);
    }
}

/// The price of `bid` in euros.
pub fn in_euros(bid: Bid) -> EuroBid {
    EuroBid {
        auction: bid.auction as u64,
        bidder: bid.bidder as u64,
        price: DOLLAR_TO_EURO * bid.price as f64,
        date_time: bid.date_time,
        extra: bid.extra,
    }
}

/// q1 over `events`.
pub fn q1(events: &DataStream<Event>) -> DataStream<EuroBid> {
    bids(events).map(in_euros)
}
