//! The taxi job computed a second way, for the end-to-end tests to compare with: plain loops
//! over the parsed input, written separately from the pipeline.

#![allow(dead_code)] // Each test file uses a different part.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use geohash::Coord;
use serde_json::Value;

pub const HOUR: i64 = 3_600_000;

/// A trip as the model sees it: times in ms, coordinates in degrees.
pub struct ModelTrip {
    pub pickup: (f64, f64),
    pub dropoff: (f64, f64),
    pub pickup_ms: i64,
    pub dropoff_ms: i64,
}

/// Expected results: hot spots by (cell, window end), airport sums and counts by
/// (cell, airport, window end), and how many lines are unusable.
#[derive(Default)]
pub struct Model {
    pub hot_spots: HotSpots,
    pub airports: BTreeMap<(String, String, i64), (i64, u64)>,
    pub dead: u64,
}

fn inside(lat: f64, lon: f64, (lat0, lat1, lon0, lon1): (f64, f64, f64, f64)) -> bool {
    lat >= lat0 && lat <= lat1 && lon >= lon0 && lon <= lon1
}

fn cell(point: (f64, f64), precision: usize) -> String {
    geohash::encode(Coord { x: point.1, y: point.0 }, precision).unwrap()
}

impl Model {
    pub fn add(&mut self, trip: Option<ModelTrip>) {
        let Some(t) = trip.filter(|t| t.dropoff_ms >= t.pickup_ms && t.pickup != (0.0, 0.0) && t.dropoff != (0.0, 0.0))
        else {
            self.dead += 1;
            return;
        };
        let nyc = (40.560, 40.878, -74.054, -73.722);
        if !inside(t.pickup.0, t.pickup.1, nyc) || !inside(t.dropoff.0, t.dropoff.1, nyc) {
            return;
        }
        let end = t.dropoff_ms.div_euclid(HOUR) * HOUR + HOUR;
        *self.hot_spots.entry((cell(t.pickup, 7), end)).or_default() += 1;
        let airport = if inside(t.dropoff.0, t.dropoff.1, (40.632, 40.654, -73.800, -73.761)) {
            "JFK"
        } else if inside(t.dropoff.0, t.dropoff.1, (40.766, 40.778, -73.881, -73.859)) {
            "LGA"
        } else {
            return;
        };
        let entry = self.airports.entry((cell(t.pickup, 6), airport.to_string(), end)).or_default();
        entry.0 += (t.dropoff_ms - t.pickup_ms) / 60_000;
        entry.1 += 1;
    }

    /// Airport windows with more than one trip.
    pub fn durations(&self) -> Durations {
        let more_than_one = self.airports.iter().filter(|(_, (_, n))| *n > 1);
        more_than_one
            .map(|((c, a, end), (sum, n))| (c.clone(), a.clone(), *end, *sum, *sum as f64 / *n as f64))
            .collect()
    }
}

fn millis(text: &str) -> Option<i64> {
    let text = text.trim_end_matches('Z');
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"))
        .ok()?;
    Some(naive.and_utc().timestamp_millis())
}

/// The model over JSON event lines (watermark events carry no data).
pub fn model_of_json(input: &str) -> Model {
    let mut model = Model::default();
    for line in input.lines() {
        let event: Option<Value> = serde_json::from_str(line).ok();
        if event.as_ref().and_then(|e| e.get("type")).and_then(Value::as_str) == Some("watermark") {
            continue;
        }
        let trip = event.filter(|e| e.get("type").and_then(Value::as_str) == Some("trip")).and_then(|e| {
            let number = |k: &str| e.get(k)?.as_f64();
            let time = |k: &str| millis(e.get(k)?.as_str()?);
            Some(ModelTrip {
                pickup: (number("pickup_latitude")?, number("pickup_longitude")?),
                dropoff: (number("dropoff_latitude")?, number("dropoff_longitude")?),
                pickup_ms: time("pickup_datetime")?,
                dropoff_ms: time("dropoff_datetime")?,
            })
        });
        model.add(trip);
    }
    model
}

/// The model over a TLC CSV file, finding columns by either naming.
pub fn model_of_csv(input: &str) -> Model {
    let mut lines = input.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |names: [&str; 2]| header.iter().position(|h| names.contains(h)).unwrap();
    let pickup_time = column(["tpepPickupDateTime", "lpepPickupDatetime"]);
    let dropoff_time = column(["tpepDropoffDateTime", "lpepDropoffDatetime"]);
    let coordinates = [
        column(["startLat", "pickupLatitude"]),
        column(["startLon", "pickupLongitude"]),
        column(["endLat", "dropoffLatitude"]),
        column(["endLon", "dropoffLongitude"]),
    ];
    let mut model = Model::default();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let number = |i: usize| fields.get(i)?.parse::<f64>().ok();
        let trip = (|| {
            Some(ModelTrip {
                pickup: (number(coordinates[0])?, number(coordinates[1])?),
                dropoff: (number(coordinates[2])?, number(coordinates[3])?),
                pickup_ms: millis(fields.get(pickup_time)?)?,
                dropoff_ms: millis(fields.get(dropoff_time)?)?,
            })
        })();
        model.add(trip);
    }
    model
}

/// Pickup counts by (cell, window end).
pub type HotSpots = BTreeMap<(String, i64), u64>;
/// Airport windows as (cell, airport, window end, sum of minutes, average).
pub type Durations = Vec<(String, String, i64, i64, f64)>;
