//! The sink against a cluster that misbehaves on command (a scripted HTTP server on
//! loopback): busy (429), broken (5xx), dropped connections, per-item refusals, garbage,
//! wrong credentials, no server at all, a slow server. Each ends in a retry, a dead letter, or
//! a clear error naming the sink and its target; never a panic, a hang, or a lost record.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eddy_core::{BoxError, Source, SourcePoll};
use eddy_elasticsearch::{
    Action, ElasticsearchSink, ElasticsearchSinkBuilder, ElasticsearchSinkExt, FailedDocument, Operation, RetryPolicy,
    ACTION_ERROR, BULK_RETRIES, DEAD_LETTERS,
};
use eddy_stream::prelude::*;
use serde_json::{json, Value};
use support::finishes;
use support::scripted::{Reply, ScriptedServer};

const SINK: &str = "Sink: Elasticsearch";

/// Fast retries, so tests of exhausted retries take milliseconds.
fn quick(retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries: retries,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        multiplier: 2.0,
    }
}

/// Record `i` as the document `{"n": i, "square": i*i}` with id `i` in index `numbers`.
fn numbers(url: &str) -> ElasticsearchSinkBuilder<u64> {
    ElasticsearchSink::builder(url, |i: &u64| {
        Action::index("numbers", &json!({"n": i, "square": i * i})).map(|a| a.id(i.to_string()))
    })
    .retry(quick(5))
}

/// The documents a run of `0..count` must leave.
fn expected(count: u64) -> BTreeMap<(String, String), Value> {
    (0..count).map(|i| (("numbers".to_string(), i.to_string()), json!({"n": i, "square": i * i}))).collect()
}

/// Runs `0..count` into `sink` at parallelism 1 without checkpoints; returns the job's
/// result and its dead letters.
fn run(count: u64, sink: ElasticsearchSink<u64>) -> (Result<JobResult>, Vec<FailedDocument>) {
    finishes(move || {
        let env = StreamEnvironment::new();
        env.set_parallelism(1);
        let failed = env.from_iter(0..count).sink_to_elasticsearch(sink).collect();
        let result = env.execute("numbers").unwrap().wait();
        (result, failed.take())
    })
}

/// The message of an operator failure of the sink.
fn sink_failure(result: Result<JobResult>) -> String {
    match result {
        Err(Error::Operator { operator, message, .. }) => {
            assert_eq!(operator, SINK);
            message
        }
        other => panic!("expected the sink to fail, got {other:?}"),
    }
}

