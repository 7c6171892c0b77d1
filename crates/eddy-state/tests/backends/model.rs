//! Every state kind against the obvious model: a `HashMap` from key to plain Rust values.

use std::collections::{BTreeMap, HashMap};

use eddy_state::{
    AggregateFunction, AggregatingStateDescriptor, KeyedStateStore, ListStateDescriptor, MapStateDescriptor,
    ReducingStateDescriptor, ValueStateDescriptor,
};
use proptest::prelude::*;

use crate::fixture::{runner, Fixture};

/// Sum and count of the values added.
#[derive(Clone)]
pub struct SumCount;

impl AggregateFunction<i32> for SumCount {
    type Acc = (i64, u32);
    type Out = (i64, u32);
    fn create_accumulator(&self) -> (i64, u32) {
        (0, 0)
    }
    fn add(&self, acc: &mut (i64, u32), value: i32) {
        acc.0 += i64::from(value);
        acc.1 += 1;
    }
    fn get_result(&self, acc: (i64, u32)) -> (i64, u32) {
        acc
    }
    fn merge(&self, acc: &mut (i64, u32), other: (i64, u32)) {
        acc.0 += other.0;
        acc.1 += other.1;
    }
}

#[derive(Debug, Clone)]
enum Op {
    SetKey(u8),
    ValueUpdate(i32),
    ValueGet,
    ValueClear,
    ListAdd(i32),
    ListAddAll(Vec<i32>),
    ListUpdate(Vec<i32>),
    ListGet,
    ListClear,
    MapPut(u8, String),
    MapGet(u8),
    MapContains(u8),
    MapRemove(u8),
    MapEntries,
    MapIsEmpty,
    MapClear,
    ReduceAdd(i64),
    ReduceGet,
    ReduceClear,
    AggregateAdd(i32),
    AggregateGet,
    AggregateClear,
}

fn op() -> impl Strategy<Value = Op> {
    let small = proptest::collection::vec(any::<i32>(), 0..4);
    prop_oneof![
        3 => (0u8..6).prop_map(Op::SetKey),
        1 => any::<i32>().prop_map(Op::ValueUpdate),
        1 => Just(Op::ValueGet),
        1 => Just(Op::ValueClear),
        1 => any::<i32>().prop_map(Op::ListAdd),
        1 => small.clone().prop_map(Op::ListAddAll),
        1 => small.prop_map(Op::ListUpdate),
        1 => Just(Op::ListGet),
        1 => Just(Op::ListClear),
        2 => (0u8..8, "[a-z]{0,12}").prop_map(|(k, v)| Op::MapPut(k, v)),
        1 => (0u8..8).prop_map(Op::MapGet),
        1 => (0u8..8).prop_map(Op::MapContains),
        1 => (0u8..8).prop_map(Op::MapRemove),
        1 => Just(Op::MapEntries),
        1 => Just(Op::MapIsEmpty),
        1 => Just(Op::MapClear),
        1 => (-1000i64..1000).prop_map(Op::ReduceAdd),
        1 => Just(Op::ReduceGet),
        1 => Just(Op::ReduceClear),
        1 => any::<i32>().prop_map(Op::AggregateAdd),
        1 => Just(Op::AggregateGet),
        1 => Just(Op::AggregateClear),
    ]
}

/// One key's state in the model.
#[derive(Debug, Default)]
struct Model {
    value: Option<i32>,
    list: Vec<i32>,
    map: BTreeMap<u8, String>,
    reduced: Option<i64>,
    aggregate: Option<(i64, u32)>,
}

/// The key for model key number `n` (strings, so keys land in different key groups).
fn key(n: u8) -> String {
    format!("customer-{n}")
}

