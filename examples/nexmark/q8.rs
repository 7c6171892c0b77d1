//! Nexmark q8, monitor new users: the persons who registered and opened an auction in the
//! same 10 s tumbling window.
//!
//! ```sql
//! SELECT P.id, P.name, P.starttime
//! FROM (
//!   SELECT id, name, window_start AS starttime, window_end AS endtime
//!   FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
//!   GROUP BY id, name, window_start, window_end
//! ) P
//! JOIN (
//!   SELECT seller, window_start AS starttime, window_end AS endtime
//!   FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
//!   GROUP BY seller, window_start, window_end
//! ) A
//! ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime;
//! ```
//!
//! As the SQL does, the auctions are first grouped to one row per seller and window (a
//! window counting them, whose rows go out at the window's last millisecond, so they fall in
//! the same window again), then a window join meets persons and sellers of the same id in the
//! same 10 s window. Persons are unique by id, so each new user comes out once per window.

use std::time::Duration;

use eddy::prelude::*;
use nexmark::event::Event;
use serde::{Deserialize, Serialize};

use crate::source::{auctions, persons};

/// The length of q8's tumbling windows.
pub const WINDOW: Duration = Duration::from_secs(10);

/// A person who opened an auction in the window they registered in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NewUser {
    pub id: u64,
    pub name: String,
    /// The window's start, epoch milliseconds.
    pub starttime: i64,
}

/// q8 over `events`.
pub fn q8(events: &DataStream<Event>) -> DataStream<NewUser> {
    let window = TumblingEventTimeWindows::of(WINDOW);
    let sellers = auctions(events)
        .key_by(|auction| auction.seller)
        .window(window)
        .aggregate_with(Count, |&seller, _, _| seller)
        .uid("q8-sellers");
    let size = WINDOW.as_millis() as i64;
    persons(events)
        .join(&sellers)
        .where_(|person| person.id)
        .equal_to(|&seller| seller)
        .window(window)
        .apply(move |person, _| {
            let time = person.date_time as i64;
            NewUser { id: person.id, name: person.name.clone(), starttime: time - time.rem_euclid(size) }
        })
        .uid("q8-join")
}
