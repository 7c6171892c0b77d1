//! Nexmark q4, average price per category: the average winning price of the closed auctions
//! of each category, updated as each auction closes.
//!
//! ```sql
//! SELECT Q.category, AVG(Q.final) as avg
//! FROM (
//!   SELECT MAX(B.price) AS final, A.category
//!   FROM auction A, bid B
//!   WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
//!   GROUP BY A.id, A.category
//! ) Q
//! GROUP BY Q.category;
//! ```
//!
//! The inner query is q9's winning bid per auction (its price is the `MAX`), emitted when the
//! auction closes. Keyed by category, each closed auction then adds its price to a running
//! sum and count, in order of close ([`closed`](crate::closed)), and the category's new
//! average goes out: the SQL's result as a stream of updates, the last per category being the
//! final one. (The SQL's `AVG` of integer prices is taken as a float here.)

use std::hash::{Hash, Hasher};

use eddy::prelude::*;
use nexmark::event::Event;
use serde::{Deserialize, Serialize};

use crate::closed::{hash_avg, hold, release};
use crate::q9::{winning_bids, WinningBid};

/// A category's average winning price, after one more of its auctions closed.
#[derive(Debug, Clone, PartialEq, PartialOrd, Serialize, Deserialize)]
pub struct CategoryAverage {
    pub category: u64,
    pub avg: f64,
}

impl Hash for CategoryAverage {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_avg(self.category, self.avg, state);
    }
}

/// q4 over `events`.
pub fn q4(events: &DataStream<Event>) -> DataStream<CategoryAverage> {
    winning_bids(events, "q4-winning-bids").key_by(|w| w.auction_row.category).process(RunningAverage).uid("q4-average")
}

/// A category's running sum and count of winning prices.
#[derive(Debug, Clone, Copy)]
struct RunningAverage;

fn sum_and_count() -> ValueStateDescriptor<(u64, u64)> {
    ValueStateDescriptor::new("sum-and-count")
}

impl KeyedProcessFunction<u64, WinningBid, CategoryAverage> for RunningAverage {
    fn process_element(
        &mut self,
        bid: &WinningBid,
        ctx: &mut KeyedContext<'_, u64, CategoryAverage>,
    ) -> Result<(), BoxError> {
        hold(bid, ctx)
    }

    fn on_timer(&mut self, at: Timestamp, ctx: &mut KeyedContext<'_, u64, CategoryAverage>) -> Result<(), BoxError> {
        let category = *ctx.current_key();
        let state = ctx.state().value_state(&sum_and_count())?;
        let (mut sum, mut count) = state.value()?.unwrap_or_default();
        for price in release(at, ctx)? {
            (sum, count) = (sum + price, count + 1);
            ctx.collect(CategoryAverage { category, avg: sum as f64 / count as f64 });
        }
        state.update((sum, count))?;
        Ok(())
    }
}
