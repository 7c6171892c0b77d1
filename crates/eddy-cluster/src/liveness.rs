//! Standing in for a dead process on a broker that never drops it: liveness leases in the
//! checkpoint store, and a survivor that joins under the silent member's name.
//!
//! Kafka drops a member whose heartbeats stop for `session.timeout.ms`; the group then
//! rebalances and the survivors get its partitions. Some brokers never do: noida-db keeps a
//! member killed with SIGKILL in the group for good (measured: 100 s, the group `Stable` with
//! the dead member in it), and a rebalance started while it is there can wait for it forever
//! (measured: `CompletingRebalance` for 90 s when the dead member had led the group). What
//! does replace a dead static member there, as on Kafka, is a member joining under its
//! `group.instance.id`: that is how a restarted process takes its old place at once.
//!
//! So with static membership every member keeps a **lease** in the checkpoint store
//! (`leases/<group.instance.id>`), rewritten every heartbeat interval by a thread of its own
//! (like Kafka's heartbeat thread, it says the process lives, not that its loop is quick).
//! Every member watches the others' leases. When one has not changed for the session
//! timeout, by the watcher's own clock (no clocks are compared), and the group still lists
//! that member (each static member's `client.id` is its instance name), the first watcher to
//! claim it (`stand-ins/<instance>/<lease>`, create-if-absent) **stands in**: its process
//! starts one more member, under the silent member's `group.instance.id`. The broker hands the
//! stand-in the silent member's place, and its tasks start as any moved task does: fencing the
//! previous incarnation, restoring the checkpoint the committed offset names.
//!
//! - On a broker that drops dead members (Apache Kafka), the group no longer lists the
//!   silent member by the time its lease is stale: the lease is deleted and nobody stands in.
//! - A member that was only slow, not dead (a paused process), and is stood in for, is fenced
//!   twice over: the broker fences its `group.instance.id` (its consumer fails with
//!   `FENCED_INSTANCE_ID`), and its tasks' new owners fenced its transactional producers
//!   before they started, so it cannot commit anything, exactly-once holds.
//! - A dead process restarted under its name later fences its stand-in the same way; the
//!   stand-in then stops quietly (a member of the process's own stops with an error).
//! - A lease is never deleted by its own member: a static member does not leave the group
//!   when it stops (Kafka's rule), so on noida-db a stopped process's tasks move only once a
//!   survivor stands in for it.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use crate::error::Result;
use crate::store::CheckpointStore;

