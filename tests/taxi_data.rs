//! The taxi example's data tooling: the TLC CSV reader on the real samples and on nasty input,
//! the calibrated generator's promises (determinism, order, watermarks, malformed share,
//! airport share, demand curve), and the replayer binary.

#[path = "common/example_binary.rs"]
mod example_binary;

#[path = "../examples/taxi_analytics/generate.rs"]
mod generate;
#[path = "../examples/taxi_analytics/tlc.rs"]
mod tlc;
#[path = "../examples/taxi_analytics/trip.rs"]
mod trip;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use generate::{Calibration, Spec};
use proptest::prelude::*;
use tlc::{read_trips, TlcSchema};
use trip::{airport_of, format_time, parse_time, Event, Trip, NYC};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/nyc-taxi");
const YELLOW: &str = "azureml_yellowTaxiData_2016-01.csv";
const GREEN: &str = "azureml_greenTaxiData.csv";
const JAN_2016: i64 = 1_451_606_400_000;
const HOUR: i64 = 3_600_000;

fn sample(name: &str) -> PathBuf {
    Path::new(SAMPLES).join(name)
}

fn calibration() -> &'static Calibration {
    static CALIBRATION: OnceLock<Calibration> = OnceLock::new();
    CALIBRATION.get_or_init(|| Calibration::from_samples(Path::new(SAMPLES)).unwrap())
}

fn spec(seed: u64, trips: u64) -> Spec {
    Spec { seed, trips, start_ms: JAN_2016, disorder_ms: 0, malformed_per_million: 0, watermark_every_ms: None }
}

/// The raw CSV's data rows as fields, read without the crate's reader.
fn raw_rows(name: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(sample(name)).unwrap();
    let mut lines = text.lines().filter(|line| !line.is_empty());
    let header = lines.next().unwrap().split(',').map(str::to_string).collect();
    (header, lines.map(|line| line.split(',').map(str::to_string).collect()).collect())
}

/// Values of the named columns, as numbers, in each raw row.
fn raw_numbers(name: &str, columns: [&str; 4]) -> Vec<[f64; 4]> {
    let (header, rows) = raw_rows(name);
    let index = columns.map(|column| header.iter().position(|h| h == column).unwrap());
    rows.iter().map(|row| index.map(|i| row[i].parse().unwrap())).collect()
}

const YELLOW_POINTS: [&str; 4] = ["startLat", "startLon", "endLat", "endLon"];
const GREEN_POINTS: [&str; 4] = ["pickupLatitude", "pickupLongitude", "dropoffLatitude", "dropoffLongitude"];

#[test]
fn both_samples_parse_completely() {
    for (name, columns) in [(YELLOW, YELLOW_POINTS), (GREEN, GREEN_POINTS)] {
        let trips: Vec<Trip> = read_trips(sample(name)).unwrap().into_iter().map(Result::unwrap).collect();
        assert_eq!(trips.len(), 5000, "{name}");
        let raw = raw_numbers(name, columns);
        for (id, (trip, raw)) in trips.iter().zip(&raw).enumerate() {
            assert_eq!(trip.trip_id, id as u64);
            let parsed = [trip.pickup_latitude, trip.pickup_longitude, trip.dropoff_latitude, trip.dropoff_longitude];
            assert_eq!(&parsed, raw, "{name} row {id}");
            for time in [&trip.pickup_datetime, &trip.dropoff_datetime] {
                assert!(time.ends_with('Z') && time.contains('T'), "{time}");
                assert_eq!(format_time(parse_time(time).unwrap()), *time);
            }
        }
    }
}

#[test]
fn yellow_sample_times_are_the_naive_times_as_utc() {
    let (header, rows) = raw_rows(YELLOW);
    let pickup = header.iter().position(|h| h == "tpepPickupDateTime").unwrap();
    let trips = read_trips(sample(YELLOW)).unwrap();
    for (row, trip) in rows.iter().zip(trips) {
        assert_eq!(trip.unwrap().pickup_datetime, format!("{}Z", row[pickup].replace(' ', "T")));
    }
}

