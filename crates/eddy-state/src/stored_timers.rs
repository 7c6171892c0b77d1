//! Timers kept in the backend itself, for backends that keep state on disk: timers then need
//! not fit in memory either (Flink's RocksDB timers).
//!
//! Each timer is one backend entry, filed in its key group under a reserved state name:
//!
//! ```text
//! key_group | name("\0timers") | 9u32 | domain u8 | timestamp (i64 BE, sign bit flipped) | key_len u32 | key | namespace
//! ```
//!
//! The entry-key layout's *key* field holds `domain | timestamp`, whose bytes sort like the
//! timestamps, so a key group's timers of one domain are one range in timestamp order: its
//! earliest timer is the first entry of a prefix scan, and a snapshot is one ordered scan.
//! The value is empty. Only the earliest timestamp of each key group and domain is kept in
//! memory, in an ordered set that says which key group's timer is due first.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use eddy_core::Timestamp;

use crate::backend::{check_key_group, layout, StateBackend};
use crate::error::{Result, StateError};
use crate::timers::{TimeDomain, Timer};

/// The reserved state name timers are filed under (user state names cannot start with NUL).
pub(crate) const TIMERS_STATE: &str = "\0timers";

/// Bytes of the `domain | timestamp` sort key.
const SORT_KEY_BYTES: usize = 9;

/// The timers of one operator subtask, stored as backend entries.
#[derive(Debug)]
pub(crate) struct StoredTimers {
    /// `name_len | name` of [`TIMERS_STATE`].
    name_field: Vec<u8>,
    /// Per domain: `(earliest timestamp, key group)` of every key group with timers.
    heads: [BTreeSet<(Timestamp, usize)>; 2],
    /// Per key group and domain: the earliest timestamp and the number of timers.
    groups: Vec<[(Option<Timestamp>, usize); 2]>,
}

fn index(domain: TimeDomain) -> usize {
    match domain {
        TimeDomain::EventTime => 0,
        TimeDomain::ProcessingTime => 1,
    }
}

fn domain_of(byte: u8) -> Option<TimeDomain> {
    match byte {
        0 => Some(TimeDomain::EventTime),
        1 => Some(TimeDomain::ProcessingTime),
        _ => None,
    }
}

/// A timestamp as bytes that sort like the timestamps.
fn sortable(timestamp: Timestamp) -> [u8; 8] {
    ((timestamp as u64) ^ (1 << 63)).to_be_bytes()
}

fn unsortable(bytes: [u8; 8]) -> Timestamp {
    (u64::from_be_bytes(bytes) ^ (1 << 63)) as Timestamp
}

impl StoredTimers {
    /// No timers, for `max_parallelism` key groups.
    pub(crate) fn new(max_parallelism: usize) -> Self {
        StoredTimers {
            name_field: layout::name_field(TIMERS_STATE).expect("a short name"),
            heads: [BTreeSet::new(), BTreeSet::new()],
            groups: vec![[(None, 0); 2]; max_parallelism],
        }
    }

    /// `key_group | name`: the prefix of every timer of a key group.
    fn group_prefix(&self, key_group: usize) -> Vec<u8> {
        [&layout::key_group_prefix(key_group)[..], &self.name_field].concat()
    }

    /// The prefix of a key group's timers of one domain.
    fn domain_prefix(&self, key_group: usize, domain: TimeDomain) -> Vec<u8> {
        let mut prefix = self.group_prefix(key_group);
        prefix.extend_from_slice(&(SORT_KEY_BYTES as u32).to_be_bytes());
        prefix.push(index(domain) as u8);
        prefix
    }

    /// A timer's entry key.
    fn entry_key(&self, key_group: usize, domain: TimeDomain, timer: &Timer) -> Result<Vec<u8>> {
        let mut key = self.domain_prefix(key_group, domain);
        key.extend_from_slice(&sortable(timer.timestamp));
        layout::push_key(&mut key, &timer.key)?;
        key.extend_from_slice(&timer.namespace);
        Ok(key)
    }

