//! Timers: (timestamp, key, namespace) per key group, for event time and processing time.
//!
//! Like Flink's `InternalTimerService`, a timer belongs to a key (and a namespace, e.g. a
//! window), is registered at most once per (timestamp, key, namespace), can be deleted, and
//! fires in timestamp order once the watermark (or the wall clock) reaches it. Timers are
//! filed per key group, so a checkpoint snapshots them with the key group's state and a
//! rescale moves them with it.
//!
//! # Where timers live
//!
//! Firing needs the smallest timestamp over all key groups on every watermark, a priority
//! queue operation: a sorted set of timers per key group plus a sorted index of each key
//! group's earliest timer (Flink's `KeyGroupPartitionedPriorityQueue`). [`TimerStore`], in
//! this file, keeps all of it in memory: the heap backend's timers (Flink's `HEAP` timer
//! service). With the sled backend the store keeps timers in the database instead, ordered
//! by time within their key group, with only the index of each key group's earliest timer in
//! memory (`stored_timers.rs`, Flink's RocksDB timers): a session per key means a timer per
//! key, which need not fit in memory either.

use std::collections::BTreeSet;

use eddy_core::Timestamp;
use serde::{Deserialize, Serialize};

use crate::backend::check_key_group;
use crate::error::Result;

/// Which clock a timer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimeDomain {
    /// Fires when the watermark reaches the timestamp.
    EventTime,
    /// Fires when the wall clock reaches the timestamp.
    ProcessingTime,
}

/// A registered timer: when, for which key, in which namespace (bincode bytes of each).
///
/// Timers order by timestamp, then key, then namespace, so equal timers are one timer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timer {
    /// When it fires (milliseconds since the epoch).
    pub timestamp: Timestamp,
    /// The key's bincode bytes, as the key group was hashed from.
    pub key: Vec<u8>,
    /// The namespace's bincode bytes (empty for `()`).
    pub namespace: Vec<u8>,
}

/// The timers of one time domain, partitioned by key group.
#[derive(Debug, Clone, Default)]
struct TimerQueue {
    groups: Vec<BTreeSet<Timer>>,
    /// `(earliest timestamp, key group)` of every non-empty key group.
    heads: BTreeSet<(Timestamp, usize)>,
    len: usize,
}

impl TimerQueue {
    fn new(max_parallelism: usize) -> Self {
        TimerQueue { groups: vec![BTreeSet::new(); max_parallelism], heads: BTreeSet::new(), len: 0 }
    }

    /// Runs `change` on a key group's timers and keeps the head index in step.
    fn update<R>(&mut self, key_group: usize, change: impl FnOnce(&mut BTreeSet<Timer>) -> R) -> R {
        let group = &mut self.groups[key_group];
        let before = group.first().map(|t| t.timestamp);
        let before_len = group.len();
        let result = change(group);
        let after = group.first().map(|t| t.timestamp);
        self.len = self.len + group.len() - before_len;
        if before != after {
            if let Some(ts) = before {
                self.heads.remove(&(ts, key_group));
            }
            if let Some(ts) = after {
                self.heads.insert((ts, key_group));
            }
        }
        result
    }

    fn pop_due(&mut self, up_to: Timestamp) -> Option<(usize, Timer)> {
        let &(ts, key_group) = self.heads.first()?;
        if ts > up_to {
            return None;
        }
        let timer = self.update(key_group, |group| group.pop_first())?;
        Some((key_group, timer))
    }
}

