//! Timers: firing order, de-duplication, deletion, and the current key when one fires.

use std::collections::BTreeSet;

use eddy_state::{KeyedStateStore, TimeDomain};
use proptest::prelude::*;

use crate::fixture::{runner, Fixture};

#[derive(Debug, Clone)]
enum Op {
    Register(TimeDomain, u8, i64),
    Delete(TimeDomain, u8, i64),
    Fire(TimeDomain, i64),
}

fn domain() -> impl Strategy<Value = TimeDomain> {
    prop_oneof![Just(TimeDomain::EventTime), Just(TimeDomain::ProcessingTime)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (domain(), 0u8..6, 0i64..50).prop_map(|(d, k, t)| Op::Register(d, k, t)),
        1 => (domain(), 0u8..6, 0i64..50).prop_map(|(d, k, t)| Op::Delete(d, k, t)),
        1 => (domain(), 0i64..60).prop_map(|(d, t)| Op::Fire(d, t)),
    ]
}

/// Timers under random registrations, deletions and firings match a sorted set of
/// (domain, timestamp, key): due ones fire in timestamp order, each once.
pub fn due_timers_fire_in_order_once_each_like_a_model<F: Fixture>() {
    runner::<F>()
        .run(&proptest::collection::vec(op(), 1..100), |ops| {
            let (backend, _dir) = F::open(32);
            let store = KeyedStateStore::new(backend);
            let mut model: BTreeSet<(bool, i64, String)> = BTreeSet::new();
            let is_event = |d: TimeDomain| d == TimeDomain::EventTime;
            for op in ops {
                match op {
                    Op::Register(d, k, t) => {
                        let key = format!("device-{k}");
                        store.set_current_key(&key).unwrap();
                        let added = store.register_timer(d, t, &()).unwrap();
                        prop_assert_eq!(added, model.insert((is_event(d), t, key)));
                    }
                    Op::Delete(d, k, t) => {
                        let key = format!("device-{k}");
                        store.set_current_key(&key).unwrap();
                        let removed = store.delete_timer(d, t, &()).unwrap();
                        prop_assert_eq!(removed, model.remove(&(is_event(d), t, key)));
                    }
                    Op::Fire(d, up_to) => {
                        let mut fired = Vec::new();
                        while let Some(timer) = store.pop_due_timer(d, up_to).unwrap() {
                            let key: String = timer.key().unwrap();
                            prop_assert_eq!(store.current_key::<String>().unwrap(), Some(key.clone()));
                            fired.push((timer.timer.timestamp, key));
                        }
                        let mut expected: Vec<(i64, String)> = model
                            .iter()
                            .filter(|(e, t, _)| *e == is_event(d) && *t <= up_to)
                            .map(|(_, t, k)| (*t, k.clone()))
                            .collect();
                        model.retain(|(e, t, _)| !(*e == is_event(d) && *t <= up_to));
                        // Same set, and timestamps never go backwards.
                        prop_assert!(fired.windows(2).all(|w| w[0].0 <= w[1].0), "{:?}", fired);
                        fired.sort();
                        expected.sort();
                        prop_assert_eq!(fired, expected);
                    }
                }
                for d in [TimeDomain::EventTime, TimeDomain::ProcessingTime] {
                    let next = model.iter().filter(|(e, _, _)| *e == is_event(d)).map(|(_, t, _)| *t).min();
                    prop_assert_eq!(store.next_timer(d).unwrap(), next);
                    let count = model.iter().filter(|(e, _, _)| *e == is_event(d)).count();
                    prop_assert_eq!(store.timer_count(d).unwrap(), count);
                }
            }
            Ok(())
        })
        .unwrap();
}

/// The same timer registered twice fires once; a deleted one never; namespaces keep timers
/// of one key apart; firing makes the timer's key current.
pub fn timers_are_deduplicated_deletable_and_set_the_current_key<F: Fixture>() {
    let (backend, _dir) = F::open(128);
    let store = KeyedStateStore::new(backend);
    let event = TimeDomain::EventTime;
    store.set_current_key("alice").unwrap();
    assert!(store.register_timer(event, 20, &()).unwrap());
    assert!(!store.register_timer(event, 20, &()).unwrap(), "same key and time: one timer");
    assert!(store.register_timer(event, 10, &()).unwrap());
    // A window namespace: the same key and time in two windows are two timers.
    assert!(store.register_timer(event, 30, &(0i64, 30i64)).unwrap());
    assert!(store.register_timer(event, 30, &(30i64, 60i64)).unwrap());
    store.set_current_key("bob").unwrap();
    assert!(store.register_timer(event, 20, &()).unwrap());
    assert!(store.register_timer(event, 5, &()).unwrap());
    assert!(store.delete_timer(event, 5, &()).unwrap());
    assert!(!store.delete_timer(event, 5, &()).unwrap());
    assert!(store.register_timer(TimeDomain::ProcessingTime, 1, &()).unwrap());

    let fire = |up_to| {
        let mut fired = Vec::new();
        while let Some(timer) = store.pop_due_timer(event, up_to).unwrap() {
            let key: String = store.current_key().unwrap().unwrap();
            assert_eq!(key, timer.key::<String>().unwrap());
            fired.push((timer.timer.timestamp, key));
        }
        fired
    };
    assert_eq!(fire(9), []);
    assert_eq!(fire(10), [(10, "alice".to_string())]);
    let at_20 = fire(25);
    assert_eq!(at_20.len(), 2);
    assert!(at_20.iter().all(|(t, _)| *t == 20));
    let windows: Vec<(i64, i64)> = std::iter::from_fn(|| store.pop_due_timer(event, i64::MAX).unwrap())
        .map(|timer| timer.namespace().unwrap())
        .collect();
    assert_eq!(windows.len(), 2);
    assert!(windows.contains(&(0, 30)) && windows.contains(&(30, 60)));
    assert_eq!(store.next_timer(event).unwrap(), None);
    assert_eq!(store.next_timer(TimeDomain::ProcessingTime).unwrap(), Some(1));
}
