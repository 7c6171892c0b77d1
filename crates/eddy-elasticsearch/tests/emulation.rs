//! The sink against an Elasticsearch 8 emulation (noida-db, started on a free loopback port
//! by `eddy-test-services`): every action kind as Elasticsearch applies it, daily indices,
//! mapping errors as dead letters, and exactly-once results in the index across injected
//! failures, an in-process restart and a restore in a new job.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eddy_elasticsearch::{
    Action, ElasticsearchSink, ElasticsearchSinkExt, FailedDocument, Operation, Refresh, DUPLICATES,
};
use eddy_stream::prelude::*;
use eddy_test_services::Service;
use serde_json::{json, Value};
use support::finishes;
use support::http::{count, create_index, documents};

/// What a test record asks the sink to do with document `id`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Index(u64, u64),
    Create(u64, u64),
    Upsert(u64, u64),
    UpdateExisting(u64, u64),
    Delete(u64),
}

fn action(op: &Op) -> serde_json::Result<Action> {
    let index = "items";
    Ok(match *op {
        Op::Index(id, n) => Action::index(index, &json!({"n": n}))?.id(id.to_string()),
        Op::Create(id, n) => Action::create(index, &json!({"n": n}))?.id(id.to_string()),
        Op::Upsert(id, tag) => Action::update(index, id.to_string(), &json!({"tag": tag}))?,
        Op::UpdateExisting(id, tag) => Action::update_existing(index, id.to_string(), &json!({"tag": tag}))?,
        Op::Delete(id) => Action::delete(index, id.to_string()),
    })
}

/// What Elasticsearch makes of `ops` applied in order: documents by id, and the ids whose
/// action must be refused (an update of a missing document).
fn model(ops: &[Op]) -> (BTreeMap<String, Value>, Vec<String>) {
    let mut docs: BTreeMap<String, Value> = BTreeMap::new();
    let mut refused = Vec::new();
    for op in ops {
        match *op {
            Op::Index(id, n) => drop(docs.insert(id.to_string(), json!({"n": n}))),
            Op::Create(id, n) => drop(docs.entry(id.to_string()).or_insert(json!({"n": n}))),
            Op::Upsert(id, tag) => {
                let doc = docs.entry(id.to_string()).or_insert(json!({}));
                doc["tag"] = json!(tag);
            }
            Op::UpdateExisting(id, tag) => match docs.get_mut(&id.to_string()) {
                Some(doc) => doc["tag"] = json!(tag),
                None => refused.push(id.to_string()),
            },
            Op::Delete(id) => drop(docs.remove(&id.to_string())),
        }
    }
    (docs, refused)
}

#[test]
fn every_action_kind_lands_as_elasticsearch_applies_it() {
    let Some(es) = Service::elasticsearch() else { return };
    create_index(&es.url(), "items", json!({"properties": {"n": {"type": "long"}, "tag": {"type": "long"}}}));
    let mut rng = fastrand::Rng::with_seed(11);
    let ops: Vec<Op> = (0..600)
        .map(|_| {
            let (id, value) = (rng.u64(0..60), rng.u64(0..1000));
            match rng.u8(0..5) {
                0 => Op::Index(id, value),
                1 => Op::Create(id, value),
                2 => Op::Upsert(id, value),
                3 => Op::UpdateExisting(id, value),
                _ => Op::Delete(id),
            }
        })
        .collect();
    let (expected, refused) = model(&ops);
    let creates_of_existing = {
        let mut seen = std::collections::BTreeSet::new();
        let mut n = 0;
        for op in &ops {
            match *op {
                Op::Index(id, _) | Op::Upsert(id, _) => drop(seen.insert(id)),
                Op::Create(id, _) => n += u64::from(!seen.insert(id)),
                Op::UpdateExisting(..) => {}
                Op::Delete(id) => drop(seen.remove(&id)),
            }
        }
        n
    };
    let sink = ElasticsearchSink::builder(es.url(), action)
        .bulk_flush_max_actions(37)
        .refresh(Refresh::Immediately)
        .build()
        .unwrap();
    let input = ops.clone();
    let (result, failed) = finishes(move || {
        let env = StreamEnvironment::new();
        env.set_parallelism(1);
        let failed = env.from_iter(input).sink_to_elasticsearch(sink).collect();
        (env.execute("actions").unwrap().wait().unwrap(), failed.take())
    });
    let got: BTreeMap<String, Value> = documents(&es.url(), "items").into_iter().collect();
    assert_eq!(got, expected);
    let mut failed_ids: Vec<String> = failed.iter().map(|f| f.id.clone().unwrap()).collect();
    let mut refused = refused;
    failed_ids.sort();
    refused.sort();
    assert_eq!(failed_ids, refused, "updates of missing documents are dead letters");
    assert!(failed.iter().all(|f| f.status == Some(404) && f.error_type == "document_missing_exception"));
    assert_eq!(result.metrics.total("Sink: Elasticsearch", DUPLICATES), creates_of_existing);
}