/// All timers of one keyed operator subtask, for both time domains.
///
/// ```
/// use eddy_state::{TimeDomain, Timer, TimerStore};
/// let mut timers = TimerStore::new(128);
/// let at = |timestamp| Timer { timestamp, key: vec![1], namespace: vec![] };
/// assert!(timers.register(TimeDomain::EventTime, 5, at(20)).unwrap());
/// assert!(timers.register(TimeDomain::EventTime, 9, at(10)).unwrap());
/// assert!(!timers.register(TimeDomain::EventTime, 5, at(20)).unwrap()); // already there
/// assert_eq!(timers.pop_due(TimeDomain::EventTime, 15), Some((9, at(10))));
/// assert_eq!(timers.pop_due(TimeDomain::EventTime, 15), None);
/// ```
#[derive(Debug, Clone)]
pub struct TimerStore {
    event: TimerQueue,
    processing: TimerQueue,
}

impl TimerStore {
    /// No timers, for `max_parallelism` key groups.
    pub fn new(max_parallelism: usize) -> Self {
        TimerStore { event: TimerQueue::new(max_parallelism), processing: TimerQueue::new(max_parallelism) }
    }

    fn queue(&self, domain: TimeDomain) -> &TimerQueue {
        match domain {
            TimeDomain::EventTime => &self.event,
            TimeDomain::ProcessingTime => &self.processing,
        }
    }

    fn queue_mut(&mut self, domain: TimeDomain) -> &mut TimerQueue {
        match domain {
            TimeDomain::EventTime => &mut self.event,
            TimeDomain::ProcessingTime => &mut self.processing,
        }
    }

    /// Registers a timer of a key in `key_group`; `false` if it was already registered.
    pub fn register(&mut self, domain: TimeDomain, key_group: usize, timer: Timer) -> Result<bool> {
        let queue = self.queue_mut(domain);
        check_key_group(key_group, queue.groups.len())?;
        Ok(queue.update(key_group, |group| group.insert(timer)))
    }

    /// Deletes a timer; `false` if there was none.
    pub fn delete(&mut self, domain: TimeDomain, key_group: usize, timer: &Timer) -> Result<bool> {
        let queue = self.queue_mut(domain);
        check_key_group(key_group, queue.groups.len())?;
        Ok(queue.update(key_group, |group| group.remove(timer)))
    }

    /// Removes and returns the earliest timer with `timestamp <= up_to`, with its key group.
    /// Calling it until `None` fires every due timer in timestamp order.
    pub fn pop_due(&mut self, domain: TimeDomain, up_to: Timestamp) -> Option<(usize, Timer)> {
        self.queue_mut(domain).pop_due(up_to)
    }

    /// The earliest registered timestamp (when to schedule the next processing-time wake-up).
    pub fn next_timestamp(&self, domain: TimeDomain) -> Option<Timestamp> {
        self.queue(domain).heads.first().map(|&(ts, _)| ts)
    }

    /// The number of registered timers of a domain.
    pub fn len(&self, domain: TimeDomain) -> usize {
        self.queue(domain).len
    }

    /// Whether no timer of either domain is registered.
    pub fn is_empty(&self) -> bool {
        self.event.len == 0 && self.processing.len == 0
    }

    /// The timers of a key group, both domains, in order: its part of a checkpoint.
    pub fn snapshot_key_group(&self, key_group: usize) -> Result<Vec<(TimeDomain, Timer)>> {
        check_key_group(key_group, self.event.groups.len())?;
        let mut timers = Vec::new();
        for domain in [TimeDomain::EventTime, TimeDomain::ProcessingTime] {
            timers.extend(self.queue(domain).groups[key_group].iter().map(|t| (domain, t.clone())));
        }
        Ok(timers)
    }

    /// Replaces a key group's timers with a snapshot's.
    pub fn restore_key_group(&mut self, key_group: usize, timers: Vec<(TimeDomain, Timer)>) -> Result<()> {
        check_key_group(key_group, self.event.groups.len())?;
        for domain in [TimeDomain::EventTime, TimeDomain::ProcessingTime] {
            self.queue_mut(domain).update(key_group, BTreeSet::clear);
        }
        for (domain, timer) in timers {
            self.queue_mut(domain).update(key_group, |group| group.insert(timer));
        }
        Ok(())
    }
}