#[test]
fn zero_coordinates_are_counted_as_the_csv_has_them() {
    let trips: Vec<Trip> = read_trips(sample(YELLOW)).unwrap().into_iter().map(Result::unwrap).collect();
    let raw = raw_numbers(YELLOW, YELLOW_POINTS);
    let raw_zero_pickups = raw.iter().filter(|r| r[0] == 0.0 && r[1] == 0.0).count();
    let raw_zero_dropoffs = raw.iter().filter(|r| r[2] == 0.0 && r[3] == 0.0).count();
    let zero_pickups = trips.iter().filter(|t| t.pickup_latitude == 0.0 && t.pickup_longitude == 0.0).count();
    let zero_dropoffs = trips.iter().filter(|t| t.dropoff_latitude == 0.0 && t.dropoff_longitude == 0.0).count();
    assert_eq!(zero_pickups, raw_zero_pickups);
    assert_eq!(zero_dropoffs, raw_zero_dropoffs);
    assert_eq!(zero_pickups, 86, "the README's count");
}

#[test]
fn bad_headers_name_the_missing_column() {
    let error = TlcSchema::from_header("a,b,c").unwrap_err();
    assert!(error.contains("pickup time") && error.contains("tpepPickupDateTime"), "{error}");
    let yellow = "tpepPickupDateTime,tpepDropoffDateTime,startLon,startLat,endLon,totalAmount";
    let error = TlcSchema::from_header(yellow).unwrap_err();
    assert!(error.contains("drop-off latitude") && error.contains("endLat"), "{error}");
    assert!(TlcSchema::from_header("").is_err());
    // Other spellings of the same columns: the TLC's snake_case, a byte-order mark, blanks.
    let snake = "\u{feff}tpep_pickup_datetime, tpep_dropoff_datetime ,pickup_longitude,pickup_latitude,\
                 dropoff_longitude,dropoff_latitude";
    let schema = TlcSchema::from_header(snake).unwrap();
    let trip = schema.parse("2016-01-01 00:00:01,2016-01-01 00:10:00,-73.9,40.7,-73.8,40.6", 7).unwrap();
    assert_eq!((trip.trip_id, trip.total_amount, trip.dropoff_datetime.as_str()), (7, 0.0, "2016-01-01T00:10:00Z"));
}

fn yellow_schema() -> TlcSchema {
    let header = std::fs::read_to_string(sample(YELLOW)).unwrap().lines().next().unwrap().to_string();
    TlcSchema::from_header(&header).unwrap()
}

const GOOD_ROW: &str = "2,2016-01-06 12:09:13,2016-01-06 12:22:14,1,2.09,,,-73.98207092285156,40.74605941772461,\
                        -74.00462341308594,40.730628967285156,1,N,1,10.5,0.0,0.5,0.3,2.26,0.0,13.56";

#[test]
fn headers_are_recognized_and_rows_are_not() {
    let schema = yellow_schema();
    let header = std::fs::read_to_string(sample(YELLOW)).unwrap().lines().next().unwrap().to_string();
    assert!(schema.is_header(&header));
    assert!(!schema.is_header(GOOD_ROW));
    assert!(!schema.is_header(""));
    let trip = schema.parse(GOOD_ROW, 1).unwrap();
    assert_eq!(trip.pickup_datetime, "2016-01-06T12:09:13Z");
    assert_eq!((trip.pickup_longitude, trip.total_amount), (-73.98207092285156, 13.56));
}

#[test]
fn nasty_rows_are_errors_saying_what_is_wrong() {
    let schema = yellow_schema();
    let field = |index: usize, value: &str| {
        let mut fields: Vec<&str> = GOOD_ROW.split(',').collect();
        fields[index] = value;
        fields.join(",")
    };
    let cases = [
        (String::new(), "missing"),
        (",,,,,,,,,,,,,,,,,,,,".to_string(), "missing"),
        ("a,b,c".to_string(), "missing"),
        (GOOD_ROW[..60].to_string(), "missing"),
        (field(1, "2016-02-30 10:00:00"), "pickup time"),
        (field(2, "yesterday"), "drop-off time"),
        (field(2, "2016-01-06 12:22"), "drop-off time"),
        (field(7, "abc"), "pickup longitude"),
        (field(8, "NaN"), "pickup latitude"),
        (field(9, "inf"), "drop-off longitude"),
        (field(10, "1e999"), "drop-off latitude"),
        (field(10, "40.7\u{e9}"), "drop-off latitude"),
        (field(20, "$13"), "total amount"),
        (field(8, ""), "missing pickup latitude (column 9)"),
    ];
    for (line, expected) in cases {
        let error = schema.parse(&line, 0).unwrap_err();
        assert!(error.contains(expected), "{line:?}: {error}");
    }
    // Judging the trip is the job's business: 0/0 points and time travel parse.
    assert!(schema.parse(&field(7, "0.0"), 0).is_ok());
    assert!(schema.parse(&field(2, "2016-01-06 12:00:00"), 0).is_ok());
    assert!(schema.parse(&format!("{GOOD_ROW}\r\n"), 0).is_ok());
    assert!(schema.parse(&field(20, ""), 0).is_ok_and(|trip| trip.total_amount == 0.0));
}

