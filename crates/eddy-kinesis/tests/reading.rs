//! Reading a Kinesis stream (moto on loopback): every record once with its arrival time,
//! per-shard metrics and watermarks, dead letters, starting positions, and what a user sees
//! when the stream, the endpoint or the credentials are wrong.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use eddy_core::time::now_ms;
use eddy_kinesis::{Json, KinesisSource, StartingPosition, Utf8};
use eddy_stream::prelude::*;
use eddy_test_services::{Service, ACCESS_KEY, REGION, SECRET_KEY};

#[test]
fn every_record_once_with_its_arrival_time_and_metrics_per_shard() {
    let Some((moto, client)) = moto() else { return };
    create_stream(&client, "orders", 3);
    put(&client, "orders", &records("order", 300));
    let model = model(&client, "orders");
    assert_eq!(model.len(), 300);

    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let source = seen_source(&moto.url(), "orders").bounded().build().unwrap();
    let got = env
        .from_source(source, WatermarkStrategy::no_watermarks(), "kinesis")
        .process(|seen: Seen, ctx: &mut ProcessContext<'_, (Seen, i64)>| ctx.collect((seen, ctx.timestamp().unwrap())))
        .collect();
    let result = env.execute("read").unwrap().wait().unwrap();
    let got = got.take();
    let seen: Vec<Seen> = got.iter().map(|(s, _)| s.clone()).collect();
    assert_exactly_once(&seen, &model.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>());
    let arrival: BTreeMap<&Seen, i64> = model.iter().map(|(s, t)| (s, *t)).collect();
    for (seen, timestamp) in &got {
        assert_eq!(*timestamp, arrival[seen], "event time is the arrival time");
    }
    for shard in 0..3 {
        let id = format!("shardId-{shard:012}");
        let records: Vec<_> = model.iter().filter(|(s, _)| s.shard == id).collect();
        let bytes: usize = records.iter().map(|(s, _)| s.data.len()).sum();
        assert_eq!(result.metrics.total("Source: kinesis", &format!("{id}.records_in")), records.len() as u64);
        assert_eq!(result.metrics.total("Source: kinesis", &format!("{id}.bytes_in")), bytes as u64);
    }
}

#[test]
fn millis_behind_latest_is_a_metric_per_shard() {
    use eddy_core::{ReaderContext, SourceOutput, SourceReader, SplitSource};
    let Some((moto, client)) = moto() else { return };
    create_stream(&client, "lagging", 1);
    put(&client, "lagging", &records("early", 5));
    std::thread::sleep(Duration::from_millis(400));
    put(&client, "lagging", &records("late", 5));
    // One reader driven by hand, five records a call: after the first call it is one
    // burst (400 ms) behind the newest record; after the second, caught up.
    let source = seen_source(&moto.url(), "lagging").get_records_limit(5).build().unwrap();
    let mut reader = source.open(&ReaderContext::new(0, 1)).unwrap();
    let mut out = SourceOutput::new(None);
    let mut lags = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lags.len() < 2 && Instant::now() < deadline {
        let before = out.len();
        reader.poll(&mut out, 100).unwrap();
        if out.len() > before {
            out.take_split_metrics(|_, name, m| lags.push((name.to_string(), m.lag_ms)));
        }
    }
    assert_eq!(out.len(), 10);
    assert_eq!(lags[0].0, "shardId-000000000000");
    assert!(lags[0].1.unwrap() >= 300, "first batch: {lags:?}");
    assert_eq!(lags[1].1, Some(0), "caught up: {lags:?}");
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Event {
    n: i64,
}

#[test]
fn event_time_from_the_values_with_a_watermark_per_shard() {
    // Event time is the record's number, increasing within each shard but interleaved across
    // shards that are read a batch of 10 at a time: a subtask-wide monotonous watermark
    // would make records of the slower shards late, a watermark per shard keeps every one.
    let Some((moto, client)) = moto() else { return };
    create_stream(&client, "events", 4);
    let events: Vec<(String, String)> =
        (0..400).map(|n| (format!("key-{}", n % 40), format!("{{\"n\":{n}}}"))).collect();
    put(&client, "events", &events);
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    let source = quick(KinesisSource::builder("events").endpoint(moto.url()))
        .deserializer(Json::<Event>::new())
        .timestamps(|event, _| event.n)
        .get_records_limit(10)
        .bounded()
        .build()
        .unwrap();
    let windows = env
        .from_source(source, WatermarkStrategy::monotonous(), "events")
        .key_by(|_: &Event| 0u8)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
        .aggregate_with(Count, |_, window, n| (window.start, n))
        .collect();
    let result = env.execute("event time").unwrap().wait().unwrap();
    assert_eq!(result.metrics.total_all("late_records_dropped"), 0);
    let mut got = windows.take();
    got.sort();
    assert_eq!(got, (0..4).map(|w| (w * 100, 100)).collect::<Vec<_>>());
}

#[test]
fn undeserialisable_records_become_dead_letters_naming_stream_shard_and_sequence_number() {
    let Some((moto, client)) = moto() else { return };
    create_stream(&client, "mixed", 2);
    let data: Vec<(String, String)> = (0..70)
        .map(|n| (format!("key-{n}"), if n % 7 == 3 { format!("garbage-{n}") } else { format!("{{\"n\":{n}}}") }))
        .collect();
    put(&client, "mixed", &data);
    let model = read_all(&client, "mixed");

    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let source = quick(KinesisSource::builder("mixed").endpoint(moto.url()))
        .deserializer(Json::<Event>::new())
        .bounded()
        .build()
        .unwrap();
    let events = env.from_source(source, WatermarkStrategy::no_watermarks(), "mixed");
    let dead = events.dead_letters::<RawRecord>().collect();
    let good = events.map(|e: Event| e.n).collect();
    let result = env.execute("dead letters").unwrap().wait().unwrap();

    let dead = dead.take();
    let expected: BTreeMap<(String, String), String> = model
        .iter()
        .filter(|s| s.data.starts_with("garbage"))
        .map(|s| ((format!("mixed/{}", s.shard), s.sequence.clone()), s.data.clone()))
        .collect();
    let got: BTreeMap<(String, String), String> = dead
        .iter()
        .map(|d| {
            ((d.input.split.clone(), d.input.position.clone()), String::from_utf8(d.input.payload.clone()).unwrap())
        })
        .collect();
    assert_eq!(got, expected);
    assert!(dead.iter().all(|d| d.error.contains("cannot deserialise") && d.error.contains("expected")), "{dead:?}");
    let mut good = good.take();
    good.sort();
    assert_eq!(good, (0..70).filter(|n| n % 7 != 3).collect::<Vec<_>>());
    assert_eq!(result.metrics.total("Source: mixed", "dead_letters"), 10);
}

#[test]
fn starting_at_a_timestamp_skips_older_records() {
    let Some((moto, client)) = moto() else { return };
    create_stream(&client, "history", 2);
    put(&client, "history", &records("old", 20));
    std::thread::sleep(Duration::from_millis(300));
    let start = now_ms();
    std::thread::sleep(Duration::from_millis(300));
    put(&client, "history", &records("new", 20));
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let source = quick(KinesisSource::builder("history").endpoint(moto.url()))
        .deserializer(Utf8)
        .starting_position(StartingPosition::AtTimestamp(start))
        .bounded()
        .build()
        .unwrap();
    let got = env.from_source(source, WatermarkStrategy::no_watermarks(), "history").collect();
    env.execute("at timestamp").unwrap().wait().unwrap();
    let mut got = got.take();
    got.sort();
    let mut expected: Vec<String> = records("new", 20).into_iter().map(|(_, d)| d).collect();
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn starting_at_latest_reads_only_what_arrives_after_the_start() {
    let Some((moto, client)) = moto() else { return };
    create_stream(&client, "live", 2);
    put(&client, "live", &records("before", 20));
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let source = quick(KinesisSource::builder("live").endpoint(moto.url()))
        .deserializer(Utf8)
        .starting_position(StartingPosition::Latest)
        .build()
        .unwrap();
    let out = env.from_source(source, WatermarkStrategy::no_watermarks(), "live").collect();
    let job = env.execute("latest").unwrap();
    // Readers open (and list the shards) before the job runs; give them a moment more.
    std::thread::sleep(Duration::from_millis(300));
    put(&client, "live", &records("after", 15));
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < 15 && Instant::now() < deadline {
        got.extend(out.take());
        std::thread::sleep(Duration::from_millis(20));
    }
    job.cancel();
    let _ = job.wait();
    got.extend(out.take());
    got.sort();
    let mut expected: Vec<String> = records("after", 15).into_iter().map(|(_, d)| d).collect();
    expected.sort();
    assert_eq!(got, expected);
}

/// Runs a job over `source` and returns its error, checking that it came quickly.
fn failure(source: KinesisSource<String>) -> String {
    let started = Instant::now();
    let env = StreamEnvironment::new();
    let _ = env.from_source(source, WatermarkStrategy::no_watermarks(), "broken").collect();
    let error = env.execute("broken").and_then(|job| job.wait()).expect_err("the job must fail").to_string();
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?} to fail: {error}", started.elapsed());
    error
}

#[test]
fn an_unknown_stream_fails_the_job_naming_the_connector_and_the_stream() {
    let Some((moto, _client)) = moto() else { return };
    let source =
        quick(KinesisSource::builder("no-such-stream").endpoint(moto.url())).deserializer(Utf8).build().unwrap();
    let error = failure(source);
    assert!(error.contains("kinesis stream 'no-such-stream'"), "{error}");
    assert!(error.contains("ResourceNotFoundException") && error.contains("check the stream name"), "{error}");
}

#[test]
fn an_unreachable_endpoint_fails_the_job_quickly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let source =
        quick(KinesisSource::builder("orders").endpoint(format!("http://127.0.0.1:{port}"))).deserializer(Utf8);
    let error = failure(source.build().unwrap());
    assert!(error.contains("kinesis stream 'orders': ListShards failed"), "{error}");
    assert!(error.contains("endpoint is right and reachable"), "{error}");
}

#[test]
fn rejected_credentials_fail_the_job_saying_so() {
    let Some(moto) = Service::moto_rejecting_credentials() else { return };
    let source = quick(KinesisSource::builder("orders").endpoint(moto.url())).deserializer(Utf8).build().unwrap();
    let error = failure(source);
    assert!(error.contains("kinesis stream 'orders'") && error.contains("HTTP 403"), "{error}");
    assert!(error.contains("check the credentials"), "{error}");
}

#[test]
fn settings_that_cannot_work_are_refused_before_the_job_starts() {
    let error = |b: eddy_kinesis::KinesisSourceBuilder<Vec<u8>>| b.build().err().expect("refused").to_string();
    assert!(error(KinesisSource::builder("no spaces")).contains("is not a stream name"));
    assert!(error(KinesisSource::builder("s").get_records_limit(0)).contains("outside 1..=10000"));
    assert!(error(KinesisSource::builder("s").shard_discovery_interval(Duration::ZERO)).contains("above zero"));
    // A malformed endpoint is said when a reader opens: the client is made there.
    let source =
        KinesisSource::builder("s").endpoint("127.0.0.1:4566").region(REGION).credentials(ACCESS_KEY, SECRET_KEY);
    let env = StreamEnvironment::new();
    let _ = env.from_source(source.build().unwrap(), WatermarkStrategy::no_watermarks(), "s").collect();
    let message = env.execute("bad endpoint").and_then(|job| job.wait()).unwrap_err().to_string();
    assert!(message.contains("is not a URL: write it as http://host:port"), "{message}");
}
