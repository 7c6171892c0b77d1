//! The reference taxi job: pickup hot spots per geohash-7 cell and hour, and average trip
//! duration to JFK/LGA per geohash-6 pickup cell and hour, in event time (drop-off time).

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use eddy::prelude::*;
use geohash::Coord;
use serde::{Deserialize, Serialize};

use crate::tlc::TlcSchema;
use crate::trip::{airport_of, parse_time, Event, PickupCount, TripDuration, NYC};

/// The job's knobs; defaults are the reference values.
#[derive(Debug, Clone)]
pub struct Options {
    pub window_ms: u64,
    pub hotspot_precision: usize,
    pub airport_precision: usize,
    /// Emit an airport window only with at least this many trips ("more than one").
    pub min_airport_trips: u64,
    /// `Some`: bounded out-of-orderness; `None`: the input's watermark events (punctuated).
    pub out_of_orderness_ms: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            window_ms: 3_600_000,
            hotspot_precision: 7,
            airport_precision: 6,
            min_airport_trips: 2,
            out_of_orderness_ms: None,
        }
    }
}

/// How input lines are read.
#[derive(Debug, Clone)]
pub enum Format {
    /// One JSON event per line.
    Json,
    /// TLC CSV rows with this header.
    TlcCsv(TlcSchema),
}

/// A trip's facts the job uses, with times in ms since the epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TripFacts {
    pub pickup_lat: f64,
    pub pickup_lon: f64,
    pub dropoff_lat: f64,
    pub dropoff_lon: f64,
    pub pickup_ms: i64,
    pub dropoff_ms: i64,
}

/// An input line the job could not use, and why (written to the dead-letter output).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    pub reason: String,
    pub raw: String,
}

/// What a line is.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Trip(TripFacts),
    /// Event time has reached this point (a `{"type":"watermark"}` event).
    Watermark(i64),
    Dead(DeadLetter),
    /// A CSV header or an empty line.
    Skip,
}

impl Parsed {
    /// Event time: drop-off for trips, the mark itself for watermark events.
    pub fn time(&self) -> i64 {
        match self {
            Parsed::Trip(t) => t.dropoff_ms,
            Parsed::Watermark(w) => *w,
            _ => eddy::core::time::NO_TIMESTAMP,
        }
    }
}

/// Classifies one input line; never panics, whatever the line holds.
pub fn parse_line(line: String, format: &Format) -> Parsed {
    if line.trim().is_empty() {
        return Parsed::Skip;
    }
    let parsed = match format {
        Format::Json => parse_json(&line),
        Format::TlcCsv(schema) if schema.is_header(&line) => return Parsed::Skip,
        Format::TlcCsv(schema) => schema.parse(&line, 0).and_then(|trip| facts(&Event::Trip(trip))),
    };
    match parsed {
        Ok(parsed) => parsed,
        Err(reason) => Parsed::Dead(DeadLetter { reason, raw: line }),
    }
}

/// A JSON event read flat, borrowing its strings: serde's tagged-enum path buffers every
/// object before reading it, which made parsing most of the job's cost. Unknown fields are
/// ignored; a missing field is an error where it is needed.
#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    pickup_latitude: Option<f64>,
    pickup_longitude: Option<f64>,
    dropoff_latitude: Option<f64>,
    dropoff_longitude: Option<f64>,
    #[serde(borrow)]
    pickup_datetime: Option<Cow<'a, str>>,
    #[serde(borrow)]
    dropoff_datetime: Option<Cow<'a, str>>,
    #[serde(borrow)]
    watermark: Option<Cow<'a, str>>,
}