#[test]
fn read_trips_reports_bad_rows_with_line_numbers_and_a_bad_header_as_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trips.csv");
    let header = std::fs::read_to_string(sample(YELLOW)).unwrap().lines().next().unwrap().to_string();
    std::fs::write(&file, format!("{header}\n{GOOD_ROW}\n\nnot,a,row\n{header}\n{GOOD_ROW}\n")).unwrap();
    let trips = read_trips(&file).unwrap();
    assert_eq!(trips.len(), 3);
    assert!(trips[1].as_ref().unwrap_err().starts_with("line 4: "), "{:?}", trips[1]);
    assert_eq!(trips[2].as_ref().unwrap().trip_id, 2);
    std::fs::write(&file, "what,ever\n1,2\n").unwrap();
    assert_eq!(read_trips(&file).unwrap_err().kind(), std::io::ErrorKind::InvalidData);
    assert!(read_trips(dir.path().join("missing.csv")).is_err());
}

proptest! {
    #[test]
    fn no_line_panics(line in ".{0,300}", header in ".{0,200}") {
        let schema = yellow_schema();
        let _ = schema.is_header(&line);
        let _ = schema.parse(&line, 0);
        if let Ok(schema) = TlcSchema::from_header(&header) {
            let _ = schema.parse(&line, 0);
        }
    }

    #[test]
    fn a_garbled_field_of_a_good_row_never_panics(index in 0usize..24, garbage in "[0-9a-zA-Z .:,+-]{0,25}") {
        let mut fields: Vec<String> = GOOD_ROW.split(',').map(str::to_string).collect();
        if index < fields.len() {
            fields[index] = garbage;
        } else {
            fields.push(garbage);
        }
        if let Ok(trip) = yellow_schema().parse(&fields.join(","), 0) {
            prop_assert!(parse_time(&trip.pickup_datetime).is_some() && trip.pickup_latitude.is_finite());
        }
    }
}

