//! Keyed state for eddy: typed state handles over a heap or sled backend, with TTL, timers
//! and per-key-group snapshots.
//!
//! # Concepts
//!
//! **Keyed state.** A keyed operator keeps state *per key*: a count per word, a session per
//! user. An operator subtask owns a [`KeyedStateStore`]. Before it calls user code for a
//! record (or a timer), the operator sets the record's key as the store's *current key*;
//! every state handle then reads and writes that key's state, so user code never passes
//! keys around (this is Flink's model).
//!
//! **Descriptors and handles.** A state is declared by a descriptor — a name, a value type
//! and an optional TTL — and opened from the store as a handle. The name is the state's
//! identity in backends, checkpoints and savepoints. Values are any serde types.
//!
//! | descriptor | handle | per key |
//! |---|---|---|
//! | [`ValueStateDescriptor<T>`] | [`ValueState`] | one `T`: `value`, `update`, `clear` |
//! | [`ListStateDescriptor<T>`] | [`ListState`] | a list: `get`, `add`, `add_all`, `update`, `clear` |
//! | [`MapStateDescriptor<K, V>`] | [`MapState`] | a map: `get`, `put`, `remove`, `contains`, `entries`, … |
//! | [`ReducingStateDescriptor<T, F>`] | [`ReducingState`] | one `T` folded with `F: Fn(T, T) -> T` |
//! | [`AggregatingStateDescriptor<IN, A>`] | [`AggregatingState`] | an [`AggregateFunction`] accumulator |
//!
//! Operators keep their own state the same way. A window keeps a [`NamespacedState`]: a
//! value per *namespace* (the window) and key, whose namespace's values are visited or
//! dropped at once when the window fires (Flink's window state).
//!
//! **Key groups.** A key's stable hash picks one of `max_parallelism` key groups
//! ([`eddy_core::key`]); a subtask owns a contiguous range of them. Every entry and every
//! timer is filed under its key group, so a checkpoint is a set of per-key-group snapshots
//! ([`KeyedStateStore::snapshot_key_group`]) that can be restored at another parallelism by
//! handing each key group to its new owner ([`KeyedStateStore::restore_key_group`]).
//!
//! **TTL.** A descriptor with a [`StateTtlConfig`] stamps every value, list element and map
//! entry with its last access; expired values are never returned, and are removed when read,
//! a few per access ([incremental cleanup](StateTtlConfig::cleanup_incrementally)) and before
//! every snapshot. Time comes from a [`Clock`]: the wall clock, or a [`ManualClock`] in tests.
//!
//! **Timers.** [`KeyedStateStore::register_timer`] files a timer for the current key in
//! event or processing time; [`KeyedStateStore::pop_due_timer`] hands them back in timestamp
//! order once due, de-duplicated, with their key made current (see [`timers`](TimerStore)).
//!
//! **Backends.** A [`StateBackend`] stores bytes: [`HeapBackend`] in memory (fastest),
//! [`SledBackend`] in a sled database on disk (for state larger than memory). Both hold the
//! same bytes in the same [key layout](backend::layout) and behave the same (one test suite
//! runs against both), so a snapshot of one restores into the other. With the heap backend
//! the store keeps timers and namespaced state as live values (no encoding on their hot
//! path); with sled it keeps them in the database too, read by ordered scans, so all of an
//! operator's keyed state can be larger than memory. Both snapshot to the same bytes.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use eddy_state::*;
//!
//! // An operator subtask's state, in memory, on a test clock. (It owns all 128 key groups;
//! // `KeyedStateStore::with_key_groups` limits a subtask to its range.)
//! let clock = ManualClock::new(0);
//! let store = KeyedStateStore::new(HeapBackend::new(128)?).with_clock(clock.clone());
//!
//! // Declared once (e.g. in an operator's `open`), used for every key.
//! let clicks = ValueStateDescriptor::<u64>::new("clicks");
//! let pages = MapStateDescriptor::<String, u32>::new("pages")
//!     .with_ttl(StateTtlConfig::new(Duration::from_secs(60)));
//! let clicks = store.value_state(&clicks)?;
//! let pages = store.map_state(&pages)?;
//!
//! // Per record: the operator sets the record's key, then user code uses state.
//! let user = "alice".to_string();
//! store.set_current_key(&user)?;
//! clicks.update(clicks.value()?.unwrap_or(0) + 1)?;
//! pages.put("/home".to_string(), 1)?;
//! store.register_timer(TimeDomain::EventTime, 30_000, &())?; // e.g. end of a window
//!
//! // A minute without writes and the page visits have expired; the click count has no TTL.
//! clock.advance(Duration::from_secs(60));
//! assert_eq!(pages.get(&"/home".to_string())?, None);
//! assert_eq!(clicks.value()?, Some(1));
//!
//! // The watermark passes 30 s: the timer fires with its key as the current key.
//! let fired = store.pop_due_timer(TimeDomain::EventTime, 30_000)?.unwrap();
//! assert_eq!(fired.key::<String>()?, user);
//!
//! // Checkpoint the key's key group and restore it into a sled-backed subtask.
//! let key_group = store.current_key_group().unwrap();
//! let snapshot = store.snapshot_key_group(key_group)?;
//! let dir = tempfile::tempdir().unwrap();
//! let restored = KeyedStateStore::new(SledBackend::open(dir.path(), 128)?);
//! restored.restore_key_group(snapshot)?;
//! restored.set_current_key(&user)?;
//! assert_eq!(restored.value_state(&ValueStateDescriptor::<u64>::new("clicks"))?.value()?, Some(1));
//! # Ok::<(), eddy_state::StateError>(())
//! ```
//!
//! # Where this differs from Flink
//!
//! - Handles return `Result`: a backend error or undecodable bytes is an [`StateError`] that
//!   names the state, never a panic.
//! - The heap backend stores user state as bincode bytes, not live objects, so both backends
//!   share one trait, one format and one test suite; an access costs one encode or decode.
//!   Namespaced state (an operator's windows) and timers are the exception: live values.
//! - Only [`NamespacedState`] has a namespace, and it is not tied to the current key; a
//!   namespace's values are one range per key group (Flink files the namespace after the
//!   key), so a window fires with one scan per key group instead of a timer per key.
//! - Timers due at the same time fire in an order that is not specified (it differs
//!   between the backends); their snapshots are the same bytes.
//! - Only `NeverReturnExpired` TTL visibility, processing-time TTL, as in Flink's default.