fn parse_json(line: &str) -> Result<Parsed, String> {
    let event: RawEvent = serde_json::from_str(line).map_err(|e| format!("not a trip or watermark event: {e}"))?;
    let field = |value: Option<f64>, name: &str| value.ok_or_else(|| format!("missing field `{name}`"));
    fn text<'a>(value: &'a Option<Cow<'a, str>>, name: &str) -> Result<&'a str, String> {
        value.as_deref().ok_or_else(|| format!("missing field `{name}`"))
    }
    match event.kind.as_ref() {
        "watermark" => {
            let mark = text(&event.watermark, "watermark")?;
            parse_time(mark).map(Parsed::Watermark).ok_or_else(|| format!("bad watermark time {mark:?}"))
        }
        "trip" => trip_facts(
            [
                field(event.pickup_latitude, "pickup_latitude")?,
                field(event.pickup_longitude, "pickup_longitude")?,
                field(event.dropoff_latitude, "dropoff_latitude")?,
                field(event.dropoff_longitude, "dropoff_longitude")?,
            ],
            text(&event.pickup_datetime, "pickup_datetime")?,
            text(&event.dropoff_datetime, "dropoff_datetime")?,
        ),
        other => Err(format!("unknown event type {other:?}")),
    }
}

fn facts(event: &Event) -> Result<Parsed, String> {
    let trip = match event {
        Event::Watermark { watermark } => {
            return parse_time(watermark)
                .map(Parsed::Watermark)
                .ok_or_else(|| format!("bad watermark time {watermark:?}"))
        }
        Event::Trip(trip) => trip,
    };
    let coordinates = [trip.pickup_latitude, trip.pickup_longitude, trip.dropoff_latitude, trip.dropoff_longitude];
    trip_facts(coordinates, &trip.pickup_datetime, &trip.dropoff_datetime)
}

/// Checks a trip (pickup lat, lon, drop-off lat, lon, and the two times) and keeps its facts.
fn trip_facts(coordinates: [f64; 4], pickup: &str, dropoff: &str) -> Result<Parsed, String> {
    let [pickup_latitude, pickup_longitude, dropoff_latitude, dropoff_longitude] = coordinates;
    let time = |text: &str, what: &str| parse_time(text).ok_or_else(|| format!("bad {what} time {text:?}"));
    let (pickup_ms, dropoff_ms) = (time(pickup, "pickup")?, time(dropoff, "drop-off")?);
    if dropoff_ms < pickup_ms {
        return Err("drop-off before pickup".into());
    }
    let zero = |lat: f64, lon: f64| lat == 0.0 && lon == 0.0;
    if zero(pickup_latitude, pickup_longitude) || zero(dropoff_latitude, dropoff_longitude) {
        return Err("0/0 coordinates".into());
    }
    Ok(Parsed::Trip(TripFacts {
        pickup_lat: pickup_latitude,
        pickup_lon: pickup_longitude,
        dropoff_lat: dropoff_latitude,
        dropoff_lon: dropoff_longitude,
        pickup_ms,
        dropoff_ms,
    }))
}

/// The geohash of a point (`Coord { x: lon, y: lat }`), or `None` off the globe.
pub fn geohash_of(lat: f64, lon: f64, precision: usize) -> Option<String> {
    geohash::encode(Coord { x: lon, y: lat }, precision).ok()
}

/// Counts the job keeps besides its outputs.
#[derive(Debug, Default)]
pub struct Tally {
    pub trips: AtomicU64,
    pub outside_nyc: AtomicU64,
}

/// The job's three outputs.
pub struct Outputs {
    pub pickups: DataStream<PickupCount>,
    pub durations: DataStream<TripDuration>,
    pub dead_letters: DataStream<DeadLetter>,
}

/// Builds the job on `lines`. Parsing and event time run at the source's parallelism
/// (`source_parallelism`), so every subtask sees the watermark events of its own input.
pub fn build(
    lines: &DataStream<String>,
    source_parallelism: usize,
    format: Format,
    options: &Options,
    tally: Arc<Tally>,
) -> Outputs {
    let parsed = lines.map(move |line| parse_line(line, &format)).name("Parse").set_parallelism(source_parallelism);
    let events = parsed.filter(|p| matches!(p, Parsed::Trip(_) | Parsed::Watermark(_)));
    let stamped = match options.out_of_orderness_ms {
        Some(bound) => events.assign_timestamps_and_watermarks(
            WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(bound)),
            Parsed::time,
        ),
        None => {
            events.assign_timestamps_and_watermarks(WatermarkStrategy::for_generator(watermark_events()), Parsed::time)
        }
    }
    .set_parallelism(source_parallelism);
    analyse(&parsed, &stamped, source_parallelism, options, tally)
}

