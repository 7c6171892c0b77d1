//! The taxi example with `--es`: its results land in Elasticsearch (the ES 8 emulation on
//! loopback) as the documents of its JSON files, under ids that name them, and they match
//! the plain-loop computation; a second run into the same indices changes nothing, and the
//! index flags move the documents elsewhere.

#[path = "common/example_binary.rs"]
mod example_binary;

#[path = "../examples/taxi_analytics/generate.rs"]
mod generate;
#[path = "../crates/eddy-elasticsearch/tests/support/http.rs"]
mod http;
mod taxi_model;
#[path = "../examples/taxi_analytics/tlc.rs"]
mod tlc;
#[path = "../examples/taxi_analytics/trip.rs"]
mod trip;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use eddy_test_services::Service;
use serde_json::Value;
use taxi_model::{model_of_json, Durations, HotSpots};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/nyc-taxi");

fn taxi_binary() -> PathBuf {
    example_binary::path("taxi_analytics")
}

/// Runs the example; panics with its stderr if it fails.
fn run(args: &[&str]) -> String {
    let result = Command::new(taxi_binary()).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    assert!(result.status.success(), "taxi_analytics {args:?} failed: {stderr}");
    stderr
}

/// Every document of `index` (after a refresh makes them all visible), by id.
fn documents(url: &str, index: &str) -> BTreeMap<String, Value> {
    let (status, body) = http::call(url, "POST", "/_refresh", None);
    assert_eq!(status, 200, "refresh: {body}");
    http::documents(url, index).into_iter().collect()
}

/// Hot spots as the model keys them, checking each id names its document.
fn hot_spots(docs: &BTreeMap<String, Value>) -> HotSpots {
    docs.iter()
        .map(|(id, v)| {
            let (location, end) = (v["location"].as_str().unwrap().to_string(), v["timestamp"].as_i64().unwrap());
            assert_eq!(*id, format!("{location}@{end}"));
            ((location, end), v["pickup_count"].as_u64().unwrap())
        })
        .collect()
}

/// Airport windows as the model lists them, checking each id names its document.
fn durations(docs: &BTreeMap<String, Value>) -> Durations {
    let mut out: Durations = docs
        .iter()
        .map(|(id, v)| {
            let text = |k: &str| v[k].as_str().unwrap().to_string();
            let end = v["timestamp"].as_i64().unwrap();
            assert_eq!(*id, format!("{}@{}@{end}", text("location"), text("airport_code")));
            let sum = v["sum_trip_duration"].as_i64().unwrap();
            (text("location"), text("airport_code"), end, sum, v["avg_trip_duration"].as_f64().unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.partial_cmp(b).unwrap());
    out
}

/// The JSON lines of a result file, as documents by the id the example gives them.
fn file_documents(path: &Path, id: impl Fn(&Value) -> String) -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).map(|v| (id(&v), v)).collect()
}

#[test]
fn results_land_in_elasticsearch_once_and_match_the_model() {
    let Some(es) = Service::elasticsearch() else { return };
    let calibration = generate::Calibration::from_samples(Path::new(SAMPLES)).unwrap();
    let spec = generate::Spec {
        seed: 5,
        trips: 12_000,
        start_ms: 1_451_606_400_000,
        disorder_ms: 120_000,
        malformed_per_million: 2_000,
        watermark_every_ms: Some(300_000),
    };
    let input: String = generate::generate(&calibration, spec).map(|l| l + "\n").collect();
    let model = model_of_json(&input);
    assert!(!model.durations().is_empty());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trips.jsonl");
    std::fs::write(&file, &input).unwrap();
    let out = dir.path().join("out");
    let url = es.url();
    let args =
        ["--input", file.to_str().unwrap(), "--parallelism", "2", "--es", &url, "--output", out.to_str().unwrap()];
    let stderr = run(&args);
    assert!(stderr.contains("0 documents refused"), "{stderr}");

    let pickups = documents(&url, "pickup_count");
    let trips = documents(&url, "trip_duration");
    assert!(pickups.len() < 10_000, "one search page holds them all");
    assert_eq!(hot_spots(&pickups), model.hot_spots);
    assert_eq!(durations(&trips), model.durations());
    // The same JSON as the files the run wrote next to them.
    let pickup_id = |v: &Value| format!("{}@{}", v["location"].as_str().unwrap(), v["timestamp"]);
    assert_eq!(file_documents(&out.join("pickup_count.jsonl"), pickup_id), pickups);
    let trip_id = |v: &Value| {
        format!("{}@{}@{}", v["location"].as_str().unwrap(), v["airport_code"].as_str().unwrap(), v["timestamp"])
    };
    assert_eq!(file_documents(&out.join("trip_duration.jsonl"), trip_id), trips);

    // A second run (a restart from scratch) overwrites the same documents: nothing doubles.
    run(&args);
    assert_eq!(documents(&url, "pickup_count"), pickups);
    assert_eq!(documents(&url, "trip_duration"), trips);

    // Other index names.
    let renamed = [&args[..], &["--es-pickup-index", "hot_spots", "--es-duration-index", "airport_trips"]].concat();
    run(&renamed);
    assert_eq!(documents(&url, "hot_spots"), pickups);
    assert_eq!(documents(&url, "airport_trips"), trips);
}

#[test]
fn bad_elasticsearch_flags_are_refused_before_the_job_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    for (flags, expected) in [
        (vec!["--es", "127.0.0.1:9200"], "invalid Elasticsearch URL"),
        (
            vec!["--es", "http://127.0.0.1:9", "--es-pickup-index", "Pickups"],
            "--es-pickup-index \"Pickups\" is not a valid index name",
        ),
        (vec!["--es", "http://127.0.0.1:9", "--es-duration-index", "_x"], "--es-duration-index"),
    ] {
        let input = Path::new(SAMPLES).join("azureml_greenTaxiData.csv");
        let args = [&["--input", input.to_str().unwrap(), "--format", "tlc-csv", "--output", out][..], &flags].concat();
        let result = Command::new(taxi_binary()).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{flags:?} should be refused");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
}
