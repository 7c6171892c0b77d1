//! State descriptors: a state's name, value type and optional TTL — what a handle is opened by.
//!
//! The name is the state's identity: it is written into every backend key and snapshot
//! entry, so it must stay the same across versions of a job for a savepoint to restore.
//! Opening a name again with another kind, type or TTL is an error
//! ([`StateError::KindMismatch`](crate::StateError::KindMismatch) and friends).

use std::fmt;
use std::marker::PhantomData;

use crate::ttl::StateTtlConfig;

/// The kinds of keyed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateKind {
    /// One value per key ([`ValueState`](crate::ValueState)).
    Value,
    /// A list per key ([`ListState`](crate::ListState)).
    List,
    /// A map per key ([`MapState`](crate::MapState)).
    Map,
    /// A value folded with a reduce function ([`ReducingState`](crate::ReducingState)).
    Reducing,
    /// An accumulator of an aggregate function ([`AggregatingState`](crate::AggregatingState)).
    Aggregating,
    /// Values per namespace and key ([`NamespacedState`](crate::NamespacedState)).
    Namespaced,
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateKind::Value => "value",
            StateKind::List => "list",
            StateKind::Map => "map",
            StateKind::Reducing => "reducing",
            StateKind::Aggregating => "aggregating",
            StateKind::Namespaced => "namespaced",
        })
    }
}

/// The part every descriptor shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    pub(crate) name: String,
    pub(crate) ttl: Option<StateTtlConfig>,
}

/// Adds the name and TTL accessors every descriptor has.
macro_rules! common_accessors {
    () => {
        /// The state's name, its identity in backends and snapshots.
        pub fn name(&self) -> &str {
            &self.spec.name
        }

        /// The TTL, if values of this state expire.
        pub fn ttl(&self) -> Option<&StateTtlConfig> {
            self.spec.ttl.as_ref()
        }

        /// Lets values of this state expire (see [`StateTtlConfig`]).
        pub fn with_ttl(mut self, ttl: StateTtlConfig) -> Self {
            self.spec.ttl = Some(ttl);
            self
        }
    };
}

/// Describes a [`ValueState<T>`](crate::ValueState): one `T` per key.
pub struct ValueStateDescriptor<T> {
    pub(crate) spec: Spec,
    _type: PhantomData<fn() -> T>,
}

impl<T> ValueStateDescriptor<T> {
    /// A value state called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        ValueStateDescriptor { spec: Spec { name: name.into(), ttl: None }, _type: PhantomData }
    }

    common_accessors!();
}

/// Describes a [`ListState<T>`](crate::ListState): a list of `T` per key.
pub struct ListStateDescriptor<T> {
    pub(crate) spec: Spec,
    _type: PhantomData<fn() -> T>,
}

impl<T> ListStateDescriptor<T> {
    /// A list state called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        ListStateDescriptor { spec: Spec { name: name.into(), ttl: None }, _type: PhantomData }
    }

    common_accessors!();
}

/// Describes a [`MapState<K, V>`](crate::MapState): a map from `K` to `V` per key.
pub struct MapStateDescriptor<K, V> {
    pub(crate) spec: Spec,
    _type: PhantomData<fn() -> (K, V)>,
}

impl<K, V> MapStateDescriptor<K, V> {
    /// A map state called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        MapStateDescriptor { spec: Spec { name: name.into(), ttl: None }, _type: PhantomData }
    }

    common_accessors!();
}

/// Describes a [`ReducingState<T>`](crate::ReducingState): one `T` per key, folded with `reduce`.
pub struct ReducingStateDescriptor<T, F> {
    pub(crate) spec: Spec,
    pub(crate) reduce: F,
    _type: PhantomData<fn() -> T>,
}

impl<T, F: Fn(T, T) -> T> ReducingStateDescriptor<T, F> {
    /// A reducing state called `name`; `reduce(stored, added)` folds each added value in.
    pub fn new(name: impl Into<String>, reduce: F) -> Self {
        ReducingStateDescriptor { spec: Spec { name: name.into(), ttl: None }, reduce, _type: PhantomData }
    }

    common_accessors!();
}

/// Describes an [`AggregatingState`](crate::AggregatingState): one accumulator of
/// `aggregate` per key, fed with `IN` values.
pub struct AggregatingStateDescriptor<IN, A> {
    pub(crate) spec: Spec,
    pub(crate) aggregate: A,
    _type: PhantomData<fn(IN)>,
}

impl<IN, A: crate::AggregateFunction<IN>> AggregatingStateDescriptor<IN, A> {
    /// An aggregating state called `name` that keeps `aggregate`'s accumulator.
    pub fn new(name: impl Into<String>, aggregate: A) -> Self {
        AggregatingStateDescriptor { spec: Spec { name: name.into(), ttl: None }, aggregate, _type: PhantomData }
    }

    common_accessors!();
}

/// Describes a [`NamespacedState<N, K, V>`](crate::NamespacedState): a `V` per namespace
/// `N` (a window, say) and key `K`. It has no TTL: an operator removes a namespace's values
/// itself (a window's when it fires).
pub struct NamespacedStateDescriptor<N, K, V> {
    pub(crate) spec: Spec,
    _type: Types<N, K, V>,
}

/// The types a namespaced state holds (no values of them).
pub(crate) type Types<N, K, V> = PhantomData<fn() -> (N, K, V)>;

impl<N, K, V> NamespacedStateDescriptor<N, K, V> {
    /// A namespaced state called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        NamespacedStateDescriptor { spec: Spec { name: name.into(), ttl: None }, _type: PhantomData }
    }

    /// The state's name, its identity in backends and snapshots.
    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

/// Debug and Clone without bounds on the phantom value types.
macro_rules! impl_debug_clone {
    ($name:ident < $($p:ident),* >) => {
        impl<$($p),*> fmt::Debug for $name<$($p),*> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("name", &self.spec.name).field("ttl", &self.spec.ttl).finish()
            }
        }
        impl<$($p),*> Clone for $name<$($p),*> {
            fn clone(&self) -> Self {
                $name { spec: self.spec.clone(), _type: PhantomData }
            }
        }
    };
}
impl_debug_clone!(ValueStateDescriptor<T>);
impl_debug_clone!(ListStateDescriptor<T>);
impl_debug_clone!(MapStateDescriptor<K, V>);
impl_debug_clone!(NamespacedStateDescriptor<N, K, V>);

impl<T, F> fmt::Debug for ReducingStateDescriptor<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReducingStateDescriptor").field("name", &self.spec.name).field("ttl", &self.spec.ttl).finish()
    }
}

impl<T, F: Clone> Clone for ReducingStateDescriptor<T, F> {
    fn clone(&self) -> Self {
        ReducingStateDescriptor { spec: self.spec.clone(), reduce: self.reduce.clone(), _type: PhantomData }
    }
}

impl<IN, A> fmt::Debug for AggregatingStateDescriptor<IN, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AggregatingStateDescriptor")
            .field("name", &self.spec.name)
            .field("ttl", &self.spec.ttl)
            .finish()
    }
}

impl<IN, A: Clone> Clone for AggregatingStateDescriptor<IN, A> {
    fn clone(&self) -> Self {
        AggregatingStateDescriptor { spec: self.spec.clone(), aggregate: self.aggregate.clone(), _type: PhantomData }
    }
}
