//! A deterministic synthetic trip stream calibrated on the two real TLC samples, for inputs
//! far larger than the samples: millions of JSON events a second, the same lines for the same
//! seed and spec.
//!
//! Each trip copies a real trip inside the NYC box (pickup and drop-off points, duration,
//! amount), with about 50 m of jitter on both points and ±10 % on the duration. Keeping a
//! trip's points and duration together keeps the real relation between distance and time
//! (airport runs take long), and drawing trips uniformly keeps the samples' share of airport
//! drop-offs. Drop-off times follow the samples' demand by hour of day at an average of
//! [`TRIPS_PER_DAY`].
//!
//! Including crates name this module `generate`, the CSV reader (`tlc.rs`) `tlc` and the
//! model (`trip.rs`) `trip`.

#![allow(dead_code)] // Each including binary uses a different part of this module.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::tlc::read_trips;
use crate::trip::{format_time, parse_time, Event, Trip, NYC};

/// Average trips a day. January 2016 had about 350,000 yellow and 47,000 green trips a day;
/// a somewhat lower rate makes 1M trips span four days, so a run sees several daily cycles.
pub const TRIPS_PER_DAY: f64 = 250_000.0;
/// The samples' files, in `Calibration::from_samples`'s directory.
pub const SAMPLE_FILES: [&str; 2] = ["azureml_yellowTaxiData_2016-01.csv", "azureml_greenTaxiData.csv"];
/// Longer real "trips" are meters left running (the samples have some of almost 24 h).
const MAX_DURATION_S: i64 = 3 * 3600;
/// About 50 m in degrees of latitude, and of longitude at New York's 40.7° N.
const JITTER_LAT: f64 = 0.00045;
const JITTER_LON: f64 = 0.00059;
const HOUR_MS: i64 = 3_600_000;
/// Texts a malformed line may carry as a time.
const BAD_TIMES: [&str; 5] = ["2016-02-30T10:00:00Z", "2016-01-06T25:61:00Z", "yesterday", "", "1453000000"];
/// Fields a malformed line may lack (each required by the model's `Trip`).
const REQUIRED_FIELDS: [&str; 4] = ["pickup_latitude", "dropoff_longitude", "pickup_datetime", "dropoff_datetime"];

/// One real trip to copy.
#[derive(Debug, Clone, Copy)]
struct Template {
    /// (latitude, longitude)
    pickup: (f64, f64),
    dropoff: (f64, f64),
    duration_s: i64,
    total_amount: f64,
    dropoff_ms: i64,
}

/// What the generator learns from real trips: the usable trips to copy and the demand by
/// hour of day. Cheap to clone (the trips are shared).
#[derive(Debug, Clone)]
pub struct Calibration {
    templates: Arc<[Template]>,
    /// Share of drop-offs in each hour of the day, summing to 1.
    hourly_demand: [f64; 24],
}

