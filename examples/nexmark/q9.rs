//! Nexmark q9, winning bids: for every auction, the highest bid made while it was open
//! (between its `dateTime` and its `expires`), the earliest of equal highest bids.
//!
//! ```sql
//! SELECT id, itemName, description, initialBid, reserve, dateTime, expires, seller, category, extra,
//!        auction, bidder, price, bid_dateTime, bid_extra
//! FROM (
//!   SELECT A.*, B.auction, B.bidder, B.price, B.dateTime AS bid_dateTime, B.extra AS bid_extra,
//!     ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.dateTime ASC) AS rownum
//!   FROM auction A, bid B
//!   WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
//! )
//! WHERE rownum <= 1;
//! ```
//!
//! Auctions and bids are keyed by auction into one keyed co-process function that keeps the
//! auction and its best bid so far (a bid reads only when the auction is open and the best
//! bid, not the auction's row), and answers when the auction closes: an event-time timer
//! at `expires` (once the watermark passes it no bid of the auction's time can still come)
//! emits the winner, at `expires`, and clears the key. A bid that comes before its auction
//! (another subtask's stride may be behind) waits in a list until the auction comes or the
//! watermark passes the bid's time: then no auction it could belong to can still come, since
//! an auction opens no later than its bids. Ties of price and time (which the SQL leaves to
//! chance) go to the lower bidder id, then the lesser `extra`, so every run agrees. An auction
//! without bids has no row (an inner join), and `reserve` is not checked, as in the SQL.
//!
//! q4 and q6 build on these winning bids.

use std::cmp::Reverse;

use eddy::prelude::*;
use nexmark::event::Event;
use serde::{Deserialize, Serialize};

use crate::q0::BidRow;
use crate::rows::AuctionRow;
use crate::source::{auctions, bids};

/// An auction and its winning bid.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WinningBid {
    #[serde(flatten)]
    pub auction_row: AuctionRow,
    pub auction: u64,
    pub bidder: u64,
    pub price: u64,
    #[serde(rename = "bid_dateTime")]
    pub bid_date_time: u64,
    pub bid_extra: String,
}

/// q9 over `events`.
pub fn q9(events: &DataStream<Event>) -> DataStream<WinningBid> {
    winning_bids(events, "q9-winning-bids")
}

/// The winning bid of every auction, at its `expires`, from the operator with id `uid`.
pub fn winning_bids(events: &DataStream<Event>, uid: &str) -> DataStream<WinningBid> {
    let bids = bids(events).map(BidRow::from);
    auctions(events).connect(&bids).key_by(|a| a.id, |b| b.auction).process(Winner).uid(uid)
}

/// When an auction is open: its `dateTime` and `expires`, all a bid is checked against (kept
/// apart from the auction's row, which only its close reads).
type Open = (u64, u64);

/// The order of bids: the higher price wins, then the earlier, then the lower bidder, then
/// the lesser `extra`.
pub fn rank(bid: &BidRow) -> impl Ord + '_ {
    (bid.price, Reverse(bid.date_time), Reverse(bid.bidder), Reverse(&bid.extra))
}

/// Keeps each auction's best bid and emits it when the auction closes.
#[derive(Debug, Clone, Copy)]
struct Winner;

fn open_auction() -> ValueStateDescriptor<AuctionRow> {
    ValueStateDescriptor::new("auction")
}

fn open_between() -> ValueStateDescriptor<Open> {
    ValueStateDescriptor::new("open-between")
}

fn best_bid() -> ValueStateDescriptor<BidRow> {
    ValueStateDescriptor::new("best-bid")
}

fn early_bids() -> ListStateDescriptor<BidRow> {
    ListStateDescriptor::new("bids-before-their-auction")
}

/// Whether `bid` was made while the auction was `open` and ranks above `best`.
fn wins((opened, expires): Open, best: Option<&BidRow>, bid: &BidRow) -> bool {
    (opened..=expires).contains(&bid.date_time) && best.is_none_or(|best| rank(bid) > rank(best))
}

impl KeyedCoProcessFunction<u64, AuctionRow, BidRow, WinningBid> for Winner {
    fn process_element1(
        &mut self,
        auction: &AuctionRow,
        ctx: &mut KeyedContext<'_, u64, WinningBid>,
    ) -> Result<(), BoxError> {
        let open = (auction.date_time, auction.expires);
        let early = ctx.state().list_state(&early_bids())?;
        let best = early
            .get()?
            .into_iter()
            .fold(None, |best, bid| if wins(open, best.as_ref(), &bid) { Some(bid) } else { best });
        early.clear()?;
        if let Some(best) = best {
            ctx.state().value_state(&best_bid())?.update(best)?;
        }
        ctx.state().value_state(&open_between())?.update(open)?;
        ctx.state().value_state(&open_auction())?.update(auction)?;
        ctx.register_event_time_timer(auction.expires as i64)?;
        Ok(())
    }

    fn process_element2(&mut self, bid: &BidRow, ctx: &mut KeyedContext<'_, u64, WinningBid>) -> Result<(), BoxError> {
        match ctx.state().value_state(&open_between())?.value()? {
            Some(open) => {
                let best = ctx.state().value_state(&best_bid())?;
                if wins(open, best.value()?.as_ref(), bid) {
                    best.update(bid)?;
                }
            }
            None => {
                ctx.state().list_state(&early_bids())?.add(bid)?;
                ctx.register_event_time_timer(bid.date_time as i64)?;
            }
        }
        Ok(())
    }

    fn on_timer(&mut self, at: Timestamp, ctx: &mut KeyedContext<'_, u64, WinningBid>) -> Result<(), BoxError> {
        let between = ctx.state().value_state(&open_between())?;
        match between.value()? {
            Some((_, expires)) if at >= expires as i64 => {
                let auction = ctx.state().value_state(&open_auction())?;
                let open = auction.value()?.ok_or("an open auction's row is missing")?;
                let best = ctx.state().value_state(&best_bid())?;
                if let Some(bid) = best.value()? {
                    ctx.collect(WinningBid {
                        auction_row: open,
                        auction: bid.auction,
                        bidder: bid.bidder,
                        price: bid.price,
                        bid_date_time: bid.date_time,
                        bid_extra: bid.extra,
                    });
                }
                best.clear()?;
                auction.clear()?;
                between.clear()?;
            }
            Some(_) => {}
            // No auction came for the bids up to `at`: none can come now.
            None => {
                let early = ctx.state().list_state(&early_bids())?;
                let left: Vec<BidRow> = early.get()?.into_iter().filter(|b| b.date_time as i64 > at).collect();
                early.update(left)?;
            }
        }
        Ok(())
    }
}
