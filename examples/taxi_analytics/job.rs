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
use crate::trip::{airport_of, format_time, parse_time, Event, PickupCount, TripDuration, NYC};

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
    /// Watermark alignment: a source subtask whose event time runs more than this many
    /// milliseconds ahead of the slowest pauses until it has caught up (`None`: not aligned).
    pub max_drift_ms: Option<u64>,
}

/// How often aligned sources compare their watermarks, and how often bounded
/// out-of-orderness generates them: short next to how fast a file's trips pass.
const ALIGNMENT_INTERVAL: Duration = Duration::from_millis(20);

impl Default for Options {
    fn default() -> Self {
        Options {
            window_ms: 3_600_000,
            hotspot_precision: 7,
            airport_precision: 6,
            min_airport_trips: 2,
            out_of_orderness_ms: None,
            max_drift_ms: Some(2 * 3_600_000),
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

/// A trip's facts the job uses, with times in ms since the epoch (serde: a distributed run
/// carries them through a repartition topic).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
    #[serde(borrow)]
    pickup_latitude: Option<Coordinate<'a>>,
    #[serde(borrow)]
    pickup_longitude: Option<Coordinate<'a>>,
    #[serde(borrow)]
    dropoff_latitude: Option<Coordinate<'a>>,
    #[serde(borrow)]
    dropoff_longitude: Option<Coordinate<'a>>,
    #[serde(borrow)]
    pickup_datetime: Option<Cow<'a, str>>,
    #[serde(borrow)]
    dropoff_datetime: Option<Cow<'a, str>>,
    #[serde(borrow)]
    watermark: Option<Cow<'a, str>>,
}

/// A coordinate as a JSON line gives it: a number, or text (a string, or a bare `NaN` or
/// `Infinity` as Python's `json` writes them), which is read as a CSV field is, so a bad
/// coordinate gets the same reason from either format.
#[derive(Debug)]
enum Coordinate<'a> {
    Number(f64),
    Text(Cow<'a, str>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Coordinate<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Coordinate<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Coordinate::Number(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Coordinate::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Coordinate::Number(v as f64))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Coordinate::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Coordinate::Text(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The value of a coordinate field, or the reason it has none (the CSV reader's wording).
fn coordinate(value: Option<Coordinate<'_>>, name: &str, what: &str) -> Result<f64, String> {
    let text = match value {
        None => return Err(format!("missing field `{name}`")),
        Some(Coordinate::Number(v)) => return Ok(v),
        Some(Coordinate::Text(text)) => text,
    };
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("unparsable {what} {text:?}")),
    }
}

fn parse_json(line: &str) -> Result<Parsed, String> {
    let event: RawEvent = match serde_json::from_str(line) {
        Ok(event) => event,
        Err(e) => {
            return parse_json_with_bare_non_numbers(line).unwrap_or(Err(format!("not a trip or watermark event: {e}")))
        }
    };
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
                coordinate(event.pickup_latitude, "pickup_latitude", "pickup latitude")?,
                coordinate(event.pickup_longitude, "pickup_longitude", "pickup longitude")?,
                coordinate(event.dropoff_latitude, "dropoff_latitude", "drop-off latitude")?,
                coordinate(event.dropoff_longitude, "dropoff_longitude", "drop-off longitude")?,
            ],
            text(&event.pickup_datetime, "pickup_datetime")?,
            text(&event.dropoff_datetime, "dropoff_datetime")?,
        ),
        other => Err(format!("unknown event type {other:?}")),
    }
}

/// A line that is JSON but for bare `NaN`, `Infinity` or `-Infinity` (not JSON, but what
/// Python's `json` writes for such floats), read with those as strings; `None` if it is not
/// such a line.
#[cold]
fn parse_json_with_bare_non_numbers(line: &str) -> Option<Result<Parsed, String>> {
    let mut quoted = String::with_capacity(line.len() + 8);
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if !in_string {
            if let Some(token) = ["NaN", "-Infinity", "Infinity"].into_iter().find(|t| rest.starts_with(t)) {
                quoted.push('"');
                quoted.push_str(token);
                quoted.push('"');
                rest = &rest[token.len()..];
                changed = true;
                continue;
            }
        }
        match c {
            '"' if !escaped => in_string = !in_string,
            _ => {}
        }
        escaped = in_string && c == '\\' && !escaped;
        quoted.push(c);
        rest = &rest[c.len_utf8()..];
    }
    let reparsed = changed.then(|| parse_json(&quoted))?;
    // What was wrong must be one of those values: a line they did not break stays invalid.
    Some(reparsed.and_then(|_| Err("not a trip or watermark event: NaN or Infinity where no number is needed".into())))
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

/// A trip that came after the windows of its hour had fired (the watermark had passed
/// them), so no result counts it: written to the late-trips output instead of vanishing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LateTrip {
    pub pickup_latitude: f64,
    pub pickup_longitude: f64,
    pub dropoff_latitude: f64,
    pub dropoff_longitude: f64,
    pub pickup_datetime: String,
    pub dropoff_datetime: String,
}

impl LateTrip {
    fn of(t: &TripFacts) -> Self {
        LateTrip {
            pickup_latitude: t.pickup_lat,
            pickup_longitude: t.pickup_lon,
            dropoff_latitude: t.dropoff_lat,
            dropoff_longitude: t.dropoff_lon,
            pickup_datetime: format_time(t.pickup_ms),
            dropoff_datetime: format_time(t.dropoff_ms),
        }
    }
}

/// The job's four outputs.
pub struct Outputs {
    pub pickups: DataStream<PickupCount>,
    pub durations: DataStream<TripDuration>,
    /// Lines the job could not use, with the reason: unparsable, or unreadable (too long,
    /// not UTF-8; the source names the file and line).
    pub dead_letters: DataStream<DeadLetter>,
    /// Trips in NYC that came after their hour's windows had fired.
    pub late: DataStream<LateTrip>,
}