/// How long asking the broker for the group's members may take.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A member's lease, rewritten every `interval` by a thread of its own until dropped.
pub(crate) struct Heartbeat {
    /// Dropped to stop the thread: it wakes at once instead of at its next beat.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Starts renewing `instance`'s lease in the store at `url` every `interval`. The lease
    /// holds a token of this start and a count of beats, so every write differs.
    pub(crate) fn start(url: &str, s3_endpoint: Option<&str>, instance: &str, interval: Duration) -> Result<Self> {
        let store = CheckpointStore::open(url, s3_endpoint)?;
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let token = format!("{}.{}", std::process::id(), started.as_nanos());
        store.put_lease(instance, &format!("{token}-0"))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let instance = instance.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("lease {instance}"))
            .spawn(move || {
                let mut beat = 0u64;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    beat += 1;
                    // A failed write is one missed beat; the session timeout is six of them.
                    if let Err(e) = store.put_lease(&instance, &format!("{token}-{beat}")) {
                        tracing::warn!(instance, error = %e, "cannot renew the liveness lease");
                    }
                }
            })
            .map_err(|e| crate::error::ClusterError::Config(format!("cannot start a lease thread: {e}")))?;
        Ok(Heartbeat { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The other members' leases as this member last saw them, and since when.
#[derive(Default)]
pub(crate) struct Watch {
    seen: BTreeMap<String, (String, Instant)>,
}

impl Watch {
    /// The members (other than `own`) whose lease has not changed for `timeout` by `now`,
    /// each with the lease it stopped at. A lease first seen counts as changed now.
    pub(crate) fn silent(
        &mut self,
        leases: Vec<(String, String)>,
        own: &str,
        now: Instant,
        timeout: Duration,
    ) -> Vec<(String, String)> {
        let mut seen = BTreeMap::new();
        let mut silent = Vec::new();
        for (instance, lease) in leases {
            if instance == own {
                continue;
            }
            let since = match self.seen.remove(&instance) {
                Some((before, since)) if before == lease => since,
                _ => now,
            };
            if now.duration_since(since) >= timeout {
                silent.push((instance.clone(), lease.clone()));
            }
            seen.insert(instance, (lease, since));
        }
        self.seen = seen;
        silent
    }

    /// Counts `instance`'s lease as changed `now` (after standing in for it, or seeing
    /// another member claim it), so it is not acted on again before another timeout.
    pub(crate) fn restart(&mut self, instance: &str, now: Instant) {
        if let Some((_, since)) = self.seen.get_mut(instance) {
            *since = now;
        }
    }
}

/// The silent members this member stands in for: of the members whose lease stood still for
/// `timeout`, those the group still lists and whose stand-in this member claimed first. The
/// lease of a silent member the group no longer lists is deleted.
pub(crate) fn to_stand_in<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    group: &str,
    store: &CheckpointStore,
    watch: &mut Watch,
    own: &str,
    timeout: Duration,
) -> Result<Vec<String>> {
    let now = Instant::now();
    let silent = watch.silent(store.leases()?, own, now, timeout);
    if silent.is_empty() {
        return Ok(Vec::new());
    }
    let listed = match consumer.fetch_group_list(Some(group), DESCRIBE_TIMEOUT) {
        Ok(groups) => groups
            .groups()
            .iter()
            .flat_map(|g| g.members().iter().map(|m| m.client_id().to_string()))
            .collect::<Vec<_>>(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the group's members; standing in later");
            return Ok(Vec::new());
        }
    };
    let mut mine = Vec::new();
    for (instance, lease) in silent {
        if !listed.contains(&instance) {
            tracing::info!(instance, "a silent member has left the group: its lease is deleted");
            store.delete_lease(&instance)?;
            continue;
        }
        watch.restart(&instance, now);
        if store.claim_stand_in(&instance, &lease)? {
            tracing::warn!(instance, silent_for_ms = timeout.as_millis() as u64, "standing in for a silent member");
            mine.push(instance);
        }
    }
    Ok(mine)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leases(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(i, l)| (i.to_string(), l.to_string())).collect()
    }

    #[test]
    fn a_lease_is_silent_once_unchanged_for_the_timeout_by_the_watchers_clock() {
        let timeout = Duration::from_secs(6);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut watch = Watch::default();
        // Seen first at t0: counts as changed then, however old the lease is.
        assert!(watch.silent(leases(&[("a", "x-1"), ("b", "y-1"), ("me", "z-1")]), "me", at(0), timeout).is_empty());
        // b keeps beating, a does not; the watcher's own lease never counts.
        assert!(watch.silent(leases(&[("a", "x-1"), ("b", "y-2"), ("me", "z-1")]), "me", at(5), timeout).is_empty());
        let silent = watch.silent(leases(&[("a", "x-1"), ("b", "y-3"), ("me", "z-1")]), "me", at(6), timeout);
        assert_eq!(silent, leases(&[("a", "x-1")]));
        // Acted on: not again before another timeout, unless it stays silent that long.
        watch.restart("a", at(6));
        assert!(watch.silent(leases(&[("a", "x-1"), ("b", "y-4")]), "me", at(11), timeout).is_empty());
        assert_eq!(watch.silent(leases(&[("a", "x-1")]), "me", at(12), timeout), leases(&[("a", "x-1")]));
        // A stand-in (or the restarted member) writes the lease again: alive.
        assert!(watch.silent(leases(&[("a", "w-0")]), "me", at(13), timeout).is_empty());
        assert!(watch.silent(leases(&[("a", "w-0")]), "me", at(18), timeout).is_empty());
        // A lease gone (deleted) and back is seen afresh.
        assert!(watch.silent(leases(&[]), "me", at(30), timeout).is_empty());
        assert!(watch.silent(leases(&[("a", "w-0")]), "me", at(31), timeout).is_empty());
    }

    #[test]
    fn the_heartbeat_rewrites_the_lease_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let store = CheckpointStore::open(&url, None).unwrap();
        let heartbeat = Heartbeat::start(&url, None, "wc-0-0", Duration::from_millis(50)).unwrap();
        let first = store.leases().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let later = store.leases().unwrap();
        assert_eq!(later.len(), 1);
        assert_ne!(first, later, "the lease did not change while the heartbeat ran");
        drop(heartbeat);
        let stopped = store.leases().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(store.leases().unwrap(), stopped, "the lease changed after the heartbeat stopped");
    }
}
