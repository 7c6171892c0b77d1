//! The taxi example, run as a user would (its binary and flags), against a straightforward
//! computation written separately from the pipeline: plain loops over the parsed input.

#[path = "../examples/taxi_analytics/generate.rs"]
mod generate;
#[path = "../examples/taxi_analytics/tlc.rs"]
mod tlc;
#[path = "../examples/taxi_analytics/trip.rs"]
mod trip;

mod taxi_model;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use taxi_model::{model_of_csv, model_of_json, Durations, HotSpots};
const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/nyc-taxi");

/// The example binary, which a plain `cargo test` builds next to the tests.
fn taxi_binary() -> PathBuf {
    let examples = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples");
    let binary = examples.join("taxi_analytics");
    assert!(binary.exists(), "{} is missing: run plain `cargo test`, which builds the examples", binary.display());
    binary
}

/// Runs the example and returns (hot spots, durations, dead letters) as it wrote them.
fn run(args: &[&str], out: &Path) -> (HotSpots, Durations, u64) {
    let result = Command::new(taxi_binary()).args(args).arg("--output").arg(out).output().unwrap();
    assert!(result.status.success(), "taxi_analytics {args:?} failed: {}", String::from_utf8_lossy(&result.stderr));
    let lines = |name: &str| -> Vec<Value> {
        let text = std::fs::read_to_string(out.join(name)).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let mut hot_spots = BTreeMap::new();
    for v in lines("pickup_count.jsonl") {
        let key = (v["location"].as_str().unwrap().to_string(), v["timestamp"].as_i64().unwrap());
        assert!(hot_spots.insert(key, v["pickup_count"].as_u64().unwrap()).is_none(), "duplicate {v}");
    }
    let mut durations: Vec<_> = lines("trip_duration.jsonl")
        .iter()
        .map(|v| {
            let text = |k: &str| v[k].as_str().unwrap().to_string();
            let sum = v["sum_trip_duration"].as_i64().unwrap();
            (
                text("location"),
                text("airport_code"),
                v["timestamp"].as_i64().unwrap(),
                sum,
                v["avg_trip_duration"].as_f64().unwrap(),
            )
        })
        .collect();
    durations.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let dead = lines("dead_letters.jsonl");
    assert!(dead.iter().all(|d| d["raw"].is_string() && d["reason"].is_string()), "dead letters carry line and reason");
    (hot_spots, durations, dead.len() as u64)
}

#[test]
fn real_samples_as_tlc_csv_match_the_model() {
    for sample in ["azureml_yellowTaxiData_2016-01.csv", "azureml_greenTaxiData.csv"] {
        let path = Path::new(SAMPLES).join(sample);
        let model = model_of_csv(&std::fs::read_to_string(&path).unwrap());
        assert!(!model.hot_spots.is_empty());
        for parallelism in ["1", "2"] {
            let out = tempfile::tempdir().unwrap();
            let args = ["--input", path.to_str().unwrap(), "--format", "tlc-csv", "--parallelism", parallelism];
            let (hot_spots, durations, dead) = run(&args, out.path());
            assert_eq!(hot_spots, model.hot_spots, "{sample} at parallelism {parallelism}");
            assert_eq!(durations, model.durations(), "{sample} at parallelism {parallelism}");
            assert_eq!(dead, model.dead, "{sample}: rows with 0/0 coordinates and the like");
        }
    }
}

#[test]
fn generated_trips_with_watermark_events_match_the_model() {
    let calibration = generate::Calibration::from_samples(Path::new(SAMPLES)).unwrap();
    let spec = generate::Spec {
        seed: 3,
        trips: 40_000,
        start_ms: 1_451_606_400_000,
        disorder_ms: 120_000,
        malformed_per_million: 2_000,
        watermark_every_ms: Some(300_000),
    };
    let input: String = generate::generate(&calibration, spec).map(|l| l + "\n").collect();
    let model = model_of_json(&input);
    assert!(model.dead > 0 && !model.durations().is_empty(), "the input should exercise every path");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trips.jsonl");
    std::fs::write(&file, &input).unwrap();
    for parallelism in ["1", "2", "3"] {
        let out = dir.path().join(format!("out-{parallelism}"));
        let (hot_spots, durations, dead) =
            run(&["--input", file.to_str().unwrap(), "--parallelism", parallelism], &out);
        assert_eq!(hot_spots, model.hot_spots, "parallelism {parallelism}");
        assert_eq!(durations, model.durations(), "parallelism {parallelism}");
        assert_eq!(dead, model.dead, "parallelism {parallelism}");
    }
}
