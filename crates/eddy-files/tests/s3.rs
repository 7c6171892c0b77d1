//! The file sink against real S3 servers on loopback (moto and s3s-fs), as a job uses it:
//! every record lands once in its hourly bucket, big parts go up in several chunks, and a
//! store that cannot be used fails the job with an error that names the sink and the target.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use eddy_files::{Compression, DateTimeBucketAssigner, FileSink, FileSinkExt, Format, PathPattern, S3Config, Storage};
use eddy_stream::prelude::*;
use serde::{Deserialize, Serialize};
use support::{bookkeeping, visible, visible_lines, S3};

/// 2026-11-29T15:00:00Z.
const T0: i64 = 1_795_964_400_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reading {
    id: u64,
    sensor: String,
    at: i64,
    celsius: f64,
}

/// Reading `i`: one a second from T0, so that a few thousand cover several hours.
fn reading(i: u64) -> Reading {
    Reading { id: i, sensor: format!("s{}", i % 7), at: T0 + i as i64 * 1_000, celsius: (i % 40) as f64 / 2.0 }
}

/// The Hive hourly bucket of `at`, formatted by chrono rather than the sink's patterns.
fn hour_bucket(at: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at).unwrap().format("year=%Y/month=%m/day=%d/hour=%H").to_string()
}

/// Runs `count` readings through a checkpointed job at parallelism 2 into `sink`.
fn run_job(count: u64, sink: FileSink<Reading>) -> eddy_stream::prelude::Result<JobResult> {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(100)));
    env.generate(Some(count), reading)
        .uid("readings")
        .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |r: &Reading| r.at)
        .sink_to_files(sink)
        .unwrap()
        .uid("files");
    env.execute("readings")?.wait()
}

/// Every reading of the visible JSON lines under `base`, checking each is in its hour's bucket.
fn readings_in(store: &std::sync::Arc<dyn object_store::ObjectStore>, base: &str) -> Vec<Reading> {
    let mut readings = Vec::new();
    for (key, bytes) in visible(store).into_iter().filter(|(k, _)| k.starts_with(&format!("{base}/"))) {
        for line in String::from_utf8(bytes).unwrap().lines() {
            let reading: Reading = serde_json::from_str(line).unwrap();
            let bucket = format!("{base}/{}/", hour_bucket(reading.at));
            assert!(key.starts_with(&bucket), "reading {} is in {key}, not under {bucket}", reading.id);
            readings.push(reading);
        }
    }
    readings.sort_by_key(|r| r.id);
    readings
}

#[test]
fn a_checkpointed_job_writes_every_record_once_into_hourly_buckets() {
    for s3 in S3::all("results") {
        let count = 12_000; // 3 h 20 min of readings
        let sink = FileSink::new(s3.storage(), "sensors/readings")
            .bucket_assigner(DateTimeBucketAssigner::event_time(PathPattern::hive_hourly()));
        let result = run_job(count, sink).unwrap();
        assert!(result.checkpoints >= 1, "{}", s3.name);
        let reader = s3.reader();
        let readings = readings_in(&reader, "sensors/readings");
        assert!(readings.iter().all(|r| *r == reading(r.id)), "{}: readings arrive intact", s3.name);
        support::assert_each_once(readings.iter().map(|r| r.id).collect(), count, s3.name);
        let hours: std::collections::BTreeSet<_> =
            visible(&reader).keys().map(|k| k.rsplit_once('/').unwrap().0.to_string()).collect();
        assert_eq!(hours.len(), 4, "{}: {hours:?}", s3.name);
        assert!(bookkeeping(&reader, "sensors/readings", "staging").is_empty());
        assert!(bookkeeping(&reader, "sensors/readings", "uploads").is_empty(), "{}: upload markers left", s3.name);
        assert!(!bookkeeping(&reader, "sensors/readings", "commits").is_empty(), "{}: no manifests", s3.name);
        if let Some(open) = s3.open_uploads() {
            assert_eq!(open, 0, "{}: multipart uploads left open", s3.name);
        }
    }
}