#![warn(missing_docs)]

mod aggregate_function;
mod aggregating;
pub mod backend;
mod cell;
mod changes;
pub mod checkpoint;
mod cleanup;
mod descriptor;
mod error;
mod list;
mod map;
mod namespaced;
mod operator_snapshot;
pub mod query;
mod reducing;
mod snapshot;
mod store;
mod stored_timers;
mod timer_service;
mod timers;
mod ttl;
mod value;

pub use aggregate_function::AggregateFunction;
pub use aggregating::AggregatingState;
pub use backend::{AnyBackend, HeapBackend, SledBackend, StateBackend};
pub use changes::{KeyedChange, OperatorChanges, StateChanges};
pub use checkpoint::{
    open_restore_path, write_snapshot, CheckpointDirectory, OperatorMetadata, SnapshotMetadata, SnapshotReader,
    StateMetadata, StoredStateKind,
};
pub use descriptor::{
    AggregatingStateDescriptor, ListStateDescriptor, MapStateDescriptor, NamespacedStateDescriptor,
    ReducingStateDescriptor, StateKind, ValueStateDescriptor,
};
pub use error::{Result, StateError};
pub use list::ListState;
pub use map::MapState;
pub use namespaced::NamespacedState;
pub use operator_snapshot::{
    KeyedEntries, ListEntries, OperatorSnapshot, Redistribution, SnapshotHeader, SnapshotKind,
};
pub use query::{QueryError, QueryRegistry, QueryableState};
pub use reducing::ReducingState;
pub use snapshot::KeyGroupSnapshot;
pub use store::{FiredTimer, KeyedStateStore, StoreChanges};
pub use timers::{TimeDomain, Timer, TimerStore};
pub use ttl::{Clock, ManualClock, StateTtlConfig, StateVisibility, SystemClock, UpdateType, DEFAULT_CLEANUP_SIZE};
pub use value::ValueState;