impl Calibration {
    /// Calibrates on both sample CSVs in `dir` ([`SAMPLE_FILES`]); rows that do not parse are
    /// ignored, as are trips the job would drop (see [`Calibration::from_trips`]).
    pub fn from_samples(dir: &Path) -> io::Result<Calibration> {
        let mut trips = Vec::new();
        for file in SAMPLE_FILES {
            trips.extend(read_trips(dir.join(file))?.into_iter().flatten());
        }
        Calibration::from_trips(&trips).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Calibrates on `trips`, using those with both points inside [`NYC`] and a duration of
    /// 1 s to 3 h; an error if none qualifies.
    pub fn from_trips(trips: &[Trip]) -> Result<Calibration, String> {
        let templates: Arc<[Template]> = trips.iter().filter_map(template_of).collect();
        if templates.is_empty() {
            return Err(format!("none of {} trips is usable for calibration", trips.len()));
        }
        // Add-one smoothing: no hour may have zero demand, or the clock would never leave it.
        let mut counts = [1.0f64; 24];
        for template in templates.iter() {
            counts[hour_of_day(template.dropoff_ms)] += 1.0;
        }
        let total: f64 = counts.iter().sum();
        Ok(Calibration { templates, hourly_demand: counts.map(|count| count / total) })
    }

    /// How many real trips the generator copies.
    pub fn trips(&self) -> usize {
        self.templates.len()
    }

    /// Share of drop-offs in each hour of the day (UTC, which is NYC local time in this
    /// model), summing to 1.
    pub fn hourly_demand(&self) -> [f64; 24] {
        self.hourly_demand
    }

    /// Share of the calibration trips that drop off at JFK or LaGuardia.
    pub fn airport_share(&self) -> f64 {
        let airport = self.templates.iter().filter(|t| crate::trip::airport_of(t.dropoff.0, t.dropoff.1).is_some());
        airport.count() as f64 / self.templates.len() as f64
    }
}

/// The real trip as a template, if the job would use it and its duration is plausible.
fn template_of(trip: &Trip) -> Option<Template> {
    let pickup_ms = parse_time(&trip.pickup_datetime)?;
    let dropoff_ms = parse_time(&trip.dropoff_datetime)?;
    let duration_s = (dropoff_ms - pickup_ms) / 1000;
    let inside = NYC.contains(trip.pickup_latitude, trip.pickup_longitude)
        && NYC.contains(trip.dropoff_latitude, trip.dropoff_longitude);
    (inside && (1..=MAX_DURATION_S).contains(&duration_s)).then_some(Template {
        pickup: (trip.pickup_latitude, trip.pickup_longitude),
        dropoff: (trip.dropoff_latitude, trip.dropoff_longitude),
        duration_s,
        total_amount: trip.total_amount,
        dropoff_ms,
    })
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Seed of the random generator: the same seed and spec give the same lines.
    pub seed: u64,
    /// Trip lines to generate (malformed ones included), not counting watermark lines.
    pub trips: u64,
    /// Drop-off time of the first trip, ms since the epoch (times are whole seconds, as the
    /// JSON shows them, so this is rounded down to a second).
    pub start_ms: i64,
    /// A trip's drop-off may be up to this much earlier than the latest drop-off before it.
    pub disorder_ms: u64,
    /// Lines out of a million that are malformed (see the module docs of the kinds).
    pub malformed_per_million: u32,
    /// Insert a watermark event each time the latest drop-off has advanced this much since
    /// the last one; none if `None`.
    pub watermark_every_ms: Option<i64>,
}

/// The JSON lines of `spec`: trip events (`Event::to_json`) in drop-off order, each at most
/// `disorder_ms` behind the latest drop-off before it, with watermark events (the latest
/// drop-off − `disorder_ms` − 1 ms, so no later trip is behind one) when asked for.
///
/// A share of `malformed_per_million` trip lines is malformed, in the ways a job must
/// survive: truncated JSON, a missing required field, 0/0 pickup or drop-off coordinates, a
/// drop-off before the pickup, an unparsable pickup or drop-off time. `trip_id` is the trip's
/// index in generation order.
pub fn generate(calibration: &Calibration, spec: Spec) -> impl Iterator<Item = String> {
    generate_timed(calibration, spec).map(|(_, line)| line)
}

/// [`generate`]'s lines with their drop-off time (ms since the epoch), `None` for watermark
/// lines and for malformed lines that do not parse as a trip with a readable drop-off, so a
/// replayer can pace the stream without parsing it again.
pub fn generate_timed(calibration: &Calibration, spec: Spec) -> impl Iterator<Item = (Option<i64>, String)> {
    Generator::new(calibration, spec)
}

/// The ways a line can be malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Malformed {
    Truncated,
    MissingField,
    ZeroCoordinates,
    DropoffBeforePickup,
    UnparsableTime,
}

const MALFORMED: [Malformed; 5] = [
    Malformed::Truncated,
    Malformed::MissingField,
    Malformed::ZeroCoordinates,
    Malformed::DropoffBeforePickup,
    Malformed::UnparsableTime,
];

