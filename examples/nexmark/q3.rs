//! Nexmark q3, local item suggestion: who is selling in category 10 in Oregon, Idaho or
//! California, as each such auction opens. A join of persons and auctions on the seller, with
//! no window: every auction meets its seller whenever either comes.
//!
//! ```sql
//! SELECT P.name, P.city, P.state, A.id
//! FROM auction AS A INNER JOIN person AS P on A.seller = P.id
//! WHERE A.category = 10 and (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA');
//! ```
//!
//! Both inputs are keyed by the person (`A.seller`, `P.id`) into one keyed co-process
//! function: a qualifying person stays in the key's state, and an auction that comes before
//! its seller (another subtask's stride may be ahead) waits for it in a list. As in the SQL's
//! regular join, both are kept for good; the state grows with the persons in those states and
//! the category-10 auctions of sellers elsewhere, about 1 % of the events.

use eddy::prelude::*;
use nexmark::event::Event;
use serde::{Deserialize, Serialize};

use crate::rows::{AuctionRow, PersonRow};
use crate::source::{auctions, persons};

/// The category q3 looks at.
pub const CATEGORY: u64 = 10;

/// The states q3 looks at, in lower case as the generator writes them (RisingWave's q3
/// compares with `'or'`, `'id'` and `'ca'` for the same reason).
pub const STATES: [&str; 3] = ["or", "id", "ca"];

/// A seller in one of [`STATES`] and an auction of theirs in [`CATEGORY`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LocalItem {
    pub name: String,
    pub city: String,
    pub state: String,
    pub id: u64,
}

/// q3 over `events`.
pub fn q3(events: &DataStream<Event>) -> DataStream<LocalItem> {
    let auctions = auctions(events).filter(|a| a.category == CATEGORY);
    let sellers = persons(events).filter(|p| STATES.contains(&p.state.as_str()));
    auctions.connect(&sellers).key_by(|a| a.seller, |p| p.id).process(SellerJoin).uid("q3-join")
}

/// Joins a seller's auctions with the seller.
#[derive(Debug, Clone, Copy)]
struct SellerJoin;

fn seller() -> ValueStateDescriptor<PersonRow> {
    ValueStateDescriptor::new("seller")
}

fn waiting() -> ListStateDescriptor<u64> {
    ListStateDescriptor::new("auctions-waiting-for-their-seller")
}

fn item(person: &PersonRow, auction: u64) -> LocalItem {
    LocalItem { name: person.name.clone(), city: person.city.clone(), state: person.state.clone(), id: auction }
}

impl KeyedCoProcessFunction<u64, AuctionRow, PersonRow, LocalItem> for SellerJoin {
    fn process_element1(
        &mut self,
        auction: &AuctionRow,
        ctx: &mut KeyedContext<'_, u64, LocalItem>,
    ) -> Result<(), BoxError> {
        match ctx.state().value_state(&seller())?.value()? {
            Some(person) => ctx.collect(item(&person, auction.id)),
            None => ctx.state().list_state(&waiting())?.add(auction.id)?,
        }
        Ok(())
    }

    fn process_element2(
        &mut self,
        person: &PersonRow,
        ctx: &mut KeyedContext<'_, u64, LocalItem>,
    ) -> Result<(), BoxError> {
        ctx.state().value_state(&seller())?.update(person)?;
        let waiting = ctx.state().list_state(&waiting())?;
        for auction in waiting.get()? {
            ctx.collect(item(person, auction));
        }
        waiting.clear()?;
        Ok(())
    }
}