#[test]
fn busy_and_broken_answers_are_retried_until_every_document_lands() {
    let server = ScriptedServer::start();
    server.then([
        Reply::Status(429, r#"{"error":"too many requests"}"#),
        Reply::Status(500, "internal"),
        Reply::Hangup,
        Reply::Status(503, "unavailable"),
    ]);
    let (result, failed) = run(300, numbers(server.url()).bulk_flush_max_actions(100).build().unwrap());
    let result = result.unwrap();
    assert_eq!(server.documents(), expected(300));
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(result.metrics.total(SINK, BULK_RETRIES), 4);
    // Three batches of 100, the first sent five times.
    let sizes: Vec<usize> = server.requests().iter().map(|r| r.actions().len()).collect();
    assert_eq!(sizes, vec![100, 100, 100, 100, 100, 100, 100]);
}

#[test]
fn only_the_items_refused_for_now_are_sent_again() {
    let server = ScriptedServer::start();
    server.then([Reply::Items(|action| if id_of(action) % 2 == 1 { 429 } else { 201 })]);
    let (result, failed) = run(10, numbers(server.url()).build().unwrap());
    result.unwrap();
    assert!(failed.is_empty());
    assert_eq!(server.documents(), expected(10));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let resent: Vec<u64> = requests[1].actions().iter().map(id_of).collect();
    assert_eq!(resent, vec![1, 3, 5, 7, 9]);
}

/// The `_id` of an action line, as a number.
fn id_of(action: &Value) -> u64 {
    let meta = action.as_object().and_then(|o| o.values().next()).unwrap();
    meta["_id"].as_str().unwrap().parse().unwrap()
}

#[test]
fn documents_refused_for_good_become_dead_letters_and_the_job_goes_on() {
    let server = ScriptedServer::start();
    server.otherwise(Reply::Items(|action| if id_of(action) % 7 == 0 { 400 } else { 201 }));
    let sink = ElasticsearchSink::builder(server.url(), |i: &u64| {
        if *i == 50 {
            return Err(format!("record {i} has no index"));
        }
        Action::index("numbers", &json!({"n": i, "square": i * i}))
            .map(|a| a.id(i.to_string()))
            .map_err(|e| e.to_string())
    })
    .bulk_flush_max_actions(16)
    .build()
    .unwrap();
    let (result, mut failed) = run(100, sink);
    let result = result.unwrap();
    let mut kept = expected(100);
    kept.retain(|(_, id), _| id.parse::<u64>().unwrap() % 7 != 0 && id != "50");
    assert_eq!(server.documents(), kept);
    failed.sort_by_key(|f| f.id.as_ref().map(|id| id.parse::<u64>().unwrap()));
    let unbuildable = failed.remove(0);
    assert_eq!(unbuildable.error_type, ACTION_ERROR);
    assert_eq!(unbuildable.reason, "record 50 has no index");
    assert_eq!((unbuildable.action, unbuildable.document), (None, None));
    let refused: Vec<u64> = (0..100).filter(|i| i % 7 == 0).collect();
    assert_eq!(failed.len(), refused.len());
    for (letter, i) in failed.iter().zip(refused) {
        assert_eq!(letter.action, Some(Operation::Index));
        assert_eq!((letter.index.as_str(), letter.id.clone()), ("numbers", Some(i.to_string())));
        assert_eq!(letter.status, Some(400));
        assert_eq!(letter.error_type, "mapper_parsing_exception");
        assert_eq!(letter.reason, "scripted 400");
        let document: Value = serde_json::from_str(letter.document.as_deref().unwrap()).unwrap();
        assert_eq!(document, json!({"n": i, "square": i * i}));
        // Displayed as one JSON line with every field.
        let line: Value = serde_json::from_str(&letter.to_string()).unwrap();
        assert_eq!(line["status"], 400);
    }
    assert_eq!(result.metrics.total(SINK, DEAD_LETTERS), 16);
}

#[test]
fn garbage_answers_are_retried_then_fail_naming_the_sink_and_its_target() {
    let server = ScriptedServer::start();
    server.otherwise(Reply::Status(200, "<html>gateway says hello</html>"));
    let (result, _) = run(5, numbers(server.url()).retry(quick(2)).build().unwrap());
    let message = sink_failure(result);
    let target = format!("{}/_bulk", server.url());
    assert!(message.contains(&target), "{message}");
    assert!(message.contains("after 3 attempts"), "{message}");
    assert!(message.contains("not a bulk response") && message.contains("<html>gateway says hello"), "{message}");
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn wrong_credentials_fail_at_once_saying_what_to_check() {
    let server = ScriptedServer::start();
    server.otherwise(Reply::Status(401, r#"{"error":{"type":"security_exception"}}"#));
    let sink = numbers(server.url()).basic_auth("elastic", "wrong").build().unwrap();
    let (result, _) = run(5, sink);
    let message = sink_failure(result);
    assert!(message.contains("refused the credentials (HTTP 401)"), "{message}");
    assert!(message.contains("basic_auth"), "{message}");
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "credentials are not retried");
    assert_eq!(requests[0].headers["authorization"], "Basic ZWxhc3RpYzp3cm9uZw==");
}

#[test]
fn credentials_in_the_url_are_used_and_never_shown() {
    let server = ScriptedServer::start();
    let url = server.url().replace("http://", "http://u:p%40ss@");
    let sink = numbers(&url).build().unwrap();
    assert_eq!(sink.target(), format!("{}/_bulk", server.url()));
    run(3, sink).0.unwrap();
    assert_eq!(server.requests()[0].headers["authorization"], "Basic dTpwQHNz");
}

#[test]
fn an_unreachable_cluster_fails_after_the_retries_naming_the_target() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    let (result, _) = run(5, numbers(&url).retry(quick(2)).build().unwrap());
    let message = sink_failure(result);
    assert!(message.contains(&format!("{url}/_bulk failed after 3 attempts")), "{message}");
    assert!(message.to_lowercase().contains("connect"), "says it could not connect: {message}");
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
}

#[test]
fn a_failed_attempt_is_retried_by_the_restart_strategy_and_nothing_is_lost() {
    let server = ScriptedServer::start();
    // More failures in a row than one attempt's retries: the first job attempt fails.
    server.then(std::iter::repeat_n(Reply::Status(503, "down"), 4));
    let count = 2_000;
    let sink = numbers(server.url()).retry(quick(1)).bulk_flush_max_actions(100).build().unwrap();
    let result = finishes(move || {
        let env = StreamEnvironment::new();
        env.set_parallelism(2);
        env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)));
        env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 5, delay: Duration::ZERO });
        let throttled = env
            .generate(Some(count), |i| {
                if i % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
                i
            })
            .uid("numbers");
        let failed = throttled.sink_to_elasticsearch(sink).collect();
        let result = env.execute("restarts").unwrap().wait();
        assert!(failed.take().is_empty());
        result
    })
    .unwrap();
    assert!(result.restarts >= 1, "the first attempt should have failed");
    assert_eq!(server.documents(), expected(count));
}