    /// Whether a backend entry key is a timer's (a snapshot separates them from state).
    pub(crate) fn is_timer_entry(&self, entry_key: &[u8]) -> bool {
        entry_key.get(layout::KEY_GROUP_BYTES..).is_some_and(|rest| rest.starts_with(&self.name_field))
    }

    /// Registers a timer; `false` if it was already registered.
    pub(crate) fn register<B: StateBackend>(
        &mut self,
        backend: &mut B,
        domain: TimeDomain,
        key_group: usize,
        timer: &Timer,
    ) -> Result<bool> {
        check_key_group(key_group, self.groups.len())?;
        let key = self.entry_key(key_group, domain, timer)?;
        if backend.get(&key, |_| ())?.is_some() {
            return Ok(false);
        }
        backend.put(&key, &[])?;
        let (head, count) = self.groups[key_group][index(domain)];
        if head.is_none_or(|head| timer.timestamp < head) {
            self.set_head(domain, key_group, Some(timer.timestamp));
        }
        self.groups[key_group][index(domain)].1 = count + 1;
        Ok(true)
    }

    /// Deletes a timer; `false` if there was none.
    pub(crate) fn delete<B: StateBackend>(
        &mut self,
        backend: &mut B,
        domain: TimeDomain,
        key_group: usize,
        timer: &Timer,
    ) -> Result<bool> {
        check_key_group(key_group, self.groups.len())?;
        let key = self.entry_key(key_group, domain, timer)?;
        if backend.get(&key, |_| ())?.is_none() {
            return Ok(false);
        }
        backend.delete(&key)?;
        self.groups[key_group][index(domain)].1 -= 1;
        if self.groups[key_group][index(domain)].0 == Some(timer.timestamp) {
            let head = self.first(backend, key_group, domain)?.map(|(timer, _)| timer.timestamp);
            self.set_head(domain, key_group, head);
        }
        Ok(true)
    }