/// Random operation sequences over six keys give the same results as the model, and each
/// key sees only its own state.
pub fn every_state_kind_matches_a_model_across_keys<F: Fixture>() {
    let ops = proptest::collection::vec(op(), 1..80);
    runner::<F>()
        .run(&ops, |ops| {
            let (backend, _dir) = F::open(128);
            let store = KeyedStateStore::new(backend);
            let value = store.value_state(&ValueStateDescriptor::<i32>::new("value")).unwrap();
            let list = store.list_state(&ListStateDescriptor::<i32>::new("list")).unwrap();
            let map = store.map_state(&MapStateDescriptor::<u8, String>::new("map")).unwrap();
            let sum = ReducingStateDescriptor::new("sum", |a: i64, b: i64| a + b);
            let reducing = store.reducing_state(&sum).unwrap();
            let sum_count = AggregatingStateDescriptor::new("sum-count", SumCount);
            let aggregating = store.aggregating_state(&sum_count).unwrap();

            let mut models: HashMap<u8, Model> = HashMap::new();
            let mut current = 0u8;
            store.set_current_key(&key(current)).unwrap();
            for op in ops {
                let model = models.entry(current).or_default();
                match op {
                    Op::SetKey(n) => {
                        current = n;
                        store.set_current_key(&key(n)).unwrap();
                    }
                    Op::ValueUpdate(v) => {
                        value.update(v).unwrap();
                        model.value = Some(v);
                    }
                    Op::ValueGet => prop_assert_eq!(value.value().unwrap(), model.value),
                    Op::ValueClear => {
                        value.clear().unwrap();
                        model.value = None;
                    }
                    Op::ListAdd(v) => {
                        list.add(v).unwrap();
                        model.list.push(v);
                    }
                    Op::ListAddAll(vs) => {
                        list.add_all(&vs).unwrap();
                        model.list.extend(vs);
                    }
                    Op::ListUpdate(vs) => {
                        list.update(&vs).unwrap();
                        model.list = vs;
                    }
                    Op::ListGet => prop_assert_eq!(list.get().unwrap(), model.list.clone()),
                    Op::ListClear => {
                        list.clear().unwrap();
                        model.list.clear();
                    }
                    Op::MapPut(k, v) => {
                        map.put(k, &v).unwrap();
                        model.map.insert(k, v);
                    }
                    Op::MapGet(k) => prop_assert_eq!(map.get(&k).unwrap(), model.map.get(&k).cloned()),
                    Op::MapContains(k) => prop_assert_eq!(map.contains(&k).unwrap(), model.map.contains_key(&k)),
                    Op::MapRemove(k) => {
                        map.remove(&k).unwrap();
                        model.map.remove(&k);
                    }
                    Op::MapEntries => {
                        let mut entries: Vec<(u8, String)> = map.entries().unwrap().map(Result::unwrap).collect();
                        entries.sort();
                        let expected: Vec<(u8, String)> = model.map.clone().into_iter().collect();
                        prop_assert_eq!(&entries, &expected);
                        let mut keys: Vec<u8> = map.keys().unwrap().map(Result::unwrap).collect();
                        keys.sort();
                        prop_assert_eq!(keys, model.map.keys().copied().collect::<Vec<_>>());
                        let mut values: Vec<String> = map.values().unwrap().map(Result::unwrap).collect();
                        values.sort();
                        let mut expected_values: Vec<String> = model.map.values().cloned().collect();
                        expected_values.sort();
                        prop_assert_eq!(values, expected_values);
                    }
                    Op::MapIsEmpty => prop_assert_eq!(map.is_empty().unwrap(), model.map.is_empty()),
                    Op::MapClear => {
                        map.clear().unwrap();
                        model.map.clear();
                    }
                    Op::ReduceAdd(v) => {
                        reducing.add(v).unwrap();
                        model.reduced = Some(model.reduced.map_or(v, |old| old + v));
                    }
                    Op::ReduceGet => prop_assert_eq!(reducing.get().unwrap(), model.reduced),
                    Op::ReduceClear => {
                        reducing.clear().unwrap();
                        model.reduced = None;
                    }
                    Op::AggregateAdd(v) => {
                        aggregating.add(v).unwrap();
                        let (sum, count) = model.aggregate.unwrap_or((0, 0));
                        model.aggregate = Some((sum + i64::from(v), count + 1));
                    }
                    Op::AggregateGet => prop_assert_eq!(aggregating.get().unwrap(), model.aggregate),
                    Op::AggregateClear => {
                        aggregating.clear().unwrap();
                        model.aggregate = None;
                    }
                }
            }
            // Finally every key, read back in full.
            for (n, model) in &models {
                store.set_current_key(&key(*n)).unwrap();
                prop_assert_eq!(value.value().unwrap(), model.value);
                prop_assert_eq!(list.get().unwrap(), model.list.clone());
                let mut entries: Vec<(u8, String)> = map.entries().unwrap().map(Result::unwrap).collect();
                entries.sort();
                prop_assert_eq!(entries, model.map.clone().into_iter().collect::<Vec<_>>());
                prop_assert_eq!(reducing.get().unwrap(), model.reduced);
                prop_assert_eq!(aggregating.get().unwrap(), model.aggregate);
            }
            Ok(())
        })
        .unwrap();
}

