//! `--es URL`: the job's results as documents in Elasticsearch, for a Kibana dashboard (what
//! the reference application does). Each result is indexed with an id that names it (its
//! cell, airport and window end), so a rerun or a replay after a failure overwrites the
//! same documents and never double-counts. Documents Elasticsearch refuses go, with the
//! reason, to `elasticsearch_failed.jsonl` in the output directory (Firehose's
//! `elasticsearch-failed` prefix).

use std::path::Path;

use anyhow::{bail, Context};
use eddy_elasticsearch::{Action, ElasticsearchSink, ElasticsearchSinkExt};
use serde::Serialize;

use crate::job::Outputs;
use crate::sink::write_json_lines;
use crate::trip::{PickupCount, TripDuration};

/// The Elasticsearch flags.
#[derive(clap::Args, Debug, Clone)]
pub struct EsArgs {
    /// Also write the results to the Elasticsearch cluster at this URL
    /// (`http://host:9200`; credentials as `http://user:password@host:9200`).
    #[arg(long, value_name = "URL")]
    pub es: Option<String>,
    /// Index of the hot-spot documents.
    #[arg(long, value_name = "NAME", default_value = "pickup_count")]
    pub es_pickup_index: String,
    /// Index of the airport-duration documents.
    #[arg(long, value_name = "NAME", default_value = "trip_duration")]
    pub es_duration_index: String,
}

/// The document id of a hot-spot result: `<cell>@<window end ms>`.
pub fn pickup_id(p: &PickupCount) -> String {
    format!("{}@{}", p.location, p.timestamp)
}

/// The document id of an airport result: `<cell>@<airport>@<window end ms>`.
pub fn duration_id(d: &TripDuration) -> String {
    format!("{}@{}@{}", d.location, d.airport_code, d.timestamp)
}

/// Adds the Elasticsearch sinks when `--es` is given; checks the flags before the job runs.
/// Returns the file the refused documents go to.
pub fn add_sinks(outputs: &Outputs, args: &EsArgs, output: &Path) -> anyhow::Result<Option<std::path::PathBuf>> {
    let Some(url) = &args.es else { return Ok(None) };
    check_index_name("--es-pickup-index", &args.es_pickup_index)?;
    check_index_name("--es-duration-index", &args.es_duration_index)?;
    let pickups = sink(url, &args.es_pickup_index, pickup_id)?;
    let durations = sink(url, &args.es_duration_index, duration_id)?;
    let failed = outputs
        .pickups
        .sink_to_elasticsearch(pickups)
        .name("Sink: Elasticsearch pickup_count")
        .union(&[outputs.durations.sink_to_elasticsearch(durations).name("Sink: Elasticsearch trip_duration")]);
    let path = output.join("elasticsearch_failed.jsonl");
    write_json_lines(&failed, &path);
    Ok(Some(path))
}

fn sink<T: Serialize + 'static>(url: &str, index: &str, id: fn(&T) -> String) -> anyhow::Result<ElasticsearchSink<T>> {
    let index = index.to_string();
    ElasticsearchSink::builder(url, move |result: &T| Action::index(index.clone(), result).map(|a| a.id(id(result))))
        .build()
        .context("--es")
}

/// Elasticsearch's rules for index names, checked up front rather than as a refusal later.
fn check_index_name(flag: &str, name: &str) -> anyhow::Result<()> {
    let forbidden = |c: char| c.is_ascii_uppercase() || c.is_whitespace() || "\\/*?\"<>|,#:".contains(c);
    if name.is_empty() || name.starts_with(['-', '_', '+']) || name.chars().any(forbidden) || name.len() > 255 {
        bail!(
            "{flag} {name:?} is not a valid index name: use lowercase letters, digits and `-`/`_`, not starting with -, _ or +"
        );
    }
    Ok(())
}