    /// Removes and returns the earliest timer due at `up_to`, with its key group.
    pub(crate) fn pop_due<B: StateBackend>(
        &mut self,
        backend: &mut B,
        domain: TimeDomain,
        up_to: Timestamp,
    ) -> Result<Option<(usize, Timer)>> {
        let Some(&(timestamp, key_group)) = self.heads[index(domain)].first() else { return Ok(None) };
        if timestamp > up_to {
            return Ok(None);
        }
        let prefix = self.domain_prefix(key_group, domain);
        let mut found = Vec::with_capacity(2);
        backend.scan(&prefix, None, |rest, _| {
            found.push(rest.to_vec());
            if found.len() == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        let mut found = found.into_iter();
        let first = found.next().ok_or_else(|| damaged("a key group's earliest timer is missing"))?;
        let timer = parse_timer(&first)?;
        backend.delete(&[&prefix[..], &first].concat())?;
        self.groups[key_group][index(domain)].1 -= 1;
        let next = found.next().map(|rest| parse_timer(&rest)).transpose()?.map(|t| t.timestamp);
        self.set_head(domain, key_group, next);
        Ok(Some((key_group, timer)))
    }

    /// The earliest timer of a key group and domain, with its entry key after the prefix.
    fn first<B: StateBackend>(
        &self,
        backend: &B,
        key_group: usize,
        domain: TimeDomain,
    ) -> Result<Option<(Timer, Vec<u8>)>> {
        let mut first = None;
        backend.scan(&self.domain_prefix(key_group, domain), None, |rest, _| {
            first = Some(rest.to_vec());
            ControlFlow::Break(())
        })?;
        first.map(|rest| Ok((parse_timer(&rest)?, rest))).transpose()
    }

    fn set_head(&mut self, domain: TimeDomain, key_group: usize, head: Option<Timestamp>) {
        let slot = &mut self.groups[key_group][index(domain)].0;
        if let Some(old) = slot.take() {
            self.heads[index(domain)].remove(&(old, key_group));
        }
        if let Some(new) = head {
            self.heads[index(domain)].insert((new, key_group));
        }
        *slot = head;
    }

    /// The earliest registered timestamp of a domain.
    pub(crate) fn next_timestamp(&self, domain: TimeDomain) -> Option<Timestamp> {
        self.heads[index(domain)].first().map(|&(timestamp, _)| timestamp)
    }

    /// The number of registered timers of a domain.
    pub(crate) fn len(&self, domain: TimeDomain) -> usize {
        self.groups.iter().map(|group| group[index(domain)].1).sum()
    }

    /// The timers of a key group, both domains, in order: one ordered scan.
    pub(crate) fn snapshot_key_group<B: StateBackend>(
        &self,
        backend: &B,
        key_group: usize,
    ) -> Result<Vec<(TimeDomain, Timer)>> {
        check_key_group(key_group, self.groups.len())?;
        let mut timers = Vec::new();
        let mut damaged = None;
        backend.scan(&self.group_prefix(key_group), None, |rest, _| match parse_entry(rest) {
            Ok(timer) => {
                timers.push(timer);
                ControlFlow::Continue(())
            }
            Err(e) => {
                damaged = Some(e);
                ControlFlow::Break(())
            }
        })?;
        match damaged {
            Some(e) => Err(e),
            None => {
                // In the heap's order (timestamp, key bytes, namespace), so both backends'
                // snapshots are the same bytes.
                timers.sort_unstable_by(|a, b| {
                    (a.0 != TimeDomain::EventTime, &a.1).cmp(&(b.0 != TimeDomain::EventTime, &b.1))
                });
                Ok(timers)
            }
        }
    }

    /// Replaces a key group's timers with a snapshot's.
    pub(crate) fn restore_key_group<B: StateBackend>(
        &mut self,
        backend: &mut B,
        key_group: usize,
        timers: Vec<(TimeDomain, Timer)>,
    ) -> Result<()> {
        check_key_group(key_group, self.groups.len())?;
        backend.delete_prefix(&self.group_prefix(key_group))?;
        for domain in [TimeDomain::EventTime, TimeDomain::ProcessingTime] {
            self.set_head(domain, key_group, None);
            self.groups[key_group][index(domain)].1 = 0;
        }
        for (domain, timer) in &timers {
            self.register(backend, *domain, key_group, timer)?;
        }
        Ok(())
    }
}

fn damaged(reason: &str) -> StateError {
    StateError::Corrupted { state: "<timers>".into(), reason: reason.into() }
}

/// A timer from its entry key after the domain prefix: `timestamp | key_len | key | namespace`.
fn parse_timer(rest: &[u8]) -> Result<Timer> {
    let timestamp = rest.get(..8).ok_or_else(|| damaged("a timer entry is too short"))?;
    let timestamp = unsortable(timestamp.try_into().expect("8 bytes"));
    let rest = &rest[8..];
    let len = rest.get(..4).ok_or_else(|| damaged("a timer entry has no key length"))?;
    let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
    let key = rest.get(4..4 + len).ok_or_else(|| damaged("a timer's key is cut short"))?;
    Ok(Timer { timestamp, key: key.to_vec(), namespace: rest[4 + len..].to_vec() })
}

/// A timer from its entry key after the key-group prefix: `sort-key length | domain | …`.
fn parse_entry(rest: &[u8]) -> Result<(TimeDomain, Timer)> {
    match rest.get(..5) {
        Some([0, 0, 0, 9, domain]) => {
            let domain = domain_of(*domain).ok_or_else(|| damaged("a timer entry names an unknown time domain"))?;
            Ok((domain, parse_timer(&rest[5..])?))
        }
        _ => Err(damaged("a timer entry does not follow the timer layout")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_timestamps_sort_like_timestamps() {
        let times = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for pair in times.windows(2) {
            assert!(sortable(pair[0]) < sortable(pair[1]));
        }
        assert!(times.iter().all(|&t| unsortable(sortable(t)) == t));
    }
}
