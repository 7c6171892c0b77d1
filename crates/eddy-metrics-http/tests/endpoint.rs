//! The endpoint over a running job: Prometheus text parsed back and checked against the
//! records sent, the REST API's JSON shapes, errors for unknown jobs and taken ports.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use eddy_metrics_http::{parse_addr, ServeError, ServeMetrics};
use eddy_stream::prelude::*;
use serde_json::Value;

/// One sample of the text format: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// A small parser of the Prometheus text format (what a scraper reads).
fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = line.rsplit_once(' ').expect("a sample is `series value`");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number in {line:?}"));
        let (name, mut rest) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.strip_suffix('}').expect("labels end with }")),
            None => (series, ""),
        };
        let mut labels = BTreeMap::new();
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
            let (mut value, mut chars, mut end) = (String::new(), after.char_indices(), after.len());
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some(c) => value.push(c),
                        None => panic!("dangling escape in {line:?}"),
                    },
                    '"' => {
                        end = i;
                        break;
                    }
                    c => value.push(c),
                }
            }
            labels.insert(key.to_string(), value);
            rest = after[end + 1..].trim_start_matches(',');
        }
        samples.push((name.to_string(), labels, value));
    }
    samples
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("the endpoint answers");
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn json(url: &str) -> Value {
    let (status, body) = get(url).await;
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url} is not JSON ({e}): {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_text_and_rest_json_describe_a_running_job() {
    let env = StreamEnvironment::new();
    env.set_parallelism(1).set_buffer_timeout(Duration::from_millis(5));
    let server = env.serve_metrics("127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.local_addr());
    let (sender, receiver) = crossbeam_channel::bounded::<u64>(1024);
    let out = env.from_channel(receiver).rebalance().map(|x: u64| x * 2).name("doubled \"x2\"").collect();
    let job = env.execute("doubles").unwrap();
    for x in 0..300 {
        sender.send(x).unwrap();
    }
    // Wait until all 300 went through; the job keeps running (the sender is still open).
    let deadline = Instant::now() + Duration::from_secs(30);
    while job.metrics().operators.last().unwrap().records_in() < 300 {
        assert!(Instant::now() < deadline, "the records never arrived: {:?}", job.metrics().operators);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let (status, text) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    let samples = parse(&text);
    let value = |name: &str, operator: &str| {
        samples
            .iter()
            .find(|(n, labels, _)| n == name && labels.get("operator").map(String::as_str) == Some(operator))
            .map(|(_, _, v)| *v)
            .unwrap_or_else(|| panic!("no {name} for {operator} in\n{text}"))
    };
    assert_eq!(value("eddy_operator_records_in_total", "doubled \"x2\""), 300.0, "escaped label read back");
    assert_eq!(value("eddy_operator_records_out_total", "doubled \"x2\""), 300.0);
    assert_eq!(value("eddy_operator_records_out_total", "Source: Channel"), 300.0);
    assert_eq!(value("eddy_operator_records_in_total", "Sink: Collect"), 300.0);
    for (name, labels, _) in &samples {
        assert!(name.starts_with("eddy_"), "{name}");
        if name.starts_with("eddy_operator_") || name.starts_with("eddy_source_") {
            for label in ["job", "job_id", "operator", "subtask"] {
                assert!(labels.contains_key(label), "{name} has no {label} label: {labels:?}");
            }
        }
        assert_eq!(labels.get("job").map(String::as_str), Some("doubles"));
    }
    // Every family says its type; counters, and only counters, end in _total.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = line.split(' ').skip(2);
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        assert_eq!(name.ends_with("_total"), kind == "counter", "{line}");
    }
    assert!(samples.iter().any(|(n, _, _)| n == "eddy_job_uptime_ms"));
    assert!(!samples.iter().any(|(n, _, _)| n == "eddy_job_last_checkpoint_duration_ms"), "no checkpoint: left out");

    let jobs = json(&format!("{base}/jobs")).await;
    assert_eq!(jobs, serde_json::json!({ "jobs": [{ "id": 0, "name": "doubles", "status": "RUNNING" }] }));
    let detail = json(&format!("{base}/jobs/0")).await;
    assert_eq!(detail["name"], "doubles");
    assert_eq!(detail["restarts"], 0);
    assert!(detail["uptime_ms"].as_u64().is_some());
    let vertices = json(&format!("{base}/jobs/0/vertices")).await;
    let vertices = vertices["vertices"].as_array().expect("a list of vertices");
    let names: Vec<&str> = vertices.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Source: Channel", "doubled \"x2\" -> Sink: Collect"], "chains as the planner made them");
    assert_eq!(vertices[1]["records_in"], 300);
    assert_eq!(vertices[1]["parallelism"], 1);
    assert_eq!(vertices[1]["operators"].as_array().unwrap().len(), 2);
    assert!(vertices[0]["idle_ms_per_s"].as_u64().is_some(), "{}", vertices[0]);
    let checkpoints = json(&format!("{base}/jobs/0/checkpoints")).await;
    assert_eq!(
        checkpoints,
        serde_json::json!({ "counts": { "completed": 0, "failed": 0 }, "latest": null, "history": [] })
    );
    let plan = json(&format!("{base}/jobs/0/plan")).await;
    let chains: Vec<u64> =
        plan["operators"].as_array().unwrap().iter().map(|op| op["chain"].as_u64().unwrap()).collect();
    assert_eq!(chains, [0, 1, 1], "the map and the sink share a chain");
    assert_eq!(plan["edges"][0]["ship_strategy"], "REBALANCE");
    assert_eq!(plan["edges"][1]["chained"], true);
    let (status, body) = get(&format!("{base}/jobs/7")).await;
    assert_eq!(status, 404);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(body["errors"][0].as_str().unwrap().contains("no job '7'"), "{body}");

    drop(sender);
    job.join().await.unwrap();
    assert_eq!(out.take().len(), 300);
    let finished = json(&format!("{base}/jobs")).await;
    assert_eq!(finished["jobs"][0]["status"], "FINISHED");
}

