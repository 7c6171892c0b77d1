//! Nexmark q6, average selling price by seller: for each seller, the average winning price of
//! their last 10 closed auctions, updated as each of their auctions closes.
//!
//! ```sql
//! SELECT Q.seller, AVG(Q.final) OVER
//!   (PARTITION BY Q.seller ORDER BY Q.dateTime ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) as avg
//! FROM (
//!   SELECT MAX(B.price) AS final, A.seller, B.dateTime
//!   FROM auction AS A, bid AS B
//!   WHERE A.id = B.auction and B.dateTime between A.dateTime and A.expires
//!   GROUP BY A.id, A.seller
//! ) AS Q;
//! ```
//!
//! The inner query is q9's winning bid per auction. The SQL (which Flink's suite marks as not
//! supported) orders by a `dateTime` it does not group by, and its frame holds 11 rows; eddy
//! keeps to the question as Nexmark first put it (Beam's Query6): the last 10 auctions to
//! close, in order of close ([`closed`](crate::closed)). Keyed by seller, each closed auction's
//! price joins the seller's last 10 in keyed state and the new average goes out.

use std::hash::{Hash, Hasher};

use eddy::prelude::*;
use nexmark::event::Event;
use serde::{Deserialize, Serialize};

use crate::closed::{hash_avg, hold, release};
use crate::q9::{winning_bids, WinningBid};

/// How many of a seller's closed auctions the average covers.
pub const LAST: usize = 10;

/// A seller's average winning price over their last [`LAST`] closed auctions.
#[derive(Debug, Clone, PartialEq, PartialOrd, Serialize, Deserialize)]
pub struct SellerAverage {
    pub seller: u64,
    pub avg: f64,
}

impl Hash for SellerAverage {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_avg(self.seller, self.avg, state);
    }
}

/// q6 over `events`.
pub fn q6(events: &DataStream<Event>) -> DataStream<SellerAverage> {
    winning_bids(events, "q6-winning-bids").key_by(|w| w.auction_row.seller).process(LastTen).uid("q6-average")
}

/// A seller's last [`LAST`] winning prices.
#[derive(Debug, Clone, Copy)]
struct LastTen;

fn last_prices() -> ValueStateDescriptor<Vec<u64>> {
    ValueStateDescriptor::new("last-prices")
}

impl KeyedProcessFunction<u64, WinningBid, SellerAverage> for LastTen {
    fn process_element(
        &mut self,
        bid: &WinningBid,
        ctx: &mut KeyedContext<'_, u64, SellerAverage>,
    ) -> Result<(), BoxError> {
        hold(bid, ctx)
    }

    fn on_timer(&mut self, at: Timestamp, ctx: &mut KeyedContext<'_, u64, SellerAverage>) -> Result<(), BoxError> {
        let seller = *ctx.current_key();
        let state = ctx.state().value_state(&last_prices())?;
        let mut prices = state.value()?.unwrap_or_default();
        for price in release(at, ctx)? {
            if prices.len() == LAST {
                prices.remove(0);
            }
            prices.push(price);
            let avg = prices.iter().sum::<u64>() as f64 / prices.len() as f64;
            ctx.collect(SellerAverage { seller, avg });
        }
        state.update(prices)?;
        Ok(())
    }
}
