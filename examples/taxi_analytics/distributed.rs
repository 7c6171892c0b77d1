//! The taxi job spread over several processes (`eddy-cluster`; a job of your own gets it
//! through eddy's `cluster` feature as `eddy::cluster`): start the same command in as many
//! processes as you like, with the same `--application-id`; the Kafka consumer group shares
//! the trip topic's partitions among them, and the rows in `--pickup-topic` and
//! `--duration-topic` (read them `read_committed`) are those of one process.
//!
//! ```text
//! taxi_analytics --kafka-brokers B --topic T --application-id A --checkpoint-store file:///shared/dir \
//!     [--pickup-topic P] [--duration-topic D] [--parallelism N] [--bounded]
//! ```
//!
//! `--checkpoint-store s3://bucket/prefix --s3-endpoint http://host:port` keeps the state in
//! S3. SIGTERM / Ctrl-C commits, hands this process's tasks back to the group and exits 0.
//!
//! One extract (parse, keep trips inside NYC) feeds two keyed-window branches, each a
//! sub-topology of its own behind its own repartition topic, as Kafka Streams cuts a topology
//! at each `key_by`: hot spots (pickups per geohash cell) and airport trips (per pickup cell
//! and airport, with their durations). Event time is the drop-off time; watermarks come from
//! bounded out-of-orderness (`--out-of-orderness-ms`, default 60 s): the input's watermark
//! events are not used, and records that are not trips are skipped (no dead-letter output).

use std::time::Duration;

use clap::Args;
use eddy_cluster::{Branch, InputRecord, Keyed, WindowedJob};
use serde::{Deserialize, Serialize};

use crate::job::{geohash_of, parse_line, Format, Options, Parsed};
use crate::membership::{self, Membership};
use crate::trip::{airport_of, PickupCount, TripDuration, NYC};

/// The distributed mode's flags.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Run distributed: this process joins the job named A (a Kafka consumer group) with
    /// every other process started with the same A, reads its share of --topic and writes to
    /// --pickup-topic and --duration-topic.
    #[arg(long, value_name = "A", requires_all = ["kafka_brokers", "topic", "checkpoint_store"],
          conflicts_with_all = ["input", "output", "report", "dead_letter", "checkpoint_dir", "restore",
                                "metrics_addr", "es", "s3", "source", "sink"])]
    pub application_id: Option<String>,
    #[command(flatten)]
    pub membership: Membership,
}

/// What the two branches group by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Key {
    /// Hot spots: a pickup cell.
    Cell(String),
    /// Airport trips: a pickup cell and the airport.
    CellAirport(String, String),
}

/// The branches, in `Keyed::branch` order.
const HOT_SPOTS: usize = 0;
const AIRPORT_TRIPS: usize = 1;

/// Bounded out-of-orderness when none is given: the disorder `taxi_replay` generates.
const DEFAULT_OUT_OF_ORDERNESS_MS: u64 = 60_000;

/// The taxi job as sub-topologies: trips → cells, then hot spots and airport trips.
struct Taxi {
    options: Options,
    pickup_topic: String,
    duration_topic: String,
}

impl WindowedJob for Taxi {
    type Key = Key;
    /// Whole minutes of a trip (0 for a hot-spot pickup, which only counts).
    type Value = i64;
    /// (sum of the values, number of trips).
    type Accumulator = (i64, u64);

    fn branches(&self) -> Vec<Branch> {
        vec![
            Branch::new("hot-spots").output_topic(&self.pickup_topic),
            Branch::new("airport-trips").output_topic(&self.duration_topic),
        ]
    }

    fn window_ms(&self) -> i64 {
        self.options.window_ms as i64
    }

    fn out_of_orderness_ms(&self) -> i64 {
        self.options.out_of_orderness_ms.unwrap_or(DEFAULT_OUT_OF_ORDERNESS_MS) as i64
    }

    fn extract(&self, record: &InputRecord<'_>, out: &mut Vec<Keyed<Key, i64>>) {
        let line = String::from_utf8_lossy(record.payload).into_owned();
        // As in one process: trips inside NYC; watermark events, dead letters and empty
        // records are skipped.
        let Parsed::Trip(t) = parse_line(line, &Format::Json) else { return };
        if !(NYC.contains(t.pickup_lat, t.pickup_lon) && NYC.contains(t.dropoff_lat, t.dropoff_lon)) {
            return;
        }
        let timestamp = t.dropoff_ms;
        if let Some(cell) = geohash_of(t.pickup_lat, t.pickup_lon, self.options.hotspot_precision) {
            out.push(Keyed { branch: HOT_SPOTS, key: Key::Cell(cell), value: 0, timestamp });
        }
        let airport = airport_of(t.dropoff_lat, t.dropoff_lon);
        let cell = geohash_of(t.pickup_lat, t.pickup_lon, self.options.airport_precision);
        if let (Some(airport), Some(cell)) = (airport, cell) {
            let minutes = (t.dropoff_ms - t.pickup_ms) / 60_000;
            out.push(Keyed {
                branch: AIRPORT_TRIPS,
                key: Key::CellAirport(cell, airport.into()),
                value: minutes,
                timestamp,
            });
        }
    }

    fn add(&self, _branch: usize, (sum, trips): &mut (i64, u64), minutes: i64) {
        *sum += minutes;
        *trips += 1;
    }

    fn format(&self, _branch: usize, key: &Key, _start: i64, end: i64, &(sum, trips): &(i64, u64)) -> Option<Vec<u8>> {
        let json = match key {
            Key::Cell(cell) => {
                serde_json::to_vec(&PickupCount { location: cell.clone(), pickup_count: trips, timestamp: end })
            }
            Key::CellAirport(cell, airport) => {
                if trips < self.options.min_airport_trips {
                    return None;
                }
                serde_json::to_vec(&TripDuration {
                    location: cell.clone(),
                    airport_code: airport.clone(),
                    sum_trip_duration: sum,
                    avg_trip_duration: sum as f64 / trips as f64,
                    timestamp: end,
                })
            }
        };
        Some(json.expect("results serialize"))
    }
}

/// The distributed run's settings, from the flags.
pub struct Settings<'a> {
    pub cluster: &'a ClusterArgs,
    pub kafka: &'a crate::kafka::KafkaArgs,
    pub options: Options,
    /// The S3-compatible server of an `s3://` checkpoint store.
    pub s3_endpoint: Option<String>,
    pub parallelism: Option<usize>,
    pub checkpoint_interval_ms: u64,
}

/// Runs this process's share until the input ends (`--bounded`) or SIGTERM.
pub fn run(settings: Settings<'_>) -> anyhow::Result<()> {
    let (cluster, kafka) = (settings.cluster, settings.kafka);
    let mut config = cluster.membership.config(
        kafka.kafka_brokers.as_deref().unwrap_or_default(),
        cluster.application_id.as_deref().unwrap_or_default(),
        kafka.topic.as_deref().unwrap_or_default(),
        &kafka.pickup_topic,
    );
    config.s3_endpoint = settings.s3_endpoint;
    config.threads = settings.parallelism.unwrap_or(1);
    config.bounded = kafka.bounded;
    config.commit_interval = Duration::from_millis(settings.checkpoint_interval_ms);
    let job = Taxi {
        options: settings.options,
        pickup_topic: kafka.pickup_topic.clone(),
        duration_topic: kafka.duration_topic.clone(),
    };
    membership::run("taxi analytics", job, &config)
}
