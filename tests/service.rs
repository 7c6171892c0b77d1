//! The service example as its users meet it: started on a loopback port, fed events over
//! HTTP (and one bad body, which must change nothing), asked for each key's total while it
//! runs, listened to for results, then stopped with SIGTERM. The window sums in its results
//! file must be exactly those computed plainly from the events, the last window included,
//! and the process must exit 0.

#[path = "common/example_binary.rs"]
mod example_binary;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BASE: i64 = 1_700_000_000_000;
const LIMIT: Duration = Duration::from_secs(60);

/// The example binary, which a plain `cargo test` builds next to the tests.
fn service_binary() -> PathBuf {
    example_binary::path("service")
}

/// The running service; killed if the test fails before stopping it.
struct Service {
    child: Child,
    url: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn start(results: &std::path::Path) -> Service {
    let mut child = Command::new(service_binary())
        .args(["--addr", "127.0.0.1:0", "--parallelism", "2", "--results"])
        .arg(results)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    Service { url: format!("http://{addr}"), child }
}

/// The events: five keys over about 4.5 s of event time, up to 400 ms out of order.
fn events() -> Vec<(String, i64, i64)> {
    (0..300i64).map(|j| (format!("k{}", j % 5), BASE + j * 15 - (j % 5) * 100, j * 7 % 23 - 5)).collect()
}

fn body(events: &[(String, i64, i64)]) -> String {
    events
        .iter()
        .map(|(key, ts, value)| format!("{{\"key\": \"{key}\", \"ts\": {ts}, \"value\": {value}}}\n"))
        .collect()
}

/// Sums per (key, window start) and totals per key, computed plainly.
fn model(events: &[(String, i64, i64)]) -> (BTreeMap<(String, i64), i64>, BTreeMap<String, i64>) {
    let mut windows = BTreeMap::new();
    let mut totals = BTreeMap::new();
    for (key, ts, value) in events {
        *windows.entry((key.clone(), ts - ts.rem_euclid(1_000))).or_insert(0) += value;
        *totals.entry(key.clone()).or_insert(0) += value;
    }
    (windows, totals)
}

/// A response's body as JSON.
async fn json(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// A result line as ((key, window start), sum), checking its window end.
fn window_of(result: &Value) -> ((String, i64), i64) {
    let start = result["window_start"].as_i64().unwrap();
    assert_eq!(result["window_end"].as_i64().unwrap(), start + 1_000, "{result}");
    ((result["key"].as_str().unwrap().to_string(), start), result["sum"].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_sums_serves_state_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let results_path = dir.path().join("results.jsonl");
    let service = start(&results_path);
    let client = reqwest::Client::new();

    // Listen for results before any event.
    let mut stream = client.get(format!("{}/results", service.url)).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let listener = tokio::spawn(async move {
        let mut text = String::new();
        while let Ok(Some(chunk)) = stream.chunk().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    });

    let mut all = events();
    for part in all.chunks(100) {
        let response = client.post(format!("{}/events", service.url)).body(body(part)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(json(response).await["accepted"], 100);
    }

    // A body with one bad line is refused whole, saying which line and why.
    let bad = "{\"key\": \"refused\", \"ts\": 1700000000000, \"value\": 1}\n{\"key\": \"refused\", \"ts\": \"soon\"}\n";
    let response = client.post(format!("{}/events", service.url)).body(bad).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let reason = json(response).await["error"].as_str().unwrap().to_string();
    assert!(reason.starts_with("line 2: invalid type"), "{reason}");

    // Each key's total, read from the running job, reaches the model's.
    let (_, totals) = model(&all);
    let start = Instant::now();
    for (key, total) in &totals {
        loop {
            let response = client.get(format!("{}/state/{key}", service.url)).send().await.unwrap();
            if response.status() == 200 {
                let answer = json(response).await;
                assert_eq!(answer["key"], key.as_str());
                if answer["total"] == *total {
                    break;
                }
            }
            assert!(start.elapsed() < LIMIT, "{key} never reached its total {total}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for unknown in ["refused", "nobody"] {
        let response = client.get(format!("{}/state/{unknown}", service.url)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{unknown}");
    }

    // One more event in a window of its own, then SIGTERM at once: only the drain can fire it.
    let last = ("last".to_string(), BASE + 60_000, 42);
    let response =
        client.post(format!("{}/events", service.url)).body(body(std::slice::from_ref(&last))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    all.push(last);
    let pid = service.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut service = service;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = service.child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < LIMIT, "the service did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(service.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "exit {status}:\n{stderr}");

    let (windows, _) = model(&all);
    let written: Vec<Value> = std::fs::read_to_string(&results_path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut got = BTreeMap::new();
    for result in &written {
        let (window, sum) = window_of(result);
        assert!(got.insert(window.clone(), sum).is_none(), "{window:?} written twice");
    }
    assert!(got.contains_key(&("last".to_string(), BASE + 60_000)), "the last window was not written");
    assert_eq!(got, windows);

    // The result stream carried what was written while it was open, in the file's order.
    let streamed: Vec<Value> = listener
        .await
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    assert!(!streamed.is_empty(), "no result was streamed");
    assert_eq!(streamed[..], written[..streamed.len()]);
}

#[test]
fn flags_are_checked_before_anything_runs() {
    let output = Command::new(service_binary())
        .args(["--addr", "127.0.0.1:0", "--results", "/nonexistent-dir/results.jsonl"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot write /nonexistent-dir/results.jsonl (--results)"), "{stderr}");
    let output = Command::new(service_binary()).args(["--results", "x", "--parallelism", "0"]).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("use a whole number from 1 to 128"));
}
