//! The taxi example, run as a user would (its binary and flags), against a straightforward
//! computation written separately from the pipeline: plain loops over the parsed input.

#[path = "common/example_binary.rs"]
mod example_binary;

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
    example_binary::path("taxi_analytics")
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

/// `--s3` into a real S3 server (moto), beside `--output`: the same results as the model,
/// each in the hour its window covers (`year=…/month=…/day=…/hour=…`), as JSON lines and as
/// Parquet with the same field names; every dead letter under `errors/<reason>/`.
#[cfg(feature = "files")]
#[test]
fn results_written_to_s3_match_the_model() {
    use std::io::{Read, Write};

    use eddy::files::{S3Config, Storage};

    let Some(moto) = eddy_test_services::Service::moto() else { return };
    let mut stream = std::net::TcpStream::connect(moto.address()).unwrap();
    write!(stream, "PUT /taxi HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", moto.address())
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "cannot create the bucket: {answer}");

    let calibration = generate::Calibration::from_samples(Path::new(SAMPLES)).unwrap();
    let spec = generate::Spec {
        seed: 5,
        trips: 20_000,
        start_ms: 1_451_606_400_000,
        disorder_ms: 60_000,
        malformed_per_million: 3_000,
        watermark_every_ms: Some(300_000),
    };
    let input: String = generate::generate(&calibration, spec).map(|l| l + "\n").collect();
    let model = model_of_json(&input);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trips.jsonl");
    std::fs::write(&file, &input).unwrap();
    let storage =
        Storage::s3(&S3Config::new("taxi").endpoint(&moto.url()).allow_http(true).credentials("eddy", "secret"))
            .unwrap();
    let hour_of = |timestamp: i64| {
        let time = chrono::DateTime::from_timestamp_millis(timestamp - 1).unwrap();
        time.format("year=%Y/month=%m/day=%d/hour=%H").to_string()
    };
    let formats: &[&str] = if cfg!(feature = "parquet") { &["json", "parquet"] } else { &["json"] };
    for &format in formats {
        let prefix = format!("runs/{format}");
        let result = Command::new(taxi_binary())
            .args(["--input", file.to_str().unwrap(), "--parallelism", "2", "--s3-format", format])
            .arg("--output")
            .arg(dir.path().join(format))
            .args(["--s3", &format!("s3://taxi/{prefix}"), "--s3-endpoint", &moto.url()])
            .envs([("AWS_ACCESS_KEY_ID", "eddy"), ("AWS_SECRET_ACCESS_KEY", "secret"), ("AWS_REGION", "us-east-1")])
            .output()
            .unwrap();
        assert!(result.status.success(), "taxi_analytics --s3 failed: {}", String::from_utf8_lossy(&result.stderr));

        let mut hot_spots = HotSpots::new();
        let mut durations = Durations::new();
        for key in storage.list_visible(&format!("{prefix}/pickup_count")).unwrap() {
            for row in rows(&storage, &key, format) {
                assert!(key.contains(&hour_of(row["timestamp"].as_i64().unwrap())), "{row} is in {key}");
                let cell = (row["location"].as_str().unwrap().to_string(), row["timestamp"].as_i64().unwrap());
                assert!(hot_spots.insert(cell, row["pickup_count"].as_u64().unwrap()).is_none(), "{row} twice");
            }
        }
        for key in storage.list_visible(&format!("{prefix}/trip_duration")).unwrap() {
            for row in rows(&storage, &key, format) {
                assert!(key.contains(&hour_of(row["timestamp"].as_i64().unwrap())), "{row} is in {key}");
                let text = |k: &str| row[k].as_str().unwrap().to_string();
                let number = |k: &str| row[k].as_i64().unwrap();
                let average = row["avg_trip_duration"].as_f64().unwrap();
                durations.push((
                    text("location"),
                    text("airport_code"),
                    number("timestamp"),
                    number("sum_trip_duration"),
                    average,
                ));
            }
        }
        durations.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(hot_spots, model.hot_spots, "{format}: hot spots");
        assert_eq!(durations, model.durations(), "{format}: airport durations");

        let mut dead = 0;
        for key in storage.list_visible(&format!("{prefix}/errors")).unwrap() {
            let directory = key.split('/').nth(3).unwrap();
            let words = |text: &str| text.to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), " ");
            for line in String::from_utf8(storage.read(&key).unwrap()).unwrap().lines() {
                let letter: Value = serde_json::from_str(line).unwrap();
                let reason = letter["reason"].as_str().unwrap();
                assert!(letter["raw"].is_string(), "{line}");
                let (reason_words, directory_words) = (words(reason), words(directory));
                assert!(reason_words.starts_with(directory_words.trim()), "{reason:?} is under {key}");
                dead += 1;
            }
        }
        assert_eq!(dead, model.dead, "{format}: dead letters under errors/<reason>/");
    }
}

/// The rows of a result part as JSON values, from JSON lines or from Parquet.
#[cfg(feature = "files")]
fn rows(storage: &eddy::files::Storage, key: &str, format: &str) -> Vec<Value> {
    let bytes = storage.read(key).unwrap();
    if format == "json" {
        assert!(key.ends_with(".jsonl"), "{key}");
        return String::from_utf8(bytes).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    }
    assert!(key.ends_with(".parquet"), "{key}");
    parquet_rows(bytes)
}

/// Parquet rows, column by column, as JSON objects keyed by the column names.
#[cfg(feature = "parquet")]
fn parquet_rows(bytes: Vec<u8>) -> Vec<Value> {
    use eddy::files::arrow_array::cast::AsArray;
    use eddy::files::arrow_array::types::{Float64Type, Int64Type, UInt64Type};
    use eddy::files::arrow_schema::DataType;
    use eddy::files::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file.path()).unwrap()).unwrap();
    let mut rows = Vec::new();
    for batch in reader.build().unwrap() {
        let batch = batch.unwrap();
        for row in 0..batch.num_rows() {
            let mut object = serde_json::Map::new();
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                let value = match field.data_type() {
                    DataType::Utf8 => Value::from(column.as_string::<i32>().value(row)),
                    DataType::UInt64 => Value::from(column.as_primitive::<UInt64Type>().value(row)),
                    DataType::Int64 => Value::from(column.as_primitive::<Int64Type>().value(row)),
                    DataType::Float64 => Value::from(column.as_primitive::<Float64Type>().value(row)),
                    other => panic!("unexpected column type {other} of {}", field.name()),
                };
                object.insert(field.name().clone(), value);
            }
            rows.push(Value::Object(object));
        }
    }
    rows
}

#[cfg(all(feature = "files", not(feature = "parquet")))]
fn parquet_rows(_: Vec<u8>) -> Vec<Value> {
    unreachable!("Parquet parts are only written with the parquet feature")
}