/// A generated line waiting for its turn: lines leave in order of `key`, the drop-off
/// plus a random delay of at most `disorder_ms`, which bounds how far behind any line can be.
struct Pending {
    key: i64,
    seq: u64,
    dropoff_ms: i64,
    readable: bool,
    line: String,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.key, self.seq).cmp(&(other.key, other.seq))
    }
}

/// The generator's state; see [`generate`].
struct Generator {
    templates: Arc<[Template]>,
    /// Trips per ms in each hour of the day.
    rates: [f64; 24],
    spec: Spec,
    rng: fastrand::Rng,
    /// Trips generated so far (the next trip's id).
    generated: u64,
    /// The next trip's drop-off, before rounding down to a second.
    clock_ms: f64,
    pending: BinaryHeap<Reverse<Pending>>,
    max_dropoff_ms: Option<i64>,
    /// The latest drop-off when the last watermark was due.
    watermark_base_ms: i64,
    queued_watermark: Option<String>,
    /// Time texts, reused from line to line.
    pickup_text: String,
    dropoff_text: String,
}

impl Generator {
    fn new(calibration: &Calibration, spec: Spec) -> Generator {
        let mean_rate = TRIPS_PER_DAY / (24 * HOUR_MS) as f64;
        Generator {
            templates: calibration.templates.clone(),
            rates: calibration.hourly_demand.map(|share| mean_rate * 24.0 * share),
            spec,
            rng: fastrand::Rng::with_seed(spec.seed),
            generated: 0,
            clock_ms: spec.start_ms.div_euclid(1000) as f64 * 1000.0,
            pending: BinaryHeap::new(),
            max_dropoff_ms: None,
            watermark_base_ms: i64::MIN,
            queued_watermark: None,
            pickup_text: String::with_capacity(24),
            dropoff_text: String::with_capacity(24),
        }
    }

    /// The next trip's drop-off: every later trip's key is at least this.
    fn next_dropoff_ms(&self) -> i64 {
        (self.clock_ms as i64).div_euclid(1000) * 1000
    }

    /// Generates the next trip and queues its line.
    fn push_trip(&mut self) {
        let dropoff_ms = self.next_dropoff_ms();
        let rate = self.rates[hour_of_day(dropoff_ms)];
        self.clock_ms += -(1.0 - self.rng.f64()).ln() / rate; // Poisson arrivals at this hour's rate
        let template = self.templates[self.rng.usize(..self.templates.len())];
        let duration_s = (template.duration_s as f64 * (0.9 + 0.2 * self.rng.f64())).round().max(1.0) as i64;
        let mut trip = Trip {
            trip_id: self.generated,
            pickup_latitude: 0.0,
            pickup_longitude: 0.0,
            dropoff_latitude: 0.0,
            dropoff_longitude: 0.0,
            total_amount: template.total_amount,
            pickup_datetime: std::mem::take(&mut self.pickup_text),
            dropoff_datetime: std::mem::take(&mut self.dropoff_text),
        };
        (trip.pickup_latitude, trip.pickup_longitude) = self.jitter(template.pickup);
        (trip.dropoff_latitude, trip.dropoff_longitude) = self.jitter(template.dropoff);
        let malformed = self.malformed();
        let pickup_ms = match malformed {
            Some(Malformed::DropoffBeforePickup) => dropoff_ms.saturating_add(duration_s * 1000),
            _ => dropoff_ms.saturating_sub(duration_s * 1000),
        };
        push_iso(&mut trip.pickup_datetime, pickup_ms);
        push_iso(&mut trip.dropoff_datetime, dropoff_ms);
        let mut readable = match malformed {
            Some(kind @ (Malformed::ZeroCoordinates | Malformed::UnparsableTime)) => self.spoil(&mut trip, kind),
            _ => true,
        };
        let line = self.line_of(trip);
        let line = match malformed {
            Some(Malformed::Truncated) => truncate(line, &mut self.rng),
            Some(Malformed::MissingField) => {
                without_field(line, REQUIRED_FIELDS[self.rng.usize(..REQUIRED_FIELDS.len())])
            }
            _ => line,
        };
        readable &= !matches!(malformed, Some(Malformed::Truncated | Malformed::MissingField));
        let delay = match self.spec.disorder_ms {
            0 => 0,
            disorder_ms => self.rng.u64(..=disorder_ms.min(i64::MAX as u64)) as i64,
        };
        let seq = self.generated;
        self.pending.push(Reverse(Pending { key: dropoff_ms.saturating_add(delay), seq, dropoff_ms, readable, line }));
        self.generated += 1;
    }

