//! A key group's open windows in `eddy-state`'s snapshot format: the bytes a window task
//! files per key group in the checkpoint store.
//!
//! One process's window operator (eddy-stream) keeps a window's contents as the namespaced
//! state `window-contents`, namespace the window (`TimeWindow { start, end }`), key the
//! grouping key, value `(fired, accumulator)`; at a checkpoint its keyed state store hands
//! each key group over as a [`KeyGroupSnapshot`] (the store's entry keys and cells). A
//! window task here files each key group the same way: it puts the group's windows into a
//! [`KeyedStateStore`] on a [`HeapBackend`] under that name and those types, and files
//! [`KeyedStateStore::snapshot_key_group`]'s snapshot (bincode). A restore hands the bytes to
//! [`KeyedStateStore::restore_key_group`] and reads the windows back. So a key group's object
//! holds the very entries a one-process tumbling-window job with the same key and accumulator
//! types checkpoints for that key group.
//!
//! The task keeps its windows in a table of its own while it runs (in firing order, with the
//! key groups that changed since its last commit); the store is only the format, built for
//! the key groups a commit writes. A window fires once and is dropped (no allowed lateness),
//! so the `fired` flag is always `false` here; a restored window that says it fired already
//! (from a run with allowed lateness) is not opened again.

use std::collections::BTreeMap;

use eddy_state::{HeapBackend, KeyGroupSnapshot, KeyedStateStore, NamespacedState, NamespacedStateDescriptor};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ClusterError, Result};

/// The name eddy-stream's window operator files window contents under.
pub const WINDOW_CONTENTS: &str = "window-contents";

/// A window as the namespace of [`WINDOW_CONTENTS`]: the same fields, in the same order, as
/// eddy-stream's `TimeWindow`, so it encodes to the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    /// First millisecond in the window.
    pub start: i64,
    /// First millisecond after it.
    pub end: i64,
}

/// One key group's open windows: `(window start, key)` → accumulator.
pub type Windows<K, A> = BTreeMap<(i64, K), A>;

/// Encodes and decodes key groups' windows of `window_ms`-long tumbling windows, over
/// `max_parallelism` key groups.
#[derive(Debug, Clone, Copy)]
pub struct GroupFormat {
    /// The windows' length.
    pub window_ms: i64,
    /// The key groups' count (`max_parallelism`).
    pub max_parallelism: usize,
}

type Contents<K, A> = NamespacedState<Window, K, (bool, A)>;

impl GroupFormat {
    fn store<K, A>(&self) -> Result<(KeyedStateStore<HeapBackend>, Contents<K, A>)>
    where
        K: Serialize + DeserializeOwned + Ord + Clone + Send + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
    {
        let store = KeyedStateStore::new(HeapBackend::new(self.max_parallelism).map_err(state_error)?);
        let contents = store.namespaced_state(&NamespacedStateDescriptor::new(WINDOW_CONTENTS)).map_err(state_error)?;
        Ok((store, contents))
    }

    /// The snapshot bytes of each of `groups`: `(key group, its windows)`.
    pub fn encode<'a, K, A>(
        &self,
        groups: impl IntoIterator<Item = (u32, &'a Windows<K, A>)>,
    ) -> Result<Vec<(u32, Vec<u8>)>>
    where
        K: Serialize + DeserializeOwned + Ord + Clone + Send + 'static,
        A: Serialize + DeserializeOwned + Clone + Send + 'static,
    {
        let (store, contents) = self.store::<K, A>()?;
        let mut written = Vec::new();
        for (group, windows) in groups {
            for ((start, key), accumulator) in windows {
                let window = Window { start: *start, end: start.saturating_add(self.window_ms) };
                contents.put(&store, &window, key, (false, accumulator.clone())).map_err(state_error)?;
            }
            written.push(group);
        }
        written
            .into_iter()
            .map(|group| {
                let snapshot = store.snapshot_key_group(group as usize).map_err(state_error)?;
                let bytes = bincode::serde::encode_to_vec(&snapshot, bincode::config::standard())
                    .map_err(|e| ClusterError::Checkpoint(format!("key group {group} does not encode: {e}")))?;
                Ok((group, bytes))
            })
            .collect()
    }

