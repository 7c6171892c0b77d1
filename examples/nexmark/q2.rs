//! Nexmark q2, selection: the bids on a fixed set of auctions (every 123rd auction id).
//! A filter that drops almost every bid, so it measures the source and the filter.
//!
//! ```sql
//! SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0;
//! ```

use eddy::prelude::*;
use nexmark::event::Event;
use serde::{Deserialize, Serialize};

use crate::source::bids;

/// The auctions q2 selects are those whose id is a multiple of this.
pub const AUCTION_MODULUS: u64 = 123;

/// A selected bid: its auction and price.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AuctionPrice {
    pub auction: u64,
    pub price: u64,
}

/// q2 over `events`.
pub fn q2(events: &DataStream<Event>) -> DataStream<AuctionPrice> {
    bids(events)
        .filter(|bid| bid.auction as u64 % AUCTION_MODULUS == 0)
        .map(|bid| AuctionPrice { auction: bid.auction as u64, price: bid.price as u64 })
}
