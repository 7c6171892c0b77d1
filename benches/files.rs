//! The file sink's throughput on the local store: records/s into JSON lines and Parquet
//! (Snappy) at parallelism 1 and 2, with checkpoints every second (exactly-once:
//! every checkpoint closes, fsyncs and commits every open part), next to what bounds it,
//! measured in the same run:
//!
//! - *encode only*: a plain loop serialising the records (serde_json into a buffer; serde_arrow
//!   batches into an in-memory Parquet writer), one thread, no job, no I/O;
//! - *job, no output*: the same generator job with a sink that drops every record.
//!
//! ```text
//! cargo bench --features parquet --bench files                 # 2 M records
//! FILES_RECORDS=1e7 FILES_PARALLELISM=1,2,4 cargo bench --features parquet --bench files
//! ```

#[path = "common/machine.rs"]
mod machine;

use std::time::{Duration, Instant};

use eddy::files::{DateTimeBucketAssigner, FileSink, FileSinkExt, Format, ParquetFormat, PathPattern, Storage};
use eddy::prelude::*;
use serde::{Deserialize, Serialize};

#[path = "../examples/common/allocator.rs"]
mod allocator;

/// A sensor reading: about 100 bytes as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    id: u64,
    sensor: String,
    at: i64,
    celsius: f64,
    status: String,
}

/// 2026-11-29T00:00:00Z.
const T0: i64 = 1_795_910_400_000;

/// Reading `i`: ten a second, so a few million span a few days of hourly buckets.
fn reading(i: u64) -> Reading {
    Reading {
        id: i,
        sensor: format!("sensor-{:04}", i % 1_000),
        at: T0 + i as i64 * 100,
        celsius: (i % 600) as f64 / 10.0 - 10.0,
        status: if i % 97 == 0 { "check".into() } else { "ok".into() },
    }
}

fn main() {
    allocator::return_freed_memory_promptly();
    let records =
        std::env::var("FILES_RECORDS").map_or(2e6, |v| v.parse::<f64>().expect("FILES_RECORDS: a number")) as u64;
    let parallelisms: Vec<usize> = std::env::var("FILES_PARALLELISM")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .map(|p| p.trim().parse().expect("FILES_PARALLELISM: numbers"))
        .collect();
    println!("# file sink, {records} records, {}", machine::machine());
    println!("| config | p | wall s | records/s | output MB | parts | vs encode only |");
    println!("|---|---|---|---|---|---|---|");
    let json_ceiling = encode_json(records);
    row("encode only: JSON lines", 1, json_ceiling, 0, 0, json_ceiling);
    let parquet_ceiling = encode_parquet(records);
    row("encode only: Parquet", 1, parquet_ceiling, 0, 0, parquet_ceiling);
    for &p in &parallelisms {
        let dropped = job_without_output(records, p);
        row("job, no output", p, dropped, 0, 0, json_ceiling);
        for (name, format, ceiling) in [
            ("JSON lines", Format::json_lines(), json_ceiling),
            (
                "Parquet, Snappy",
                Format::parquet(ParquetFormat::for_type::<Reading>().expect("schema")),
                parquet_ceiling,
            ),
        ] {
            let (took, bytes, parts) = job_into_files(records, p, format);
            row(name, p, took, bytes, parts, ceiling);
        }
    }
}

fn row(config: &str, p: usize, took: Duration, bytes: u64, parts: usize, ceiling: Duration) {
    let records = RECORDS.with(|r| *r.borrow());
    let rate = records as f64 / took.as_secs_f64();
    let ceiling_rate = records as f64 / ceiling.as_secs_f64();
    let mb = if bytes == 0 { "–".to_string() } else { format!("{:.1}", bytes as f64 / 1e6) };
    let parts = if parts == 0 { "–".to_string() } else { parts.to_string() };
    println!(
        "| {config} | {p} | {:.2} | {:.2} M | {mb} | {parts} | {:.2} |",
        took.as_secs_f64(),
        rate / 1e6,
        rate / ceiling_rate
    );
}