#[test]
fn bad_addresses_and_taken_ports_are_errors_that_say_what_to_do() {
    let error = parse_addr("localhost").unwrap_err();
    assert!(matches!(error, ServeError::Address { .. }));
    assert!(error.to_string().contains("HOST:PORT"), "{error}");
    let env = StreamEnvironment::new();
    let first = env.serve_metrics("127.0.0.1:0").unwrap();
    let taken = env.serve_metrics(&first.local_addr().to_string()).err().expect("the port is taken");
    assert!(matches!(taken, ServeError::Bind { .. }), "{taken}");
    assert!(taken.to_string().contains("pick another port"), "{taken}");
}

/// Counts records of 900 and more, keeps how many it saw in a gauge and their values in a
/// histogram.
#[derive(Clone, Default)]
struct Measured {
    big: eddy_runtime::Counter,
    seen: eddy_runtime::user_metrics::Gauge,
    values: Option<eddy_runtime::user_metrics::Histogram>,
}

impl ProcessFunction<u64, u64> for Measured {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        let metrics = ctx.metrics();
        self.big = metrics.counter("big values");
        self.seen = metrics.gauge("seen");
        self.values = Some(metrics.histogram("value"));
        Ok(())
    }

    fn process_element(&mut self, x: u64, ctx: &mut ProcessContext<'_, u64>) {
        if x >= 900 {
            self.big.add(1);
        }
        self.seen.add(1);
        self.values.as_ref().expect("opened").record(x);
        ctx.collect(x);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_metrics_are_exported_with_the_operator_labels() {
    let env = StreamEnvironment::new();
    env.set_parallelism(2).set_buffer_timeout(Duration::from_millis(5));
    let server = env.serve_metrics("127.0.0.1:0").unwrap();
    let (sender, receiver) = crossbeam_channel::bounded::<u64>(1024);
    env.from_channel(receiver).rebalance().process(Measured::default()).name("measured").for_each(|_| {});
    let job = env.execute("user metrics").unwrap();
    for x in 0..1000 {
        sender.send(x).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while job.metrics().operator("measured").unwrap().records_in() < 1000 {
        assert!(Instant::now() < deadline, "the records never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The typed view: per subtask, next to the built-in metrics.
    let metrics = job.metrics();
    let measured = metrics.operator("measured").unwrap();
    assert_eq!(measured.user_counter("big values"), Some(100), "900..1000");
    assert_eq!(measured.user_counter("seen"), None, "a gauge is not a counter");
    for subtask in &measured.subtasks {
        let seen = eddy_runtime::user_metrics::UserValue::Gauge(subtask.records_in as i64);
        assert_eq!(subtask.user["seen"], seen, "each subtask saw what it read");
    }

    // Prometheus: summed over the subtasks, as a scraper would.
    let (_, text) = get(&format!("http://{}/metrics", server.local_addr())).await;
    let samples = parse(&text);
    let sum = |name: &str, le: Option<&str>| -> f64 {
        let matching = samples.iter().filter(|(n, labels, _)| {
            n == name && labels.get("le").map(String::as_str) == le && labels["operator"] == "measured"
        });
        matching
            .map(|(_, labels, v)| {
                assert_eq!(labels["job"], "user metrics");
                assert!(labels.contains_key("subtask") && labels.contains_key("job_id"), "{labels:?}");
                v
            })
            .sum()
    };
    assert_eq!(sum("eddy_user_big_values_total", None), 100.0, "the space became _");
    assert_eq!(sum("eddy_user_seen", None), 1000.0);
    assert_eq!(sum("eddy_user_value_count", None), 1000.0);
    assert_eq!(sum("eddy_user_value_sum", None), (0..1000).sum::<u64>() as f64);
    assert_eq!(sum("eddy_user_value_bucket", Some("100")), 101.0, "0..=100");
    assert_eq!(sum("eddy_user_value_bucket", Some("1000")), 1000.0);
    assert_eq!(sum("eddy_user_value_bucket", Some("+Inf")), 1000.0);
    for (kind, name) in
        [("counter", "eddy_user_big_values_total"), ("gauge", "eddy_user_seen"), ("histogram", "eddy_user_value")]
    {
        assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name} is a {kind}");
    }
    drop(sender);
    job.join().await.unwrap();
}
