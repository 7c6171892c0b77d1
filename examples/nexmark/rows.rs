//! Persons and auctions as rows with the columns of the Nexmark SQL schema (`dateTime`,
//! `itemName`, …), serialisable so queries can keep them in keyed state, and every event as
//! the JSON line `--dump-events` writes.

use nexmark::event::{Auction, Bid, Event, Person};
use serde::{Deserialize, Serialize};

/// A person, with the columns of Nexmark's `person` table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonRow {
    pub id: u64,
    pub name: String,
    pub email_address: String,
    pub credit_card: String,
    pub city: String,
    pub state: String,
    pub date_time: u64,
    pub extra: String,
}

impl From<Person> for PersonRow {
    fn from(p: Person) -> Self {
        PersonRow {
            id: p.id as u64,
            name: p.name,
            email_address: p.email_address,
            credit_card: p.credit_card,
            city: p.city,
            state: p.state,
            date_time: p.date_time,
            extra: p.extra,
        }
    }
}

/// An auction, with the columns of Nexmark's `auction` table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuctionRow {
    pub id: u64,
    pub item_name: String,
    pub description: String,
    pub initial_bid: u64,
    pub reserve: u64,
    pub date_time: u64,
    pub expires: u64,
    pub seller: u64,
    pub category: u64,
    pub extra: String,
}

impl From<Auction> for AuctionRow {
    fn from(a: Auction) -> Self {
        AuctionRow {
            id: a.id as u64,
            item_name: a.item_name,
            description: a.description,
            initial_bid: a.initial_bid as u64,
            reserve: a.reserve as u64,
            date_time: a.date_time,
            expires: a.expires,
            seller: a.seller as u64,
            category: a.category as u64,
            extra: a.extra,
        }
    }
}

/// A bid with every column of Nexmark's `bid` table (the queries' `BidRow` leaves out
/// `channel` and `url`, which none of them reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FullBidRow {
    pub auction: u64,
    pub bidder: u64,
    pub price: u64,
    pub channel: String,
    pub url: String,
    pub date_time: u64,
    pub extra: String,
}

/// One event as `--dump-events` writes it: `{"type": "person"|"auction"|"bid", …columns}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EventRow {
    Person(PersonRow),
    Auction(AuctionRow),
    Bid(FullBidRow),
}

impl From<Event> for EventRow {
    fn from(event: Event) -> Self {
        match event {
            Event::Person(p) => EventRow::Person(p.into()),
            Event::Auction(a) => EventRow::Auction(a.into()),
            Event::Bid(b) => EventRow::Bid(FullBidRow::from(b)),
        }
    }
}

impl From<Bid> for FullBidRow {
    fn from(b: Bid) -> Self {
        FullBidRow {
            auction: b.auction as u64,
            bidder: b.bidder as u64,
            price: b.price as u64,
            channel: b.channel,
            url: b.url,
            date_time: b.date_time,
            extra: b.extra,
        }
    }
}
