//! The taxi job's data: trip and watermark events as JSON lines, the areas it filters by,
//! and the two kinds of results. Shared by the job, the replayer, the generator and tests.

#![allow(dead_code)] // Each including binary uses a different part of this module.

use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// A latitude/longitude rectangle, bounds inclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    pub min_lat: f64,
    pub max_lat: f64,
    pub min_lon: f64,
    pub max_lon: f64,
}

impl Area {
    /// Whether (lat, lon) lies inside.
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        (self.min_lat..=self.max_lat).contains(&lat) && (self.min_lon..=self.max_lon).contains(&lon)
    }
}

/// Trips are kept only if pickup and drop-off both lie here (the reference job's NYC box).
pub const NYC: Area = Area { min_lat: 40.560, max_lat: 40.878, min_lon: -74.054, max_lon: -73.722 };
/// Drop-offs here go to JFK (checked first).
pub const JFK: Area = Area { min_lat: 40.632, max_lat: 40.654, min_lon: -73.800, max_lon: -73.761 };
/// Drop-offs here go to LaGuardia.
pub const LGA: Area = Area { min_lat: 40.766, max_lat: 40.778, min_lon: -73.881, max_lon: -73.859 };

/// The airport a drop-off point belongs to, if any (JFK is checked first).
pub fn airport_of(lat: f64, lon: f64) -> Option<&'static str> {
    if JFK.contains(lat, lon) {
        Some("JFK")
    } else if LGA.contains(lat, lon) {
        Some("LGA")
    } else {
        None
    }
}

/// One taxi trip as a JSON event (`"type":"trip"`); other TLC fields may be present in the
/// input and are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trip {
    #[serde(default)]
    pub trip_id: u64,
    pub pickup_latitude: f64,
    pub pickup_longitude: f64,
    pub dropoff_latitude: f64,
    pub dropoff_longitude: f64,
    #[serde(default)]
    pub total_amount: f64,
    /// ISO-8601, e.g. `2016-01-06T12:09:13Z`.
    pub pickup_datetime: String,
    /// ISO-8601; the trip's event time.
    pub dropoff_datetime: String,
}

/// A line of the job's JSON input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// A trip.
    Trip(Trip),
    /// Event time has reached `watermark` (ISO-8601): punctuated watermarks.
    Watermark { watermark: String },
}

impl Event {
    /// The event as one JSON line (without the newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("events serialize")
    }
}

/// Milliseconds since the epoch of an ISO-8601 time: with `Z` or an offset, or naive (then
/// taken as UTC, as the reference did with NYC local times), with `T` or a space.
pub fn parse_time(text: &str) -> Option<i64> {
    if let Some(millis) = parse_plain_utc(text.as_bytes()) {
        return Some(millis);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|t| t.and_utc().timestamp_millis())
}

/// The common shape `YYYY-MM-DD[T ]HH:MM:SS[Z]`, read without a general parser (chrono's
/// took ~1,500 instructions a timestamp, a fifth of the job's time); anything else is `None`
/// and goes the general way.
fn parse_plain_utc(text: &[u8]) -> Option<i64> {
    let text = text.strip_suffix(b"Z").unwrap_or(text);
    if text.len() != 19 || text[4] != b'-' || text[7] != b'-' || !matches!(text[10], b'T' | b' ') {
        return None;
    }
    if text[13] != b':' || text[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        text[range].iter().try_fold(0i64, |n, &d| d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month as u32, day as u32)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = i64::from(date.num_days_from_ce()) - 719_163; // 1970-01-01 is day 719,163
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1_000)
}

/// ISO-8601 in UTC with a `Z`, to the second (`2016-01-06T12:09:13Z`).
pub fn format_time(millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| millis.to_string())
}

/// Pickups per geohash-7 cell and hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PickupCount {
    pub location: String,
    pub pickup_count: u64,
    /// Window end, ms since the epoch.
    pub timestamp: i64,
}

/// Trips from one geohash-6 cell to one airport in one hour (only when more than one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TripDuration {
    pub location: String,
    pub airport_code: String,
    /// Sum of whole minutes.
    pub sum_trip_duration: i64,
    /// `sum_trip_duration / trips`.
    pub avg_trip_duration: f64,
    /// Window end, ms since the epoch.
    pub timestamp: i64,
}