    /// Whether, and how, the next line is malformed.
    fn malformed(&mut self) -> Option<Malformed> {
        (self.rng.u32(..1_000_000) < self.spec.malformed_per_million)
            .then(|| MALFORMED[self.rng.usize(..MALFORMED.len())])
    }

    /// Spoils a field of `trip` as `kind` says; whether its drop-off time stays readable.
    fn spoil(&mut self, trip: &mut Trip, kind: Malformed) -> bool {
        let pickup = self.rng.bool();
        match kind {
            Malformed::ZeroCoordinates if pickup => (trip.pickup_latitude, trip.pickup_longitude) = (0.0, 0.0),
            Malformed::ZeroCoordinates => (trip.dropoff_latitude, trip.dropoff_longitude) = (0.0, 0.0),
            _ => {
                let time = if pickup { &mut trip.pickup_datetime } else { &mut trip.dropoff_datetime };
                time.clear();
                time.push_str(BAD_TIMES[self.rng.usize(..BAD_TIMES.len())]);
                return pickup;
            }
        }
        true
    }

    /// A point within about 50 m of `(lat, lon)`, kept inside the NYC box (so jitter never
    /// turns a good trip into one the job drops), to 6 decimals (0.1 m) for shorter lines.
    fn jitter(&mut self, (lat, lon): (f64, f64)) -> (f64, f64) {
        let lat = (lat + JITTER_LAT * (2.0 * self.rng.f64() - 1.0)).clamp(NYC.min_lat, NYC.max_lat);
        let lon = (lon + JITTER_LON * (2.0 * self.rng.f64() - 1.0)).clamp(NYC.min_lon, NYC.max_lon);
        ((lat * 1e6).round() / 1e6, (lon * 1e6).round() / 1e6)
    }

    /// The trip's line, exactly as `Event::to_json` writes it; keeps the time texts' buffers.
    fn line_of(&mut self, trip: Trip) -> String {
        let event = Event::Trip(trip);
        let mut line = Vec::with_capacity(320); // lines are about 250 bytes
        serde_json::to_writer(&mut line, &event).expect("events serialize");
        if let Event::Trip(trip) = event {
            (self.pickup_text, self.dropoff_text) = (trip.pickup_datetime, trip.dropoff_datetime);
            self.pickup_text.clear();
            self.dropoff_text.clear();
        }
        String::from_utf8(line).expect("serde_json writes UTF-8")
    }

    /// Hands out a queued line with its readable drop-off time.
    fn release(&mut self, pending: Pending) -> (Option<i64>, String) {
        let event_time = pending.readable.then_some(pending.dropoff_ms);
        if let Some(time) = event_time {
            self.note_dropoff(time);
        }
        (event_time, pending.line)
    }

    /// Notes a drop-off the job can read (watermarks follow those), queueing a watermark if
    /// one is due.
    fn note_dropoff(&mut self, time: i64) {
        let max = self.max_dropoff_ms.map_or(time, |max| max.max(time));
        self.max_dropoff_ms = Some(max);
        if let Some(every) = self.spec.watermark_every_ms {
            if self.watermark_base_ms == i64::MIN {
                self.watermark_base_ms = max;
            } else if max.saturating_sub(self.watermark_base_ms) >= every.max(1) {
                self.watermark_base_ms = max;
                let disorder_ms = i64::try_from(self.spec.disorder_ms).unwrap_or(i64::MAX);
                let watermark = max.saturating_sub(disorder_ms).saturating_sub(1);
                self.queued_watermark = Some(Event::Watermark { watermark: format_time(watermark) }.to_json());
            }
        }
    }
}