/// Builds the job on `lines`. Parsing and event time run at the source's parallelism
/// (`source_parallelism`), chained to it, so every subtask sees the watermark events of its
/// own input and its source pauses when they run too far ahead (watermark alignment).
pub fn build(
    lines: &DataStream<String>,
    source_parallelism: usize,
    format: Format,
    options: &Options,
    tally: Arc<Tally>,
) -> Outputs {
    let parsed = lines.map(move |line| parse_line(line, &format)).name("Parse").set_parallelism(source_parallelism);
    let events =
        parsed.filter(|p| matches!(p, Parsed::Trip(_) | Parsed::Watermark(_))).set_parallelism(source_parallelism);
    let stamped = match options.out_of_orderness_ms {
        Some(bound) => events.assign_timestamps_and_watermarks(
            aligned(WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(bound)), options)
                .with_interval(ALIGNMENT_INTERVAL),
            Parsed::time,
        ),
        None => events.assign_timestamps_and_watermarks(
            aligned(WatermarkStrategy::for_generator(watermark_events()), options),
            Parsed::time,
        ),
    }
    .set_parallelism(source_parallelism);
    analyse(&parsed, &stamped, unreadable(lines), source_parallelism, options, tally)
}

/// The records `stream`'s source could not use (lines too long or not UTF-8, Kafka records
/// that are not events) as the job's dead letters: the source's dead letters hold the
/// record's bytes, which JSON shows with U+FFFD for the invalid ones, and the reason starts
/// with where the record was (file and line, or topic-partition and offset).
pub fn unreadable<T: Clone + Send + 'static>(stream: &DataStream<T>) -> DataStream<DeadLetter> {
    stream.dead_letters::<RawRecord>().map(|letter| DeadLetter {
        reason: format!("{}, {}: {}", letter.input.split, letter.input.position, letter.error),
        raw: String::from_utf8_lossy(&letter.input.payload).into_owned(),
    })
}

/// Punctuated watermarks: a watermark event moves event time to its mark.
pub fn watermark_events() -> Punctuated<impl Fn(&Parsed, i64) -> Option<i64> + Clone + Send + Sync + 'static> {
    Punctuated(|p: &Parsed, time| matches!(p, Parsed::Watermark(_)).then_some(time))
}

/// The job after parsing: dead letters from `parsed` and `unreadable`, the two analyses and
/// the late trips from `stamped` (the trips and watermark events, with their event time and
/// watermarks).
pub fn analyse(
    parsed: &DataStream<Parsed>,
    stamped: &DataStream<Parsed>,
    unreadable: DataStream<DeadLetter>,
    source_parallelism: usize,
    options: &Options,
    tally: Arc<Tally>,
) -> Outputs {
    let dead_letters = parsed
        .flat_map(|p| match p {
            Parsed::Dead(dead) => Some(dead),
            _ => None,
        })
        .union(&[unreadable]);
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
    let late_tag = OutputTag::new("late trips");
    let pickups = hot_spots(&trips, options, &late_tag);
    let late = pickups.side_output(&late_tag).map(|(_, trip): (String, TripFacts)| LateTrip::of(&trip));
    Outputs { pickups, durations: airport_durations(&trips, options), dead_letters, late }
}

/// `strategy`, aligned across the source's subtasks (and a Kafka source's partitions) when
/// `options` say so.
pub fn aligned<G>(strategy: WatermarkStrategy<G>, options: &Options) -> WatermarkStrategy<G> {
    match options.max_drift_ms {
        Some(drift) => strategy.with_watermark_alignment("trips", Duration::from_millis(drift), ALIGNMENT_INTERVAL),
        None => strategy,
    }
}

/// The names of the two `key_by`s' repartitions: a distributed run cuts the job there, into
/// the topics `<application id>-hot-spots-repartition` and
/// `<application id>-airport-trips-repartition` (the one-process run ignores them).
pub const HOT_SPOTS: &str = "hot-spots";
pub const AIRPORT_TRIPS: &str = "airport-trips";

fn window(options: &Options) -> TumblingEventTimeWindows {
    TumblingEventTimeWindows::of(Duration::from_millis(options.window_ms))
}

/// Pickups per geohash cell and window; trips that come after their window fired go to
/// `late` (every trip in NYC passes here, so this is where lateness is decided).
fn hot_spots(
    trips: &DataStream<TripFacts>,
    options: &Options,
    late: &OutputTag<(String, TripFacts)>,
) -> DataStream<PickupCount> {
    let precision = options.hotspot_precision;
    trips
        .flat_map(move |t| geohash_of(t.pickup_lat, t.pickup_lon, precision).map(|cell| (cell, t)))
        .name("PickupCell")
        .key_by(|(cell, _): &(String, TripFacts)| cell.clone())
        .repartitioned(Repartitioned::named(HOT_SPOTS))
        .window(window(options))
        .side_output_late_data(late)
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

impl AggregateFunction<(String, String, i64)> for SumCount {
    type Acc = (i64, u64);
    type Out = (i64, u64);

    fn create_accumulator(&self) -> (i64, u64) {
        (0, 0)
    }
    fn add(&self, acc: &mut (i64, u64), trip: (String, String, i64)) {
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
            Some((geohash_of(t.pickup_lat, t.pickup_lon, precision)?, airport.to_string(), minutes))
        })
        .name("AirportTrip")
        .key_by(|trip: &(String, String, i64)| (trip.0.clone(), trip.1.clone()))
        .repartitioned(Repartitioned::named(AIRPORT_TRIPS))
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