#[test]
fn a_slow_cluster_slows_the_source_instead_of_filling_memory() {
    let server = ScriptedServer::start();
    server.delay(Duration::from_millis(40));
    let emitted = Arc::new(AtomicU64::new(0));
    let counter = emitted.clone();
    let sink = numbers(server.url()).bulk_flush_max_actions(50).max_in_flight_requests(2).build().unwrap();
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    env.set_batch_size(100);
    env.generate(None, |i| i)
        .map(move |i| {
            counter.fetch_add(1, Ordering::Relaxed);
            i
        })
        .sink_to_elasticsearch(sink)
        .collect();
    let job = env.execute("slow cluster").unwrap();
    std::thread::sleep(Duration::from_millis(1_500));
    let (sent, received) = (emitted.load(Ordering::Relaxed), server.actions_received() as u64);
    job.cancel();
    let _ = finishes(move || job.wait());
    assert!(received >= 200, "the sink made progress: {received} actions");
    // One source batch (100), one open batch (50), two requests in flight (100), and slack
    // for a request being read: far from the millions an unthrottled generator makes.
    assert!(sent - received <= 400, "{sent} records made, {received} received: the source ran ahead");
    assert!(server.most_concurrent() <= 2, "{} requests at once", server.most_concurrent());
}

/// Emits `count` numbers, then nothing, without ending.
struct Trickle {
    count: u64,
    next: u64,
}

impl Source<u64> for Trickle {
    fn poll_next(&mut self, out: &mut Vec<u64>, _: usize) -> std::result::Result<SourcePoll, BoxError> {
        if self.next < self.count {
            out.push(self.next);
            self.next += 1;
            return Ok(SourcePoll::Ready);
        }
        std::thread::sleep(Duration::from_millis(20));
        Ok(SourcePoll::Pending)
    }
}

#[test]
fn the_flush_interval_sends_a_partial_batch_while_the_job_runs() {
    let server = ScriptedServer::start();
    let sink = numbers(server.url()).bulk_flush_interval(Some(Duration::from_millis(100))).build().unwrap();
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    env.add_source("trickle", |_, _| Ok(Trickle { count: 5, next: 0 })).sink_to_elasticsearch(sink).collect();
    let job = env.execute("trickle").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.documents().len() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let landed = server.documents();
    job.cancel();
    let _ = finishes(move || job.wait());
    assert_eq!(landed, expected(5), "a batch of 5 (of 1000) must go out on the interval");
}

