//! What the Kinesis tests share: a moto server, an SDK client for setting streams up, and
//! the model of a stream (every record of every shard, read directly).

#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use aws_sdk_kinesis::Client;
use eddy_kinesis::{KinesisRecord, KinesisSource, KinesisSourceBuilder};
use eddy_test_services::{Service, ACCESS_KEY, REGION, SECRET_KEY};

pub mod throttling_proxy;

/// A record as the tests see it: where it was and what it held.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seen {
    pub shard: String,
    pub sequence: String,
    pub data: String,
}

/// Blocks on an SDK call (the tests' own runtime, not the connector's).
pub fn block<F: Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Runtime::new().unwrap()).block_on(future)
}

/// A client for `endpoint` to create streams and put records with.
pub fn client(endpoint: &str) -> Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(config)
}

/// moto, or `None` after a loud note (a failure under CI).
pub fn moto() -> Option<(Service, Client)> {
    let service = Service::moto()?;
    let client = client(&service.url());
    Some((service, client))
}

/// A source of `stream` at `endpoint` that yields every record as a [`Seen`], polling fast
/// (moto answers in milliseconds).
pub fn seen_source(endpoint: &str, stream: &str) -> KinesisSourceBuilder<Seen> {
    quick(KinesisSource::builder(stream).endpoint(endpoint)).deserialize_with(|r: &KinesisRecord<'_>| {
        Ok(Seen {
            shard: r.shard.to_string(),
            sequence: r.sequence_number.to_string(),
            data: String::from_utf8(r.data.to_vec())?,
        })
    })
}

/// Test settings: moto's region and credentials, short intervals.
pub fn quick<T: 'static>(builder: KinesisSourceBuilder<T>) -> KinesisSourceBuilder<T> {
    builder
        .region(REGION)
        .credentials(ACCESS_KEY, SECRET_KEY)
        .get_records_interval(Duration::from_millis(20))
        .shard_discovery_interval(Duration::from_millis(100))
}

pub fn create_stream(client: &Client, stream: &str, shards: i32) {
    block(client.create_stream().stream_name(stream).shard_count(shards).send()).expect("create stream");
}

/// Puts `(partition key, data)` records, 500 a call.
pub fn put(client: &Client, stream: &str, records: &[(String, String)]) {
    for chunk in records.chunks(500) {
        let entries = chunk.iter().map(|(key, data)| {
            PutRecordsRequestEntry::builder().partition_key(key).data(Blob::new(data.as_bytes())).build().unwrap()
        });
        let answer = block(client.put_records().stream_name(stream).set_records(Some(entries.collect())).send())
            .expect("put records");
        assert_eq!(answer.failed_record_count(), Some(0));
    }
}

/// Puts records straight into shard `shard` of a stream created with `shards` shards (moto
/// splits the hash key space evenly), whatever shards were split since.
pub fn put_into(client: &Client, stream: &str, shards: u32, shard: u32, data: &[String]) {
    // Well inside the shard's range: moto's ranges end one short of where they say.
    let step = u128::MAX / shards as u128;
    let key = (step * shard as u128 + step / 2).to_string();
    for chunk in data.chunks(500) {
        let entries = chunk.iter().map(|data| {
            PutRecordsRequestEntry::builder()
                .partition_key("explicit")
                .explicit_hash_key(&key)
                .data(Blob::new(data.as_bytes()))
                .build()
                .unwrap()
        });
        block(client.put_records().stream_name(stream).set_records(Some(entries.collect())).send()).expect("put");
    }
}

/// `n` records `prefix-i` with 40 partition keys.
pub fn records(prefix: &str, n: usize) -> Vec<(String, String)> {
    (0..n).map(|i| (format!("key-{}", i % 40), format!("{prefix}-{i}"))).collect()
}

/// The model: every record of every shard, read directly from the start.
pub fn read_all(client: &Client, stream: &str) -> Vec<Seen> {
    model(client, stream).into_iter().map(|(seen, _)| seen).collect()
}

/// Every record of every shard with its arrival time, ms since the epoch.
pub fn model(client: &Client, stream: &str) -> Vec<(Seen, i64)> {
    let shards = block(client.list_shards().stream_name(stream).send()).expect("list shards");
    let mut all = Vec::new();
    for shard in shards.shards() {
        let id = shard.shard_id();
        let iterator = block(
            client
                .get_shard_iterator()
                .stream_name(stream)
                .shard_id(id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send(),
        )
        .expect("iterator");
        let mut iterator = iterator.shard_iterator().map(str::to_string);
        while let Some(current) = iterator {
            let answer = block(client.get_records().shard_iterator(current).send()).expect("get records");
            if answer.records().is_empty() {
                break;
            }
            for r in answer.records() {
                let data = String::from_utf8(r.data().as_ref().to_vec()).unwrap();
                let arrival = r.approximate_arrival_timestamp().unwrap().to_millis().unwrap();
                all.push((Seen { shard: id.to_string(), sequence: r.sequence_number().to_string(), data }, arrival));
            }
            iterator = answer.next_shard_iterator().map(str::to_string);
        }
    }
    all
}

/// Asserts that `got` holds each record of `expected` exactly once.
pub fn assert_exactly_once(got: &[Seen], expected: &[Seen]) {
    let distinct: BTreeSet<&Seen> = got.iter().collect();
    assert_eq!(distinct.len(), got.len(), "{} records were read more than once", got.len() - distinct.len());
    let expected: BTreeSet<&Seen> = expected.iter().collect();
    let missing: Vec<_> = expected.difference(&distinct).take(5).collect();
    let extra: Vec<_> = distinct.difference(&expected).take(5).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, unexpected {extra:?}");
}
