//! The replayable source of the keyed-operator property tests: a fixed list of events read
//! from the start, or from the position a checkpoint recorded, never past a limit the test
//! moves (so a stop-with-savepoint lands mid-input), on one subtask so each key's events
//! arrive in order, failing once at a chosen event to force a restore.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eddy::prelude::*;

/// One event: key, event time, value (the value is also its index).
pub type Event = (u8, i64, u64);

/// The events from `next` on, up to `limit` (past it the source waits), then done.
struct Replayable {
    events: Arc<Vec<Event>>,
    next: usize,
    limit: Arc<AtomicU64>,
}

impl Source<Event> for Replayable {
    fn poll_next(&mut self, out: &mut Vec<Event>, max: usize) -> Result<SourcePoll, BoxError> {
        if self.next >= self.events.len() {
            return Ok(SourcePoll::Done);
        }
        let limit = (self.limit.load(Ordering::SeqCst) as usize).min(self.events.len());
        if self.next >= limit {
            std::thread::sleep(Duration::from_millis(2));
            return Ok(SourcePoll::Pending);
        }
        let end = limit.min(self.next + max.min(7));
        out.extend_from_slice(&self.events[self.next..end]);
        self.next = end;
        Ok(SourcePoll::Ready)
    }

    fn snapshot(&mut self) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        Ok(Some(vec![(self.next as u64).to_be_bytes().to_vec()]))
    }
}

/// `events` as a stream (uid `events`; the source and the map that fails run on one
/// subtask, so each key's events reach the shuffle in order), read up to `limit`; the event whose value
/// is `fail.0` panics the first time it passes (`fail.1` records that it did).
pub fn replayed(
    env: &StreamEnvironment,
    events: &Arc<Vec<Event>>,
    limit: &Arc<AtomicU64>,
    fail: &Arc<(u64, AtomicBool)>,
) -> DataStream<Event> {
    let (create, restore) = (events.clone(), events.clone());
    let (create_limit, restore_limit) = (limit.clone(), limit.clone());
    let fail = fail.clone();
    env.add_replayable_source(
        "events",
        move |_, _| Ok(Replayable { events: create.clone(), next: 0, limit: create_limit.clone() }),
        move |splits| {
            let next = splits.iter().map(|s| u64::from_be_bytes(s[..8].try_into().unwrap())).max().unwrap_or(0);
            Ok(Replayable { events: restore.clone(), next: next as usize, limit: restore_limit.clone() })
        },
    )
    .uid("events")
    .set_parallelism(1)
    .map(move |e: Event| {
        if e.2 == fail.0 && !fail.1.swap(true, Ordering::SeqCst) {
            panic!("injected failure at event {}", e.2);
        }
        e
    })
    .set_parallelism(1)
}