    /// Key group `group`'s windows from its snapshot `bytes`.
    pub fn decode<K, A>(&self, group: u32, bytes: &[u8]) -> Result<Windows<K, A>>
    where
        K: Serialize + DeserializeOwned + Ord + Clone + Send + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
    {
        let bad = |why: String| ClusterError::Checkpoint(format!("key group {group}'s state {why}"));
        let (snapshot, _): (KeyGroupSnapshot, _) =
            bincode::serde::decode_from_slice(bytes, bincode::config::standard()).map_err(|e| {
                bad(format!("does not decode ({e}): was it written by an earlier build? Use a new --application-id"))
            })?;
        if snapshot.key_group != group as usize {
            return Err(bad(format!("holds key group {} instead", snapshot.key_group)));
        }
        let (store, contents) = self.store::<K, A>()?;
        store.restore_key_group(snapshot).map_err(|e| bad(e.to_string()))?;
        let mut windows = Windows::new();
        for window in contents.namespaces(&store).map_err(|e| bad(e.to_string()))? {
            if window.end != window.start.saturating_add(self.window_ms) {
                return Err(bad(format!(
                    "has a window [{}, {}), not {} ms long: the job's window length changed; use a new --application-id",
                    window.start, window.end, self.window_ms
                )));
            }
            contents
                .drain_namespace(&store, &window, |key, (fired, accumulator)| {
                    if !fired {
                        windows.insert((window.start, key), accumulator);
                    }
                    Ok::<_, eddy_state::StateError>(())
                })
                .map_err(|e| bad(e.to_string()))?;
        }
        Ok(windows)
    }
}