/// An event on day `day` (days since the epoch) with a value that may not fit the mapping.
#[derive(Debug, Clone, PartialEq)]
struct Reading {
    id: u64,
    day: i64,
    value: Value,
}

#[test]
fn daily_indices_from_the_record_and_mapping_errors_as_dead_letters() {
    let Some(es) = Service::elasticsearch() else { return };
    for day in 0..3 {
        create_index(&es.url(), &format!("readings-{day}"), json!({"properties": {"value": {"type": "long"}}}));
    }
    let readings: Vec<Reading> = (0..90)
        .map(|id| Reading {
            id,
            day: (id % 3) as i64,
            value: if id % 10 == 9 { json!(format!("n/a {id}")) } else { json!(id * 2) },
        })
        .collect();
    let sink = ElasticsearchSink::builder(es.url(), |r: &Reading| {
        Action::index(format!("readings-{}", r.day), &json!({"value": r.value})).map(|a| a.id(r.id.to_string()))
    })
    .bulk_flush_max_actions(25)
    .refresh(Refresh::Immediately)
    .build()
    .unwrap();
    let input = readings.clone();
    let failed: Vec<FailedDocument> = finishes(move || {
        let env = StreamEnvironment::new();
        env.set_parallelism(2);
        let failed = env.from_iter(input).rebalance().sink_to_elasticsearch(sink).collect();
        env.execute("readings").unwrap().wait().unwrap();
        failed.take()
    });
    for day in 0..3 {
        let expected: Vec<(String, Value)> = {
            let mut docs: Vec<_> = readings
                .iter()
                .filter(|r| r.day == day && r.value.is_u64())
                .map(|r| (r.id.to_string(), json!({"value": r.value})))
                .collect();
            docs.sort_by(|a, b| a.0.cmp(&b.0));
            docs
        };
        assert_eq!(documents(&es.url(), &format!("readings-{day}")), expected, "day {day}");
    }
    let mut failed = failed;
    failed.sort_by_key(|f| f.id.clone().unwrap().parse::<u64>().unwrap());
    let refused: Vec<&Reading> = readings.iter().filter(|r| !r.value.is_u64()).collect();
    assert_eq!(failed.len(), refused.len());
    for (letter, reading) in failed.iter().zip(refused) {
        assert_eq!(letter.action, Some(Operation::Index));
        assert_eq!(letter.index, format!("readings-{}", reading.day));
        assert_eq!(letter.id, Some(reading.id.to_string()));
        assert_eq!(letter.status, Some(400));
        assert_eq!(letter.error_type, "document_parsing_exception");
        assert!(letter.reason.contains("failed to parse field [value]"), "{}", letter.reason);
        let document: Value = serde_json::from_str(letter.document.as_deref().unwrap()).unwrap();
        assert_eq!(document, json!({"value": reading.value}));
    }
}

const KEYS: u64 = 13;

/// Panics once at each chosen record index.
struct Faults(Vec<(u64, AtomicBool)>);

impl Faults {
    fn at(points: &[u64]) -> Arc<Faults> {
        Arc::new(Faults(points.iter().map(|&i| (i, AtomicBool::new(false))).collect()))
    }

    fn check(&self, i: u64) {
        for (at, fired) in &self.0 {
            if *at == i && !fired.swap(true, Ordering::SeqCst) {
                panic!("injected failure at record {i}");
            }
        }
    }
}