#[test]
fn a_part_bigger_than_a_chunk_goes_up_in_several_and_reads_back_whole() {
    for s3 in S3::all("big") {
        // ~14 MiB into one bucket, compressed by nothing: three 5 MiB chunks.
        let padding = "x".repeat(1_000);
        let env = StreamEnvironment::new();
        env.set_parallelism(1);
        let lines: Vec<String> = (0..14_000).map(|i| format!("{i:06}{padding}")).collect();
        let sink = FileSink::new(s3.storage(), "big").bucket_assigner(eddy_files::BasePath);
        env.from_iter(lines.clone()).sink_to_files(sink).unwrap();
        env.execute("big").unwrap().wait().unwrap();
        let reader = s3.reader();
        let all = visible(&reader);
        assert_eq!(all.len(), 1, "{}: one part: {:?}", s3.name, all.keys());
        let (key, bytes) = all.into_iter().next().unwrap();
        assert!(bytes.len() > 10 << 20, "{}: {key} has {} bytes", s3.name, bytes.len());
        let read: Vec<String> =
            String::from_utf8(bytes).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(read == lines, "{}: {} lines read back, {} written, or not in order", s3.name, read.len(), lines.len());
    }
}

#[test]
fn compressed_csv_parts_read_back() {
    let Some(s3) = S3::moto("csv") else { return };
    let sink = FileSink::new(s3.storage(), "csv")
        .bucket_assigner(DateTimeBucketAssigner::event_time(PathPattern::strftime("%Y-%m-%d--%H").unwrap()))
        .format(Format::csv().with_compression(Compression::Gzip));
    run_job(5_000, sink).unwrap();
    let mut rows: Vec<(u64, String)> = Vec::new();
    for (key, bytes) in visible(&s3.reader()) {
        assert!(key.ends_with(".csv.gz") && key.starts_with("csv/2026-11-29--"), "{key}");
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("id,sensor,at,celsius"), "each part starts with the header");
        rows.extend(lines.map(|l| {
            let (id, rest) = l.split_once(',').unwrap();
            (id.parse().unwrap(), rest.to_string())
        }));
    }
    rows.sort();
    let expected: Vec<(u64, String)> =
        (0..5_000).map(reading).map(|r| (r.id, format!("{},{},{:?}", r.sensor, r.at, r.celsius))).collect();
    assert!(rows == expected, "{} CSV rows read back, {} written, or not as written", rows.len(), expected.len());
}

/// Reading a Parquet part back with the `parquet` crate gives the records that went in.
#[cfg(feature = "parquet")]
#[test]
fn parquet_parts_read_back_as_the_input() {
    use eddy_files::ParquetFormat;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    for s3 in S3::all("parquet") {
        let format = Format::parquet(ParquetFormat::for_type::<Reading>().unwrap()).with_compression(Compression::Zstd);
        let sink = FileSink::new(s3.storage(), "readings")
            .bucket_assigner(DateTimeBucketAssigner::event_time(PathPattern::hive_hourly()))
            .format(format);
        let count = 9_000;
        run_job(count, sink).unwrap();
        let mut read: Vec<Reading> = Vec::new();
        let dir = tempfile::tempdir().unwrap();
        for (i, (key, bytes)) in visible(&s3.reader()).into_iter().enumerate() {
            assert!(key.ends_with(".parquet"), "{key}");
            let file = dir.path().join(format!("{i}.parquet"));
            std::fs::write(&file, &bytes).unwrap();
            let batches =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap()).unwrap().build().unwrap();
            for batch in batches {
                let batch = batch.unwrap();
                let names: Vec<_> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
                assert_eq!(names, ["id", "sensor", "at", "celsius"]);
                let rows: Vec<Reading> = serde_arrow::from_record_batch(&batch).unwrap();
                assert!(rows.iter().all(|r| key.contains(&hour_bucket(r.at))), "{key}");
                read.extend(rows);
            }
        }
        assert!(read.iter().all(|r| *r == reading(r.id)), "{}: rows read back as written", s3.name);
        support::assert_each_once(read.iter().map(|r| r.id).collect(), count, s3.name);
    }
}

