//! Reading NYC TLC trip records from CSV: the yellow-cab naming (`tpepPickupDateTime`,
//! `startLon`, ...) and the green-cab naming (`lpepPickupDatetime`, `pickupLongitude`, ...),
//! as in the bundled samples, plus the snake_case names of the TLC's own files.
//!
//! Rows are split on every `,` with no quoting rules: the TLC samples never quote a field, and
//! the columns we read (times and numbers) cannot contain a comma. A quoted field holding a
//! comma would shift the columns after it, and that row would then fail to parse (an error,
//! not a wrong trip, unless the shifted fields happen to parse).
//!
//! Including crates name this module `tlc` and the model (`trip.rs`) `trip`.

#![allow(dead_code)] // Each including binary uses a different part of this module.

use std::path::Path;

use crate::trip::{format_time, parse_time, Trip};

/// The columns a trip needs: a description for errors and the accepted header names,
/// compared ignoring ASCII case and `_`.
const PICKUP_TIME: (&str, &[&str]) = ("pickup time", &["tpepPickupDateTime", "lpepPickupDatetime", "pickup_datetime"]);
const DROPOFF_TIME: (&str, &[&str]) =
    ("drop-off time", &["tpepDropoffDateTime", "lpepDropoffDatetime", "dropoff_datetime"]);
const PICKUP_LON: (&str, &[&str]) = ("pickup longitude", &["startLon", "pickupLongitude"]);
const PICKUP_LAT: (&str, &[&str]) = ("pickup latitude", &["startLat", "pickupLatitude"]);
const DROPOFF_LON: (&str, &[&str]) = ("drop-off longitude", &["endLon", "dropoffLongitude"]);
const DROPOFF_LAT: (&str, &[&str]) = ("drop-off latitude", &["endLat", "dropoffLatitude"]);
/// Optional: a trip without it gets 0.0, as a JSON trip without `total_amount` does.
const TOTAL_AMOUNT: &[&str] = &["totalAmount"];

/// Where a TLC CSV keeps the fields of a [`Trip`], found from its header line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlcSchema {
    pickup_time: usize,
    dropoff_time: usize,
    pickup_lon: usize,
    pickup_lat: usize,
    dropoff_lon: usize,
    dropoff_lat: usize,
    total_amount: Option<usize>,
}

impl TlcSchema {
    /// Finds the columns in a header line of either naming; the error names the first
    /// required column that is missing and the names that would have matched.
    pub fn from_header(header: &str) -> Result<TlcSchema, String> {
        let names: Vec<&str> = fields(header).collect();
        let find = |(what, accepted): (&str, &[&str])| {
            names.iter().position(|name| is_one_of(name, accepted)).ok_or_else(|| {
                format!("the CSV header has no {what} column (expected one of {}): {header:?}", accepted.join(", "))
            })
        };
        Ok(TlcSchema {
            pickup_time: find(PICKUP_TIME)?,
            dropoff_time: find(DROPOFF_TIME)?,
            pickup_lon: find(PICKUP_LON)?,
            pickup_lat: find(PICKUP_LAT)?,
            dropoff_lon: find(DROPOFF_LON)?,
            dropoff_lat: find(DROPOFF_LAT)?,
            total_amount: names.iter().position(|name| is_one_of(name, TOTAL_AMOUNT)),
        })
    }

    /// Whether `line` is a header (say, of a second file appended to the first) rather than
    /// a trip: its pickup-time field is a pickup-time column name.
    pub fn is_header(&self, line: &str) -> bool {
        fields(line).nth(self.pickup_time).is_some_and(|field| is_one_of(field, PICKUP_TIME.1))
    }

    /// The trip in one CSV row, with ISO-8601 `...Z` times (naive TLC times are taken as UTC,
    /// see [`parse_time`]). The error says which field is missing or unparsable. A trip whose
    /// coordinates are 0/0 or whose drop-off precedes its pickup is returned as is: judging
    /// it is the job's business.
    pub fn parse(&self, line: &str, trip_id: u64) -> Result<Trip, String> {
        let row: Vec<&str> = fields(line).collect();
        let field = |index: usize, what: &str| match row.get(index) {
            Some(text) if !text.trim().is_empty() => Ok(text.trim()),
            _ => Err(format!("missing {what} (column {})", index + 1)),
        };
        let time = |index: usize, what: &str| {
            let text = field(index, what)?;
            parse_time(text).map(format_time).ok_or_else(|| format!("unparsable {what} {text:?}"))
        };
        let number = |index: usize, what: &str| {
            let text = field(index, what)?;
            match text.parse::<f64>() {
                Ok(value) if value.is_finite() => Ok(value),
                _ => Err(format!("unparsable {what} {text:?}")),
            }
        };
        Ok(Trip {
            trip_id,
            pickup_latitude: number(self.pickup_lat, PICKUP_LAT.0)?,
            pickup_longitude: number(self.pickup_lon, PICKUP_LON.0)?,
            dropoff_latitude: number(self.dropoff_lat, DROPOFF_LAT.0)?,
            dropoff_longitude: number(self.dropoff_lon, DROPOFF_LON.0)?,
            total_amount: match self.total_amount {
                Some(index) if row.get(index).is_some_and(|text| !text.trim().is_empty()) => {
                    number(index, "total amount")?
                }
                _ => 0.0,
            },
            pickup_datetime: time(self.pickup_time, PICKUP_TIME.0)?,
            dropoff_datetime: time(self.dropoff_time, DROPOFF_TIME.0)?,
        })
    }
}

/// Every data row of a TLC CSV file, in file order, parsed with the schema of its first
/// line; blank lines and repeated headers are skipped. `trip_id` is the row's index among
/// the data rows, and errors start with the line number. A file whose first line is not a
/// usable header is an `InvalidData` error.
pub fn read_trips(path: impl AsRef<Path>) -> std::io::Result<Vec<Result<Trip, String>>> {
    let text = std::fs::read_to_string(path.as_ref())?;
    let mut lines = text.lines().enumerate();
    let header = lines.next().map_or("", |(_, line)| line);
    let schema = TlcSchema::from_header(header).map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.as_ref().display()))
    })?;
    let rows = lines.filter(|(_, line)| !line.trim().is_empty() && !schema.is_header(line));
    Ok(rows
        .enumerate()
        .map(|(id, (number, line))| schema.parse(line, id as u64).map_err(|e| format!("line {}: {e}", number + 1)))
        .collect())
}

/// The fields of a CSV line, split on every comma (see the module docs), without the line end.
fn fields(line: &str) -> std::str::Split<'_, char> {
    line.trim_end_matches(['\r', '\n']).split(',')
}

/// Whether a header field names one of `names`, ignoring ASCII case, `_`, surrounding
/// blanks and a byte-order mark (a header may come from a spreadsheet).
fn is_one_of(field: &str, names: &[&str]) -> bool {
    names.iter().any(|name| significant(name).eq(significant(field)))
}

/// The bytes of a name that count, lower-case.
fn significant(name: &str) -> impl Iterator<Item = u8> + '_ {
    name.trim().trim_start_matches('\u{feff}').bytes().filter(|&b| b != b'_').map(|b| b.to_ascii_lowercase())
}
