//! Closed auctions in the order they closed. q9's winning bids reach a keyed stage from
//! several subtasks in no fixed order; q4 and q6 fold them in order (their running averages
//! depend on it), so each key holds the winning bids it receives until the watermark passes
//! their close (`expires`), then takes them in order of close and auction id. Every run, at
//! every parallelism, folds the same sequence.

use std::hash::{Hash, Hasher};

use eddy::prelude::*;

use crate::q9::WinningBid;

/// The winning prices held, by close: each close's auction ids and prices.
fn held() -> MapStateDescriptor<u64, Vec<(u64, u64)>> {
    MapStateDescriptor::new("closed-auctions-by-close")
}

/// Holds `bid`'s price until the watermark passes its auction's close.
pub fn hold<K, O>(bid: &WinningBid, ctx: &mut KeyedContext<'_, K, O>) -> Result<(), BoxError> {
    let close = bid.auction_row.expires;
    let held = ctx.state().map_state(&held())?;
    let mut bids = held.get(&close)?.unwrap_or_default();
    match bids.iter_mut().find(|(auction, _)| *auction == bid.auction) {
        Some(same) => same.1 = bid.price,
        None => bids.push((bid.auction, bid.price)),
    }
    held.put(close, bids)?;
    ctx.register_event_time_timer(close as i64)?;
    Ok(())
}

/// Takes the prices held for the auctions that closed at `at`, in order of auction id. Every
/// held bid has a timer at its close, and timers fire in order of time, so the bids of earlier
/// closes were taken by their own timers: a timer reads only its own close's bids, not every
/// bid the key holds (which made q4 and q6 pay for all held bids on every timer).
pub fn release<K, O>(at: Timestamp, ctx: &mut KeyedContext<'_, K, O>) -> Result<Vec<u64>, BoxError> {
    let held = ctx.state().map_state(&held())?;
    let Ok(close) = u64::try_from(at) else { return Ok(Vec::new()) };
    let Some(mut bids) = held.get(&close)? else { return Ok(Vec::new()) };
    held.remove(&close)?;
    bids.sort_unstable_by_key(|(auction, _)| *auction);
    Ok(bids.into_iter().map(|(_, price)| price).collect())
}

/// An average over prices, hashed by its bits (the runner's checksum needs `Hash`).
pub fn hash_avg<H: Hasher>(key: u64, avg: f64, state: &mut H) {
    (key, avg.to_bits()).hash(state);
}