/// What `execute` or `wait` says when the store cannot be used, and how long it took.
fn failure_of(sink: FileSink<Reading>) -> (String, Duration) {
    let started = Instant::now();
    let error = run_job(100, sink).expect_err("the job cannot succeed").to_string();
    eprintln!("{error}");
    (error, started.elapsed())
}

fn assert_names_sink_and_target(error: &str, target: &str, extra: &str) {
    assert!(error.contains(target), "the error should name the target {target:?}: {error}");
    assert!(error.contains(extra), "the error should say {extra:?}: {error}");
}

#[test]
fn an_unreachable_endpoint_fails_fast_with_a_clear_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = S3Config::new("results")
        .endpoint(&format!("http://127.0.0.1:{port}"))
        .allow_http(true)
        .credentials("k", "s")
        .connect_timeout(Duration::from_secs(1))
        .retries(1, Duration::from_secs(3));
    let (error, took) = failure_of(FileSink::new(Storage::s3(&config).unwrap(), "out"));
    assert_names_sink_and_target(&error, &format!("s3://results (at http://127.0.0.1:{port})/out"), "list");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn a_missing_bucket_is_named() {
    for s3 in S3::all("present") {
        let storage = Storage::s3(&s3.config().with_bucket("absent")).unwrap();
        let (error, _) = failure_of(FileSink::new(storage, "out"));
        assert_names_sink_and_target(&error, "s3://absent", "out/_eddy/");
        assert!(error.contains("sink 'files'"), "{}: the coordinator names the sink's uid: {error}", s3.name);
    }
}

#[test]
fn wrong_credentials_are_refused_with_a_clear_error() {
    let Some(s3) = S3::s3s_fs("locked") else { return };
    let config = s3.config().credentials("eddytest", "not-the-secret");
    let (error, _) = failure_of(FileSink::new(Storage::s3(&config).unwrap(), "out"));
    assert_names_sink_and_target(&error, "s3://locked", "403");
}

/// A server that answers every request with a well-formed HTTP response whose body is not
/// what S3 sends.
fn garbage_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let server = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut served = 0;
        while Instant::now() < deadline && served < 50 {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    served += 1;
                    stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request);
                    let body = "this is not XML { at all";
                    let answer =
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                    let _ = stream.write_all(answer.as_bytes());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    (port, server)
}

#[test]
fn a_server_that_answers_garbage_fails_the_job_cleanly() {
    let (port, _server) = garbage_server();
    let config =
        S3Config::new("results").endpoint(&format!("http://127.0.0.1:{port}")).allow_http(true).credentials("k", "s");
    let (error, took) = failure_of(FileSink::new(Storage::s3(&config).unwrap(), "out"));
    assert_names_sink_and_target(&error, &format!("http://127.0.0.1:{port}"), "out/_eddy/");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn a_local_directory_is_a_store_too() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FileSink::new(Storage::local(dir.path()).unwrap(), "out")
        .bucket_assigner(DateTimeBucketAssigner::event_time(PathPattern::hive_hourly()))
        .format(Format::json_lines().with_compression(Compression::Zstd));
    run_job(6_000, sink).unwrap();
    let reader = support::local_reader(dir.path());
    let mut ids: Vec<u64> = Vec::new();
    for (key, bytes) in visible(&reader) {
        assert!(key.ends_with(".jsonl.zst"), "{key}");
        let text = String::from_utf8(zstd::decode_all(&bytes[..]).unwrap()).unwrap();
        ids.extend(text.lines().map(|l| serde_json::from_str::<Reading>(l).unwrap().id));
    }
    support::assert_each_once(ids, 6_000, "local");
    let leftovers: BTreeMap<String, Vec<u8>> =
        support::objects(&reader).into_iter().filter(|(k, _)| k.contains("_eddy/staging")).collect();
    assert!(leftovers.is_empty(), "{:?}", leftovers.keys());
    assert!(visible_lines(&reader, "errors/").is_empty());
}