impl Iterator for Generator {
    type Item = (Option<i64>, String);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(watermark) = self.queued_watermark.take() {
            return Some((None, watermark));
        }
        loop {
            let done = self.generated == self.spec.trips;
            // A queued line may leave once no trip still to come can sort before it.
            let ready = self.pending.peek().map(|Reverse(first)| done || first.key <= self.next_dropoff_ms());
            match ready {
                Some(true) => {
                    let Reverse(first) = self.pending.pop()?;
                    return Some(self.release(first));
                }
                None if done => return None,
                _ => self.push_trip(),
            }
        }
    }
}

/// A proper prefix of `line` (so never valid JSON), cut at a random byte (lines are ASCII).
fn truncate(mut line: String, rng: &mut fastrand::Rng) -> String {
    line.truncate(rng.usize(1..line.len()));
    line
}

/// `line` without `"field":value` and its comma. Values in trip lines hold no `,` or `}`.
fn without_field(mut line: String, field: &str) -> String {
    let Some(start) = line.find(&format!("\"{field}\":")) else { return line };
    let end = line[start..].find([',', '}']).map_or(line.len(), |offset| start + offset);
    if line.as_bytes().get(end) == Some(&b',') {
        line.replace_range(start..=end, "");
    } else {
        line.replace_range(start - 1..end, ""); // the last field: drop the comma before it
    }
    line
}

/// The hour of the day (0..24, UTC) at `millis`.
fn hour_of_day(millis: i64) -> usize {
    millis.div_euclid(HOUR_MS).rem_euclid(24) as usize
}

/// Appends `millis` as `format_time` writes it (`2016-01-06T12:09:13Z`) without its
/// allocations and formatting machinery: the generator writes two times a line.
fn push_iso(out: &mut String, millis: i64) {
    let secs = millis.div_euclid(1000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    if !(0..=9999).contains(&year) {
        out.push_str(&format_time(millis));
        return;
    }
    let second_of_day = secs.rem_euclid(86_400);
    let mut text = *b"0000-00-00T00:00:00Z";
    let fields = [
        (0, year / 100),
        (2, year % 100),
        (5, month),
        (8, day),
        (11, second_of_day / 3600),
        (14, second_of_day / 60 % 60),
        (17, second_of_day % 60),
    ];
    for (at, value) in fields {
        text[at] = b'0' + (value / 10) as u8;
        text[at + 1] = b'0' + (value % 10) as u8;
    }
    out.push_str(std::str::from_utf8(&text).expect("digits are ASCII"));
}

/// (year, month, day) of a day number since 1970-01-01 in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    // A harness-less bench includes this module with cfg(test) but without its #[test]s.
    #[allow(unused_imports)]
    use super::*;

    #[test]
    fn push_iso_writes_what_format_time_writes() {
        let mut rng = fastrand::Rng::with_seed(7);
        let samples = (0..20_000).map(|_| rng.i64(-2_208_988_800_000..4_102_444_800_000));
        let edges =
            [0, -1, 951_782_400_000, 951_868_799_999, 1_456_704_000_000, 253_402_300_799_999, 253_402_300_800_000];
        for millis in samples.chain(edges) {
            let mut text = String::new();
            push_iso(&mut text, millis);
            assert_eq!(text, format_time(millis), "{millis}");
        }
    }

    #[test]
    fn without_field_removes_any_field_and_keeps_json() {
        let line = r#"{"type":"trip","a":1,"b":"x","c":2.5}"#;
        assert_eq!(without_field(line.into(), "a"), r#"{"type":"trip","b":"x","c":2.5}"#);
        assert_eq!(without_field(line.into(), "c"), r#"{"type":"trip","a":1,"b":"x"}"#);
        assert_eq!(without_field(line.into(), "zzz"), line);
    }
}