/// Punctuated watermarks: a watermark event moves event time to its mark.
pub fn watermark_events() -> Punctuated<impl Fn(&Parsed, i64) -> Option<i64> + Clone + Send + Sync + 'static> {
    Punctuated(|p: &Parsed, time| matches!(p, Parsed::Watermark(_)).then_some(time))
}

/// The job after parsing: dead letters from `parsed`, the two analyses from `stamped` (the
/// trips and watermark events, with their event time and watermarks).
pub fn analyse(
    parsed: &DataStream<Parsed>,
    stamped: &DataStream<Parsed>,
    source_parallelism: usize,
    options: &Options,
    tally: Arc<Tally>,
) -> Outputs {
    let dead_letters = parsed.flat_map(|p| match p {
        Parsed::Dead(dead) => Some(dead),
        _ => None,
    });
    let trips = stamped
        .flat_map(move |p| match p {
            Parsed::Trip(t) => {
                tally.trips.fetch_add(1, Ordering::Relaxed);
                let inside = NYC.contains(t.pickup_lat, t.pickup_lon) && NYC.contains(t.dropoff_lat, t.dropoff_lon);
                if !inside {
                    tally.outside_nyc.fetch_add(1, Ordering::Relaxed);
                }
                inside.then_some(t)
            }
            _ => None,
        })
        .name("InNYC")
        .set_parallelism(source_parallelism);
    Outputs { pickups: hot_spots(&trips, options), durations: airport_durations(&trips, options), dead_letters }
}

fn window(options: &Options) -> TumblingEventTimeWindows {
    TumblingEventTimeWindows::of(Duration::from_millis(options.window_ms))
}

/// Pickups per geohash cell and window.
fn hot_spots(trips: &DataStream<TripFacts>, options: &Options) -> DataStream<PickupCount> {
    let precision = options.hotspot_precision;
    trips
        .flat_map(move |t| geohash_of(t.pickup_lat, t.pickup_lon, precision))
        .name("PickupCell")
        .key_by(|cell: &String| cell.clone())
        .window(window(options))
        .aggregate_with(Count, |cell, window, pickup_count| PickupCount {
            location: cell.clone(),
            pickup_count,
            timestamp: window.end,
        })
        .name("HotSpots")
        .uid("hot-spots")
}

/// Sums whole-minute durations and counts trips.
#[derive(Debug, Clone, Copy)]
struct SumCount;

impl AggregateFunction<(String, &'static str, i64)> for SumCount {
    type Acc = (i64, u64);
    type Out = (i64, u64);

    fn create_accumulator(&self) -> (i64, u64) {
        (0, 0)
    }
    fn add(&self, acc: &mut (i64, u64), trip: (String, &'static str, i64)) {
        acc.0 += trip.2;
        acc.1 += 1;
    }
    fn get_result(&self, acc: (i64, u64)) -> (i64, u64) {
        acc
    }
    fn merge(&self, acc: &mut (i64, u64), other: (i64, u64)) {
        acc.0 += other.0;
        acc.1 += other.1;
    }
}

/// Trips per (pickup cell, airport) and window, when there are at least `min_airport_trips`.
fn airport_durations(trips: &DataStream<TripFacts>, options: &Options) -> DataStream<TripDuration> {
    let (precision, min_trips) = (options.airport_precision, options.min_airport_trips);
    trips
        .flat_map(move |t| {
            let airport = airport_of(t.dropoff_lat, t.dropoff_lon)?;
            let minutes = (t.dropoff_ms - t.pickup_ms) / 60_000;
            Some((geohash_of(t.pickup_lat, t.pickup_lon, precision)?, airport, minutes))
        })
        .name("AirportTrip")
        .key_by(|trip: &(String, &'static str, i64)| (trip.0.clone(), trip.1.to_string()))
        .window(window(options))
        .aggregate_with(SumCount, move |(cell, airport), window, (sum, trips)| {
            (trips >= min_trips).then(|| TripDuration {
                location: cell.clone(),
                airport_code: airport.clone(),
                sum_trip_duration: sum,
                avg_trip_duration: sum as f64 / trips as f64,
                timestamp: window.end,
            })
        })
        .name("AirportDurations")
        .uid("airport-durations")
        .flat_map(|result| result)
}
