//! Closed auctions in the order they closed. q9's winning bids reach a keyed stage from
//! several subtasks in no fixed order; q4 and q6 fold them in order (their running averages
//! depend on it), so each key holds the winning bids it receives until the watermark passes
//! their close (`expires`), then takes them in order of close and auction id. Every run, at
//! every parallelism, folds the same sequence.

use std::hash::{Hash, Hasher};

use eddy::prelude::*;

use crate::q9::WinningBid;

/// The winning prices held, by close and auction id.
fn held() -> MapStateDescriptor<(u64, u64), u64> {
    MapStateDescriptor::new("closed-auctions")
}

/// Holds `bid`'s price until the watermark passes its auction's close.
pub fn hold<K, O>(bid: &WinningBid, ctx: &mut KeyedContext<'_, K, O>) -> Result<(), BoxError> {
    let close = bid.auction_row.expires;
    ctx.state().map_state(&held())?.put((close, bid.auction), bid.price)?;
    ctx.register_event_time_timer(close as i64)?;
    Ok(())
}

/// The held prices of auctions that closed at `at` or before, in order of close and auction id.
pub fn release<K, O>(at: Timestamp, ctx: &mut KeyedContext<'_, K, O>) -> Result<Vec<u64>, BoxError> {
    let held = ctx.state().map_state(&held())?;
    let mut due = Vec::new();
    for entry in held.entries()? {
        let ((close, auction), price) = entry?;
        if close as i64 <= at {
            due.push(((close, auction), price));
        }
    }
    due.sort_by_key(|(order, _)| *order);
    for (order, _) in &due {
        held.remove(order)?;
    }
    Ok(due.into_iter().map(|(_, price)| price).collect())
}

/// An average over prices, hashed by its bits (the runner's checksum needs `Hash`).
pub fn hash_avg<H: Hasher>(key: u64, avg: f64, state: &mut H) {
    (key, avg.to_bits()).hash(state);
}