thread_local! {
    static RECORDS: std::cell::RefCell<u64> = const { std::cell::RefCell::new(0) };
}

/// serde_json over every record into one reused buffer.
fn encode_json(records: u64) -> Duration {
    RECORDS.with(|r| *r.borrow_mut() = records);
    let started = Instant::now();
    let mut buffer = Vec::with_capacity(1 << 20);
    let mut bytes = 0;
    for i in 0..records {
        serde_json::to_writer(&mut buffer, &reading(i)).expect("json");
        buffer.push(b'\n');
        if buffer.len() > 1 << 20 {
            bytes += buffer.len();
            buffer.clear();
        }
    }
    std::hint::black_box(bytes + buffer.len());
    started.elapsed()
}

/// serde_arrow batches of 4,096 records into a Parquet writer on a buffer.
fn encode_parquet(records: u64) -> Duration {
    use eddy::files::parquet::arrow::ArrowWriter;
    use eddy::files::parquet::basic::Compression as Codec;
    use eddy::files::parquet::file::properties::WriterProperties;

    let format = ParquetFormat::for_type::<Reading>().expect("schema");
    let schema = format.schema();
    let fields = schema.fields().to_vec();
    let started = Instant::now();
    let properties = WriterProperties::builder().set_compression(Codec::SNAPPY).build();
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(properties)).expect("writer");
    let mut batch = Vec::with_capacity(4_096);
    for i in 0..records {
        batch.push(reading(i));
        if batch.len() == 4_096 || i + 1 == records {
            let arrow = eddy::files::serde_arrow::to_record_batch(&fields, &batch).expect("batch");
            writer.write(&arrow).expect("write");
            batch.clear();
        }
    }
    std::hint::black_box(writer.into_inner().expect("close").len());
    started.elapsed()
}

/// The generator job at parallelism `p`, dropping every record.
fn job_without_output(records: u64, p: usize) -> Duration {
    let env = StreamEnvironment::new();
    env.set_parallelism(p);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_secs(1)));
    env.generate(Some(records), reading).uid("readings").map(|r: Reading| r.id).filter(|id| *id == u64::MAX).print();
    let started = Instant::now();
    env.execute("no output").expect("start").wait().expect("job");
    started.elapsed()
}

/// The generator job at parallelism `p` into hourly buckets of a local directory; checks
/// that every record is there once (by count), returns (time, bytes, parts).
fn job_into_files(records: u64, p: usize, format: Format) -> (Duration, u64, usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::local(dir.path()).expect("store");
    let bulk = format.is_bulk();
    let env = StreamEnvironment::new();
    env.set_parallelism(p);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_secs(1)));
    let sink = FileSink::new(storage.clone(), "readings")
        .bucket_assigner(DateTimeBucketAssigner::event_time(PathPattern::hive_hourly()))
        .format(format);
    env.generate(Some(records), reading)
        .uid("readings")
        .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |r: &Reading| r.at)
        .sink_to_files(sink)
        .expect("sink")
        .uid("files");
    let started = Instant::now();
    env.execute("files").expect("start").wait().expect("job");
    let took = started.elapsed();
    let parts = storage.list_visible("readings").expect("list");
    let mut bytes = 0;
    let mut seen = 0;
    for key in &parts {
        let data = storage.read(key).expect("read");
        bytes += data.len() as u64;
        seen += if bulk { parquet_rows(&data) } else { data.iter().filter(|&&b| b == b'\n').count() as u64 };
    }
    assert_eq!(seen, records, "every record once");
    (took, bytes, parts.len())
}

/// Rows in a Parquet file, from its footer.
fn parquet_rows(data: &[u8]) -> u64 {
    use eddy::files::parquet::file::reader::{FileReader, SerializedFileReader};
    let file = tempfile::tempfile().expect("temp file");
    std::io::Write::write_all(&mut &file, data).expect("write");
    let reader = SerializedFileReader::new(file).expect("parquet");
    reader.metadata().file_metadata().num_rows() as u64
}