/// The job: numbers 0..count (throttled to about 10 per ms, so many checkpoints complete
/// before the first failure) through a map that may
/// panic; each number is a document in `events` (id = the number), and a running count per
/// key (`n % KEYS`) is upserted into `totals` (id = the key).
fn build(env: &StreamEnvironment, url: &str, count: u64, faults: Arc<Faults>) -> Collected<FailedDocument> {
    let numbers = env
        .generate(Some(count), |i| {
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
            i
        })
        .uid("numbers")
        .map(move |i| {
            faults.check(i);
            i
        });
    let events = ElasticsearchSink::builder(url, |i: &u64| {
        Action::index("events", &json!({"n": i, "square": i * i})).map(|a| a.id(i.to_string()))
    })
    .bulk_flush_max_actions(200)
    .refresh(Refresh::Immediately)
    .build()
    .unwrap();
    let totals = ElasticsearchSink::builder(url, |(key, total): &(u64, u64)| {
        Action::update("totals", key.to_string(), &json!({"key": key, "total": total}))
    })
    .bulk_flush_max_actions(200)
    .refresh(Refresh::Immediately)
    .build()
    .unwrap();
    let failed = numbers.sink_to_elasticsearch(events);
    let running = numbers.map(|i| (i % KEYS, 1u64)).key_by(|t: &(u64, u64)| t.0).sum(|t| &mut t.1).uid("totals");
    failed.union(&[running.sink_to_elasticsearch(totals)]).collect()
}

fn env(checkpoints: &Path, restart: RestartStrategy) -> StreamEnvironment {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)).dir(checkpoints));
    env.set_restart_strategy(restart);
    env
}

#[test]
fn failures_a_restart_and_a_restore_leave_each_result_once_with_its_final_value() {
    let Some(es) = Service::elasticsearch() else { return };
    let count = 6_000;
    let dir = tempfile::tempdir().unwrap();
    let url = es.url();
    // First job: a failure the restart strategy absorbs, then one that ends the job.
    let (first, failed) = finishes({
        let (url, dir) = (url.clone(), dir.path().to_path_buf());
        move || {
            let env = env(&dir, RestartStrategy::FixedDelay { attempts: 1, delay: Duration::ZERO });
            let failed = build(&env, &url, count, Faults::at(&[1_500, 4_000]));
            (env.execute("first").unwrap().wait(), failed.take())
        }
    });
    let error = first.expect_err("the second failure ends the first job").to_string();
    assert!(error.contains("injected failure at record 4000"), "{error}");
    assert!(failed.is_empty(), "{failed:?}");
    let partial = count_or_zero(&url, "events");
    assert!(partial > 0 && partial < count, "the first job wrote {partial} of {count} events");
    // Second job: a new environment restored from the first job's newest checkpoint.
    let failed = finishes({
        let (url, dir) = (url.clone(), dir.path().to_path_buf());
        move || {
            let env = env(&dir, RestartStrategy::None);
            env.restore_from(&dir);
            let failed = build(&env, &url, count, Faults::at(&[]));
            env.execute("second").unwrap().wait().unwrap();
            failed.take()
        }
    });
    assert!(failed.is_empty(), "{failed:?}");
    let events = documents(&url, "events");
    let expected: Vec<(String, Value)> = {
        let mut docs: Vec<_> = (0..count).map(|i| (i.to_string(), json!({"n": i, "square": i * i}))).collect();
        docs.sort_by(|a, b| a.0.cmp(&b.0));
        docs
    };
    assert_eq!(events.len(), expected.len(), "each event once");
    assert_eq!(events, expected);
    let totals: BTreeMap<String, Value> = documents(&url, "totals").into_iter().collect();
    let model: BTreeMap<String, Value> = (0..KEYS)
        .map(|key| (key.to_string(), json!({"key": key, "total": (0..count).filter(|i| i % KEYS == key).count()})))
        .collect();
    assert_eq!(totals, model, "each key's final running count, written once");
}

/// Documents in `index`, or 0 before it exists.
fn count_or_zero(url: &str, index: &str) -> u64 {
    match support::http::call(url, "GET", &format!("/{index}/_count"), None) {
        (404, _) => 0,
        _ => count(url, index),
    }
}
