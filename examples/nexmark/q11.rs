//! Nexmark q11, user sessions: how many bids each bidder made in each of their sessions, a
//! session ending after 10 s without a bid of theirs.
//!
//! ```sql
//! SELECT B.bidder, count(*) as bid_count,
//!        SESSION_START(B.dateTime, INTERVAL '10' SECOND) as starttime,
//!        SESSION_END(B.dateTime, INTERVAL '10' SECOND) as endtime
//! FROM bid B
//! GROUP BY B.bidder, SESSION(B.dateTime, INTERVAL '10' SECOND);
//! ```
//!
//! An event-time session window per bidder: a session runs from its first bid to 10 s after
//! its last (`endtime`, as `SESSION_END`), and fires once the watermark passes that.

use std::time::Duration;

use eddy::prelude::*;
use nexmark::event::Event;
use serde::{Deserialize, Serialize};

use crate::source::bids;

/// The gap that ends a session.
pub const GAP: Duration = Duration::from_secs(10);

/// A bidder's session and the bids in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Session {
    pub bidder: u64,
    pub bid_count: u64,
    /// The session's first bid, epoch milliseconds.
    pub starttime: i64,
    /// Its last bid plus the gap, epoch milliseconds.
    pub endtime: i64,
}

/// q11 over `events`.
pub fn q11(events: &DataStream<Event>) -> DataStream<Session> {
    bids(events)
        .key_by(|bid| bid.bidder as u64)
        .window(EventTimeSessionWindows::with_gap(GAP))
        .aggregate_with(Count, |&bidder, session, bid_count| Session {
            bidder,
            bid_count,
            starttime: session.start,
            endtime: session.end,
        })
        .uid("q11-sessions")
}
