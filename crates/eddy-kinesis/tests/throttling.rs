//! Throttling: a proxy in front of moto answers `GetRecords` with Kinesis'
//! `ProvisionedThroughputExceededException`; the reader backs off per shard and reads on, or
//! fails the job with a clear error once the refusals outlast its retries.

mod common;

use std::time::{Duration, Instant};

use common::throttling_proxy::ThrottlingProxy;
use common::*;
use eddy_kinesis::Backoff;
use eddy_stream::prelude::*;

#[test]
fn throttled_shards_back_off_and_then_read_everything() {
    let Some((moto, client)) = moto() else { return };
    create_stream(&client, "busy", 2);
    put(&client, "busy", &records("ride", 100));
    let model = read_all(&client, "busy");
    let proxy = ThrottlingProxy::start(moto.port(), 8);
    let backoff = Backoff { base: Duration::from_millis(100), max: Duration::from_secs(1), max_retries: 10 };

    let started = Instant::now();
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let source = seen_source(&proxy.url(), "busy").backoff(backoff).bounded().build().unwrap();
    let out = env.from_source(source, WatermarkStrategy::no_watermarks(), "busy").collect();
    env.execute("throttled").unwrap().wait().unwrap();
    let elapsed = started.elapsed();

    assert_exactly_once(&out.take(), &model);
    assert_eq!(proxy.refused(), 8);
    // Eight refusals over two shards: one shard was refused at least four times in a row and
    // waited at least 50 + 100 + 200 + 400 ms (half of each ceiling) before it could read;
    // without backing off, the whole job takes about 300 ms.
    assert!(elapsed >= Duration::from_millis(700), "{elapsed:?}: the reader did not back off");
}

#[test]
fn refusals_beyond_the_retries_fail_the_job_naming_the_shard_and_the_cause() {
    let Some((moto, client)) = moto() else { return };
    create_stream(&client, "busy", 1);
    put(&client, "busy", &records("ride", 10));
    let proxy = ThrottlingProxy::start(moto.port(), u32::MAX);
    let backoff = Backoff { base: Duration::from_millis(10), max: Duration::from_millis(40), max_retries: 3 };

    let started = Instant::now();
    let env = StreamEnvironment::new();
    let source = seen_source(&proxy.url(), "busy").backoff(backoff).build().unwrap();
    let _ = env.from_source(source, WatermarkStrategy::no_watermarks(), "busy").collect();
    let error = env.execute("throttled").unwrap().wait().unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(
        error.contains("kinesis stream 'busy': GetRecords on shardId-000000000000 still failing after 4 attempts"),
        "{error}"
    );
    assert!(error.contains("ProvisionedThroughputExceededException"), "{error}");
    assert_eq!(proxy.refused(), 4);
}