#[test]
fn the_request_signer_sees_each_request_and_its_headers_reach_the_cluster() {
    let server = ScriptedServer::start();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let sink = numbers(server.url())
        .api_key("a2V5OnNlY3JldA==")
        .bulk_flush_max_actions(4)
        .request_signer(move |request: &mut eddy_elasticsearch::SignableRequest<'_>| {
            let authorization = request.headers.get("authorization").map(|v| v.to_str().unwrap().to_string());
            log.lock().unwrap().push((request.method.to_string(), request.url.to_string(), authorization));
            let signature = format!("len={}", request.body.len());
            request.headers.insert("x-signature", signature.parse()?);
            Ok::<(), BoxError>(())
        })
        .build()
        .unwrap();
    run(10, sink).0.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(request.headers["x-signature"], format!("len={}", request.body.len()));
        assert_eq!(request.headers["authorization"], "ApiKey a2V5OnNlY3JldA==");
        assert_eq!(request.path, "/_bulk");
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|(method, url, auth)| method == "POST"
        && *url == format!("{}/_bulk", server.url())
        && auth.as_deref() == Some("ApiKey a2V5OnNlY3JldA==")));
}

#[test]
fn a_signer_error_is_retried_then_fails_the_attempt() {
    let server = ScriptedServer::start();
    let sink = numbers(server.url())
        .retry(quick(1))
        .request_signer(|_: &mut eddy_elasticsearch::SignableRequest<'_>| {
            Err::<(), BoxError>("no credentials in the environment".into())
        })
        .build()
        .unwrap();
    let message = sink_failure(run(3, sink).0);
    assert!(message.contains("the request signer failed: no credentials in the environment"), "{message}");
    assert!(server.requests().is_empty());
}

#[test]
fn settings_are_checked_before_the_job_starts() {
    let bad = |builder: ElasticsearchSinkBuilder<u64>| builder.build().err().expect("refused").to_string();
    assert!(bad(numbers("ftp://127.0.0.1:9200")).contains("scheme must be http or https"));
    assert!(bad(numbers("127.0.0.1:9200")).contains("invalid Elasticsearch URL"));
    assert!(bad(numbers("http://127.0.0.1:9200/?pretty")).contains("without a query"));
    assert!(bad(numbers("http://x").bulk_flush_max_actions(0)).contains("bulk_flush_max_actions must be at least 1"));
    assert!(bad(numbers("http://x").max_in_flight_requests(0)).contains("max_in_flight_requests"));
    assert!(bad(numbers("http://x").bulk_flush_interval(Some(Duration::ZERO))).contains("bulk_flush_interval"));
    assert!(bad(numbers("http://x").ca_certificate_pem("not a certificate")).contains("CA certificate"));
    let inverted = RetryPolicy { initial_delay: Duration::from_secs(60), ..RetryPolicy::default() };
    assert!(bad(numbers("http://x").retry(inverted)).contains("longer than max_delay"));
    let prefixed = numbers("http://127.0.0.1:9200/es").refresh(eddy_elasticsearch::Refresh::WaitFor).build().unwrap();
    assert_eq!(prefixed.target(), "http://127.0.0.1:9200/es/_bulk");
}

#[test]
fn https_to_a_plain_http_server_is_a_clear_tls_error() {
    let server = ScriptedServer::start();
    let url = server.url().replace("http://", "https://");
    let message = sink_failure(run(3, numbers(&url).retry(quick(1)).build().unwrap()).0);
    assert!(message.contains("after 2 attempts"), "{message}");
    assert!(message.to_lowercase().contains("tls") || message.to_lowercase().contains("ssl"), "{message}");
}