fn state_error(error: eddy_state::StateError) -> ClusterError {
    ClusterError::Checkpoint(format!("keyed state: {error}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use eddy_stream::window::TimeWindow;
    use proptest::prelude::*;

    use super::*;
    use crate::repartition::Partitioner;
    use crate::test_job::FORMAT;

    /// Open windows, `(window start, key, count)`, grouped by key group as a window task
    /// keeps them.
    fn by_group(windows: &[(i64, u8, u64)]) -> BTreeMap<u32, Windows<String, u64>> {
        let mut partitioner = Partitioner::new(FORMAT.max_parallelism, 1);
        let mut groups: BTreeMap<u32, Windows<String, u64>> = BTreeMap::new();
        for &(slot, key, count) in windows {
            let key = format!("k{key}");
            let group = partitioner.key_group(&key) as u32;
            groups.entry(group).or_default().insert((slot * FORMAT.window_ms, key), count);
        }
        groups
    }

    /// What one process's window operator keeps for the same windows: its namespaced state
    /// `window-contents`, namespace eddy-stream's `TimeWindow`, value `(fired, accumulator)`.
    fn one_process_store(
        groups: &BTreeMap<u32, Windows<String, u64>>,
    ) -> (KeyedStateStore<HeapBackend>, NamespacedState<TimeWindow, String, (bool, u64)>) {
        let store = KeyedStateStore::new(HeapBackend::new(FORMAT.max_parallelism).unwrap());
        let contents = store.namespaced_state(&NamespacedStateDescriptor::new(WINDOW_CONTENTS)).unwrap();
        for ((start, key), count) in groups.values().flatten() {
            let window = TimeWindow { start: *start, end: start + FORMAT.window_ms };
            contents.put(&store, &window, key, (false, *count)).unwrap();
        }
        (store, contents)
    }

    fn windows() -> impl Strategy<Value = Vec<(i64, u8, u64)>> {
        proptest::collection::vec((-3i64..6, 0u8..40, 1u64..1000), 0..80)
    }

    proptest! {
        /// Against the windows put in: each key group's bytes decode to its windows, and are
        /// the snapshot a one-process window operator's store takes of that key group.
        #[test]
        fn a_key_group_round_trips_and_is_what_one_process_snapshots(windows in windows()) {
            let groups = by_group(&windows);
            let encoded = FORMAT.encode(groups.iter().map(|(g, w)| (*g, w))).unwrap();
            prop_assert_eq!(encoded.iter().map(|(g, _)| *g).collect::<BTreeSet<_>>(), groups.keys().copied().collect());
            let (store, _) = one_process_store(&groups);
            for (group, bytes) in &encoded {
                prop_assert_eq!(&FORMAT.decode::<String, u64>(*group, bytes).unwrap(), &groups[group]);
                let (snapshot, _): (KeyGroupSnapshot, _) =
                    bincode::serde::decode_from_slice(bytes, bincode::config::standard()).unwrap();
                prop_assert!(!snapshot.entries.is_empty());
                prop_assert_eq!(snapshot, store.snapshot_key_group(*group as usize).unwrap());
            }
        }

        /// The bytes restore into eddy-state's store, and a window operator's handle reads the
        /// same windows back.
        #[test]
        fn the_bytes_restore_into_a_keyed_state_store(windows in windows()) {
            let groups = by_group(&windows);
            let encoded = FORMAT.encode(groups.iter().map(|(g, w)| (*g, w))).unwrap();
            let store = KeyedStateStore::new(HeapBackend::new(FORMAT.max_parallelism).unwrap());
            let contents: NamespacedState<TimeWindow, String, (bool, u64)> =
                store.namespaced_state(&NamespacedStateDescriptor::new(WINDOW_CONTENTS)).unwrap();
            for (_, bytes) in encoded {
                let (snapshot, _) = bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
                store.restore_key_group(snapshot).unwrap();
            }
            let mut read = BTreeMap::new();
            for window in contents.namespaces(&store).unwrap() {
                contents.drain_namespace(&store, &window, |key, (fired, count)| {
                    assert!(!fired);
                    assert_eq!(window.end - window.start, FORMAT.window_ms);
                    read.insert((window.start, key), count);
                    Ok::<_, eddy_state::StateError>(())
                }).unwrap();
            }
            let expected: Windows<String, u64> = groups.into_values().flatten().collect();
            prop_assert_eq!(read, expected);
        }
    }

    #[test]
    fn bytes_of_another_group_another_length_or_format_are_refused() {
        let groups = by_group(&[(0, 1, 5), (1, 1, 2)]);
        let (&group, windows) = groups.iter().next().unwrap();
        let bytes = FORMAT.encode([(group, windows)]).unwrap().pop().unwrap().1;
        let other = (group + 1) % 128;
        assert!(FORMAT.decode::<String, u64>(other, &bytes).unwrap_err().to_string().contains("instead"));
        let longer = GroupFormat { window_ms: 20, ..FORMAT };
        assert!(longer.decode::<String, u64>(group, &bytes).unwrap_err().to_string().contains("window length"));
        // The format before this one: bincode of `(start, key, accumulator)` triples.
        let earlier = bincode::serde::encode_to_vec(vec![(0i64, "k1", 5u64)], bincode::config::standard()).unwrap();
        let refused = FORMAT.decode::<String, u64>(group, &earlier).unwrap_err().to_string();
        assert!(refused.contains("new --application-id"), "{refused}");
    }

    /// A window that fired already (kept for allowed lateness, in a one-process run) is not
    /// opened again.
    #[test]
    fn a_fired_window_is_not_restored() {
        let groups = by_group(&[(0, 1, 5), (1, 1, 2)]);
        let (store, contents) = one_process_store(&groups);
        let (&group, windows) = groups.iter().next().unwrap();
        contents
            .update_namespace(&store, &TimeWindow { start: 0, end: 10 }, |_, (fired, _)| {
                *fired = true;
                Ok::<_, eddy_state::StateError>(())
            })
            .unwrap();
        let snapshot = store.snapshot_key_group(group as usize).unwrap();
        let bytes = bincode::serde::encode_to_vec(&snapshot, bincode::config::standard()).unwrap();
        let mut open = windows.clone();
        open.remove(&(0, "k1".to_string()));
        assert_eq!(FORMAT.decode::<String, u64>(group, &bytes).unwrap(), open);
    }
}
