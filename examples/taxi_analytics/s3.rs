//! `--s3 URL`: both result streams and the dead letters into an object store, partitioned by
//! hour, through eddy's file sink (`eddy::files`, feature `files`; Parquet needs `parquet`).
//!
//! ```text
//! PREFIX/pickup_count/year=2016/month=01/day=06/hour=12/part-….jsonl   (or .parquet)
//! PREFIX/trip_duration/year=2016/month=01/day=06/hour=12/part-….jsonl
//! PREFIX/errors/<reason>/part-….jsonl                                  {"reason":…,"raw":…}
//! ```
//!
//! A window result's event time is the last millisecond of its window (as in Flink), so each
//! result lands in the UTC hour its window covers. `URL` is `s3://BUCKET/PREFIX` (credentials
//! from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`) or `file:///DIR`. The job
//! is not checkpointed, so parts become visible when the input ends.

use clap::ValueEnum;

use crate::job::Outputs;

/// The format of the result parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum S3Format {
    /// One JSON document per line, as in the `--output` files.
    Json,
    /// Parquet with the same field names (needs the `parquet` feature).
    Parquet,
}

/// Where and how `--s3` writes.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "files"), allow(dead_code))]
pub struct S3Output {
    pub url: String,
    pub endpoint: Option<String>,
    pub format: S3Format,
}

/// A dead letter's reason as a directory name: its words before any detail (`:` or a
/// quote), e.g. `missing field \`x\`` → `missing-field`.
#[cfg(feature = "files")]
pub fn reason_directory(reason: &str) -> String {
    let words = reason.split([':', '"', '`', '(']).next().unwrap_or_default().to_ascii_lowercase();
    let slug: Vec<&str> = words.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    if slug.is_empty() {
        "other".to_string()
    } else {
        slug.join("-")
    }
}

/// Adds the `--s3` sinks to the job; checks the URL and the format before the job runs.
#[cfg(feature = "files")]
pub fn add_sinks(outputs: &Outputs, output: &S3Output) -> anyhow::Result<()> {
    use eddy::files::{DateTimeBucketAssigner, FileSink, FileSinkExt, PathPattern, S3Config, Storage};

    use crate::trip::{PickupCount, TripDuration};

    let mut s3 = S3Config::from_env("");
    if let Some(endpoint) = &output.endpoint {
        s3 = s3.endpoint(endpoint).allow_http(endpoint.starts_with("http://"));
    }
    let (storage, prefix) = Storage::from_url(&output.url, s3)?;
    let under = |name: &str| if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
    let errors = format!("{}/!{{firehose:error-output-type}}/", under("errors"));
    fn hourly<T>() -> DateTimeBucketAssigner<T> {
        DateTimeBucketAssigner::event_time(PathPattern::hive_hourly())
    }
    let pickups = FileSink::new(storage.clone(), &under("pickup_count"))
        .bucket_assigner(hourly())
        .format(format_of::<PickupCount>(output.format)?)
        .error_prefix(&errors)?;
    outputs.pickups.sink_to_files(pickups)?;
    let durations = FileSink::new(storage.clone(), &under("trip_duration"))
        .bucket_assigner(hourly())
        .format(format_of::<TripDuration>(output.format)?)
        .error_prefix(&errors)?;
    outputs.durations.sink_to_files(durations)?;
    let dead_letters = FileSink::new(storage, &under("errors"))
        .bucket_assigner(|dead: &crate::job::DeadLetter, _: &eddy::files::BucketContext| reason_directory(&dead.reason))
        .error_prefix(&errors)?;
    outputs.dead_letters.sink_to_files(dead_letters)?;
    Ok(())
}

/// JSON lines, or Parquet with the schema of `T`.
#[cfg(feature = "files")]
fn format_of<T: serde::de::DeserializeOwned>(format: S3Format) -> anyhow::Result<eddy::files::Format> {
    match format {
        S3Format::Json => Ok(eddy::files::Format::json_lines()),
        #[cfg(feature = "parquet")]
        S3Format::Parquet => Ok(eddy::files::Format::parquet(eddy::files::ParquetFormat::for_type::<T>()?)),
        #[cfg(not(feature = "parquet"))]
        S3Format::Parquet => anyhow::bail!(
            "--s3-format parquet needs the parquet feature: cargo run --release --features parquet --example taxi_analytics -- …"
        ),
    }
}

/// Without the `files` feature there is no file sink to add.
#[cfg(not(feature = "files"))]
pub fn add_sinks(_: &Outputs, output: &S3Output) -> anyhow::Result<()> {
    anyhow::bail!(
        "--s3 {} needs the files feature: cargo run --release --features files --example taxi_analytics -- --s3 … \
         (or --features parquet for --s3-format parquet)",
        output.url
    )
}