/// A handle opened once serves every key (Flink's "get the state in open()"), and opening
/// the same descriptor again gives the same state.
pub fn handles_opened_once_follow_the_current_key<F: Fixture>() {
    let (backend, _dir) = F::open(128);
    let store = KeyedStateStore::new(backend);
    let descriptor = ValueStateDescriptor::<u64>::new("count");
    let count = store.value_state(&descriptor).unwrap();
    for word in ["a", "b", "a", "c", "a", "b"] {
        store.set_current_key(word).unwrap();
        count.update(count.value().unwrap().unwrap_or(0) + 1).unwrap();
    }
    let again = store.value_state(&descriptor).unwrap();
    for (word, expected) in [("a", 3), ("b", 2), ("c", 1), ("d", 0)] {
        store.set_current_key(word).unwrap();
        assert_eq!(again.value().unwrap().unwrap_or(0), expected, "{word}");
    }
    // A String key and a &str key with the same text are the same key.
    store.set_current_key(&String::from("a")).unwrap();
    assert_eq!(count.value().unwrap(), Some(3));
    assert_eq!(store.current_key::<String>().unwrap().as_deref(), Some("a"));
}

/// A map larger than one fetch chunk iterates completely, and the loop body may read and
/// write state (and switch keys) while iterating.
pub fn map_iteration_spans_chunks_and_tolerates_state_use_in_the_loop<F: Fixture>() {
    let (backend, _dir) = F::open(128);
    let store = KeyedStateStore::new(backend);
    let map = store.map_state(&MapStateDescriptor::<u32, u32>::new("squares")).unwrap();
    let seen = store.value_state(&ValueStateDescriptor::<u32>::new("seen")).unwrap();
    store.set_current_key("big").unwrap();
    for i in 0..1000u32 {
        map.put(i, i * i).unwrap();
    }
    store.set_current_key("other").unwrap();
    map.put(7, 0).unwrap();
    store.set_current_key("big").unwrap();
    let mut total = 0;
    for entry in map.entries().unwrap() {
        let (k, v) = entry.unwrap();
        assert_eq!(v, k * k);
        total += 1;
        // Using state inside the loop, even for another key, does not disturb the iterator.
        store.set_current_key("other").unwrap();
        seen.update(total).unwrap();
    }
    assert_eq!(total, 1000);
    store.set_current_key("other").unwrap();
    assert_eq!(seen.value().unwrap(), Some(1000));
    assert_eq!(map.keys().unwrap().count(), 1);
    store.set_current_key("big").unwrap();
    map.clear().unwrap();
    assert!(map.is_empty().unwrap());
    store.set_current_key("other").unwrap();
    assert_eq!(map.get(&7).unwrap(), Some(0));
}