#[test]
fn calibration_uses_the_usable_trips_of_both_samples() {
    let calibration = calibration();
    assert!((9_000..=10_000).contains(&calibration.trips()), "{}", calibration.trips());
    let demand = calibration.hourly_demand();
    assert!((demand.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(demand[19] > 2.0 * demand[4], "evenings are busier than 4 am: {demand:?}");
}

#[test]
fn the_generator_is_deterministic() {
    let spec =
        Spec { disorder_ms: 30_000, malformed_per_million: 20_000, watermark_every_ms: Some(60_000), ..spec(1, 5000) };
    let lines = |spec| generate::generate(calibration(), spec).collect::<Vec<_>>();
    let first = lines(spec);
    assert!(first.len() > 5000, "trips plus watermarks");
    assert_eq!(first, lines(spec));
    assert_ne!(first, lines(Spec { seed: 2, ..spec }));
}

/// A generated line, as the job would see it.
enum Seen {
    Trip { dropoff_ms: i64, valid: bool },
    Watermark(i64),
    Unreadable,
}

fn seen(line: &str) -> Seen {
    match serde_json::from_str::<Event>(line) {
        Ok(Event::Watermark { watermark }) => Seen::Watermark(parse_time(&watermark).unwrap()),
        Ok(Event::Trip(trip)) => match (parse_time(&trip.pickup_datetime), parse_time(&trip.dropoff_datetime)) {
            (pickup, Some(dropoff_ms)) => {
                let inside = NYC.contains(trip.pickup_latitude, trip.pickup_longitude)
                    && NYC.contains(trip.dropoff_latitude, trip.dropoff_longitude);
                Seen::Trip { dropoff_ms, valid: inside && pickup.is_some_and(|pickup| pickup <= dropoff_ms) }
            }
            (_, None) => Seen::Unreadable,
        },
        Err(_) => Seen::Unreadable,
    }
}

#[test]
fn generated_trips_are_in_drop_off_order_within_the_disorder_and_behind_no_watermark() {
    let disorder_ms = 45_000;
    let spec = Spec { disorder_ms, malformed_per_million: 5_000, watermark_every_ms: Some(120_000), ..spec(5, 30_000) };
    let lines: Vec<String> = generate::generate(calibration(), spec).collect();
    let (mut max, mut behind, mut watermarks) = (i64::MIN, 0, Vec::new());
    for line in &lines {
        match seen(line) {
            Seen::Trip { dropoff_ms, .. } => {
                assert!(
                    dropoff_ms >= max.saturating_sub(disorder_ms as i64),
                    "{line} is behind by more than the disorder"
                );
                behind += usize::from(dropoff_ms < max);
                max = max.max(dropoff_ms);
                assert!(watermarks.iter().all(|&w| w < dropoff_ms), "{line} is behind a watermark");
                watermarks.clear(); // watermarks only rise: the last one is the one to check
            }
            Seen::Watermark(watermark) => {
                assert_eq!(watermark, (max - disorder_ms as i64 - 1) / 1000 * 1000, "to the second");
                watermarks.push(watermark);
            }
            Seen::Unreadable => {}
        }
    }
    assert!(behind > 1000, "the disorder should show: {behind} trips behind");
    let count = lines.iter().filter(|l| matches!(seen(l), Seen::Watermark(_))).count();
    let span = max - spec.start_ms;
    assert!((span / 120_000 / 2..=span / 120_000 + 1).contains(&(count as i64)), "{count} watermarks in {span} ms");
}

#[test]
fn generated_trip_lines_are_what_event_to_json_writes() {
    let lines: Vec<String> = generate::generate(calibration(), spec(9, 2000)).collect();
    assert_eq!(lines.len(), 2000);
    for (id, line) in lines.iter().enumerate() {
        let Ok(Event::Trip(trip)) = serde_json::from_str::<Event>(line) else { panic!("{line}") };
        assert_eq!(trip.trip_id, id as u64, "without disorder, trips come in generation order");
        assert_eq!(Event::Trip(trip).to_json(), *line);
    }
}

#[test]
fn malformed_lines_come_at_the_specified_rate_in_every_kind() {
    let per_million = 20_000;
    let trips = 100_000u64;
    let spec = Spec { malformed_per_million: per_million, disorder_ms: 10_000, ..spec(11, trips) };
    let lines: Vec<String> = generate::generate(calibration(), spec).collect();
    assert_eq!(lines.len() as u64, trips);
    let bad: Vec<&String> = lines.iter().filter(|l| !matches!(seen(l), Seen::Trip { valid: true, .. })).collect();
    let expected = trips as f64 * per_million as f64 / 1e6;
    assert!(
        (bad.len() as f64 - expected).abs() < 0.15 * expected,
        "{} malformed, expected about {expected}",
        bad.len()
    );
    let kinds = [
        bad.iter().filter(|l| serde_json::from_str::<serde_json::Value>(l).is_err()).count(),
        bad.iter().filter(|l| l.ends_with('}') && serde_json::from_str::<Event>(l).is_err()).count(),
        bad.iter().filter(|l| l.contains(":0.0,")).count(),
        bad.iter().filter(|l| matches!(seen(l), Seen::Trip { .. })).count(), // time travel or 0/0
        bad.iter().filter(|l| matches!(seen(l), Seen::Unreadable)).count(),
    ];
    assert!(kinds.iter().all(|&count| count > 0), "{kinds:?}");
}

/// Share of airport drop-offs among trips with both points in the NYC box.
fn airport_share(trips: impl Iterator<Item = Trip>) -> f64 {
    let inside: Vec<Trip> = trips
        .filter(|t| {
            NYC.contains(t.pickup_latitude, t.pickup_longitude) && NYC.contains(t.dropoff_latitude, t.dropoff_longitude)
        })
        .collect();
    let airport = inside.iter().filter(|t| airport_of(t.dropoff_latitude, t.dropoff_longitude).is_some()).count();
    airport as f64 / inside.len() as f64
}

#[test]
fn the_share_of_airport_drop_offs_follows_the_samples() {
    let mut real = Vec::new();
    for (name, columns) in [(YELLOW, YELLOW_POINTS), (GREEN, GREEN_POINTS)] {
        real.extend(raw_numbers(name, columns).into_iter().map(|[plat, plon, dlat, dlon]| Trip {
            trip_id: 0,
            pickup_latitude: plat,
            pickup_longitude: plon,
            dropoff_latitude: dlat,
            dropoff_longitude: dlon,
            total_amount: 0.0,
            pickup_datetime: String::new(),
            dropoff_datetime: String::new(),
        }));
    }
    let expected = airport_share(real.into_iter());
    assert!(expected > 0.005, "the samples have airport trips: {expected}");
    let spec = Spec { malformed_per_million: 10_000, ..spec(13, 60_000) };
    let generated = generate::generate(calibration(), spec).filter_map(|line| match serde_json::from_str(&line) {
        Ok(Event::Trip(trip)) => Some(trip),
        _ => None,
    });
    let share = airport_share(generated);
    assert!((share - expected).abs() < 0.25 * expected, "generated {share}, samples {expected}");
}

#[test]
fn trips_follow_the_hourly_demand_at_the_average_rate() {
    let lines: Vec<(Option<i64>, String)> = generate::generate_timed(calibration(), spec(17, 60_000)).collect();
    let mut per_hour = std::collections::BTreeMap::<i64, u64>::new();
    for (time, _) in &lines {
        *per_hour.entry((time.unwrap() - JAN_2016) / HOUR).or_default() += 1;
    }
    let last = *per_hour.keys().last().unwrap();
    assert!(last >= 4, "60,000 trips span {last} hours");
    let demand = calibration().hourly_demand();
    for (&hour, &count) in per_hour.iter().filter(|(&hour, _)| hour < last) {
        let expected = generate::TRIPS_PER_DAY * demand[hour as usize % 24];
        assert!((count as f64 - expected).abs() < 0.1 * expected, "hour {hour}: {count} trips, expected {expected}");
    }
}

/// The replayer, which a plain `cargo test` builds next to the tests.
fn replayer() -> Command {
    let binary = example_binary::path("taxi_replay");
    Command::new(binary)
}

fn replay(args: &[&str]) -> Vec<String> {
    let output = replayer().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    String::from_utf8(output.stdout).unwrap().lines().map(str::to_string).collect()
}

/// Checks the replay's promises; returns the trips' drop-off times.
fn check_replay(lines: &[String]) -> Vec<i64> {
    let (mut dropoffs, mut last_watermark, mut watermarks) = (Vec::new(), i64::MIN, 0);
    for line in lines {
        match serde_json::from_str::<Event>(line).unwrap_or_else(|e| panic!("{line}: {e}")) {
            Event::Trip(trip) => {
                let dropoff = parse_time(&trip.dropoff_datetime).unwrap();
                assert!(dropoffs.last().is_none_or(|&last| last <= dropoff), "{line} out of order");
                assert!(last_watermark < dropoff, "{line} is behind a watermark");
                dropoffs.push(dropoff);
            }
            Event::Watermark { watermark } => {
                last_watermark = parse_time(&watermark).unwrap();
                watermarks += 1;
            }
        }
    }
    assert!(lines.last().unwrap().contains("\"watermark\""), "a final watermark");
    assert!(watermarks > 2, "watermarks interleaved, not only a final one: {watermarks}");
    dropoffs
}

#[test]
fn the_replayer_replays_generated_trips_in_order_with_watermarks() {
    let lines = replay(&["--generate", "--trips", "2000", "--seed", "4", "--speedup", "0"]);
    assert_eq!(check_replay(&lines).len(), 2000);
}

#[test]
fn the_replayer_sorts_a_csv_and_keeps_bad_rows_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (header, rows) = raw_rows(GREEN);
    let mut text = header.join(",") + "\n";
    for (i, row) in rows.iter().take(300).enumerate() {
        text += &if i == 3 { "bad,row".to_string() } else { row.join(",") };
        text.push('\n');
    }
    let file = dir.path().join("green.csv");
    std::fs::write(&file, text).unwrap();
    let lines = replay(&["--input", file.to_str().unwrap(), "--format", "tlc-csv", "--speedup", "inf"]);
    let events: Vec<&String> = lines.iter().filter(|l| !l.contains("\"watermark\"")).collect();
    assert_eq!(events.len(), 300);
    assert_eq!(events[3], "bad,row");
    let good: Vec<String> = lines.iter().filter(|l| l.as_str() != "bad,row").cloned().collect();
    assert_eq!(check_replay(&good).len(), 299);
}

#[test]
fn the_replayer_paces_by_the_speedup() {
    let start = std::time::Instant::now();
    let lines = replay(&["--generate", "--trips", "400", "--speedup", "2000", "--watermark-every-ms", "10000"]);
    let dropoffs = check_replay(&lines);
    let span_ms = (dropoffs.last().unwrap() - dropoffs[0]) as f64;
    assert!(span_ms > 60_000.0, "{span_ms}");
    assert!(start.elapsed().as_secs_f64() * 1000.0 >= span_ms / 2000.0, "faster than event time / speedup");
}

#[test]
fn the_replayer_exits_quietly_when_its_reader_goes_away() {
    let mut child = replayer()
        .args(["--generate", "--trips", "1000000", "--speedup", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap(); // then drops the pipe
    assert!(first.contains("\"trip\""), "{first}");
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success() && !stderr.contains("panicked"), "{status}: {stderr}");
}
