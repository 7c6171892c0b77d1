//! The taxi example's HTML report: what it embeds, that it stays self-contained and escaped,
//! and, where Chromium is installed (CI installs it), that its script draws the page.

#[path = "common/chromium.rs"]
mod chromium;

#[path = "../examples/taxi_analytics/trip.rs"]
mod trip;

#[path = "../examples/taxi_analytics/report.rs"]
mod report;

use std::path::PathBuf;
use std::time::Instant;

use serde_json::Value;
use tempfile::TempDir;

use report::write_report;
use trip::{parse_time, PickupCount, TripDuration, NYC};

const SVG_NAMESPACE: &str = "http://www.w3.org/2000/svg";
const FIRST_WINDOW: &str = "2016-01-06T13:00:00Z";
const SECOND_WINDOW: &str = "2016-01-06T14:00:00Z";

// ---------------------------------------------------------------------------------------------
// Fixtures.

fn millis(time: &str) -> i64 {
    parse_time(time).expect("fixture times parse")
}

fn cell(lat: f64, lon: f64, len: usize) -> String {
    geohash::encode(geohash::Coord { x: lon, y: lat }, len).expect("fixture points encode")
}

fn pickup(lat: f64, lon: f64, pickup_count: u64, window: &str) -> PickupCount {
    PickupCount { location: cell(lat, lon, 7), pickup_count, timestamp: millis(window) }
}

/// `trips` trips of `minutes` minutes on average from near Midtown to `airport`.
fn duration(airport: &str, trips: u32, minutes: f64, window: &str) -> TripDuration {
    TripDuration {
        location: cell(40.7549, -73.9840, 6),
        airport_code: airport.to_string(),
        sum_trip_duration: (f64::from(trips) * minutes).round() as i64,
        avg_trip_duration: minutes,
        timestamp: millis(window),
    }
}

/// Three cells over two windows (Midtown in both), and airport trips in both windows.
fn small_pickups() -> Vec<PickupCount> {
    vec![
        pickup(40.7549, -73.9840, 12, FIRST_WINDOW), // Midtown
        pickup(40.7075, -74.0113, 3, FIRST_WINDOW),  // Lower Manhattan
        pickup(40.7549, -73.9840, 7, SECOND_WINDOW),
        pickup(40.6413, -73.7781, 2, SECOND_WINDOW), // JFK
    ]
}

fn small_durations() -> Vec<TripDuration> {
    vec![
        // JFK, first window: (3 × 30 + 2 × 25) / 5 = 28 minutes.
        duration("JFK", 3, 30.0, FIRST_WINDOW),
        duration("JFK", 2, 25.0, FIRST_WINDOW),
        duration("JFK", 4, 40.0, SECOND_WINDOW),
        duration("LGA", 2, 20.0, FIRST_WINDOW),
        duration("LGA", 3, 22.0, SECOND_WINDOW),
    ]
}

/// A disc of cells around Midtown, busiest in the middle, over a day of hourly windows, with
/// airport durations that vary over the day: enough for a screenshot with visible structure.
fn rich_fixture() -> (Vec<PickupCount>, Vec<TripDuration>) {
    let start = millis("2016-01-06T01:00:00Z");
    let mut pickups = Vec::new();
    let mut durations = Vec::new();
    for hour in 0..24 {
        let window = trip::format_time(start + hour * 3_600_000);
        for (lat, lon, count) in midtown_blob(hour) {
            pickups.push(pickup(lat, lon, count, &window));
        }
        let wave = (hour as f64 / 24.0 * std::f64::consts::TAU).sin();
        durations.push(duration("JFK", 3, 45.0 + 12.0 * wave, &window));
        if hour % 5 != 2 {
            durations.push(duration("LGA", 2, 28.0 - 8.0 * wave, &window));
        }
    }
    (pickups, durations)
}

/// Points just under a cell apart in a disc around Midtown, with counts falling off from the middle and
/// varying with the hour.
fn midtown_blob(hour: i64) -> impl Iterator<Item = (f64, f64, u64)> {
    const STEP: f64 = 0.00125; // a little under a geohash-7 cell, so the disc has no holes
    (-30..=30).flat_map(move |i: i32| {
        (-30..=30).filter_map(move |j: i32| {
            let busy = 900 - (i * i + j * j);
            let count = u64::try_from(busy).ok()? * (hour as u64 % 6 + 1) / 200;
            (count > 0).then(|| (40.7549 + f64::from(i) * STEP, -73.9840 + f64::from(j) * STEP, count))
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Reading the report back.

/// Writes the report into a fresh directory, returning both (the directory owns the file).
fn write(pickups: &[PickupCount], durations: &[TripDuration]) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("report.html");
    write_report(&path, pickups, durations).expect("report written");
    (dir, path)
}

fn render(pickups: &[PickupCount], durations: &[TripDuration]) -> String {
    let (_dir, path) = write(pickups, durations);
    std::fs::read_to_string(path).expect("report readable")
}

/// The JSON embedded in the page's data `<script>`.
fn embedded_data(html: &str) -> Value {
    const OPEN: &str = r#"<script type="application/json" id="report-data">"#;
    let start = html.find(OPEN).expect("the page embeds its data") + OPEN.len();
    let len = html[start..].find("</script>").expect("the data script is closed");
    serde_json::from_str(&html[start..start + len]).expect("the embedded data is JSON")
}

// ---------------------------------------------------------------------------------------------
// Content checks.

#[test]
fn report_embeds_the_aggregated_data() {
    let data = embedded_data(&render(&small_pickups(), &small_durations()));

    assert_eq!(data["map"]["cells"].as_array().unwrap().len(), 3);
    let windows = data["windows"].as_array().unwrap();
    let labels: Vec<&str> = windows.iter().map(|w| w["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["2016-01-06 13:00 UTC", "2016-01-06 14:00 UTC"]);
    assert_eq!(windows[0]["total"], 15);
    assert_eq!(windows[1]["total"], 9);
    let totals: Vec<u64> = data["totals"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(totals.iter().sum::<u64>(), 24);
    assert!(totals.contains(&19), "Midtown's two windows are summed: {totals:?}");

    let series = data["series"].as_array().unwrap();
    let names: Vec<&str> = series.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["JFK", "LGA"]);
    let jfk = &series[0];
    assert_eq!(jfk["trips"], 9);
    assert_eq!(jfk["points"][0]["minutes"], 28.0, "trip-weighted, not the mean of the averages");
    assert_eq!(jfk["points"][0]["trips"], 5);
    assert_eq!(jfk["points"][1]["minutes"], 40.0);
    let landmarks: Vec<&str> =
        data["map"]["landmarks"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    for place in ["JFK", "LGA", "Midtown"] {
        assert!(landmarks.contains(&place), "landmark {place} in {landmarks:?}");
    }
}

#[test]
fn cells_are_placed_on_the_nyc_map() {
    let data = embedded_data(&render(&small_pickups(), &[]));
    let (width, height) = (data["map"]["width"].as_f64().unwrap(), data["map"]["height"].as_f64().unwrap());
    // At 40.7° N a degree of longitude is ~0.758 of a degree of latitude on the ground, so the
    // box (0.332° of longitude by 0.318° of latitude) is drawn taller than wide.
    let (lat_span, lon_span) = (NYC.max_lat - NYC.min_lat, NYC.max_lon - NYC.min_lon);
    assert!((height / width - lat_span / (lon_span * 0.758)).abs() < 0.01, "aspect {width} × {height}");
    assert!(height > width);
    for cell in data["map"]["cells"].as_array().unwrap() {
        let rect: Vec<f64> = cell["rect"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert!(rect[0] >= 0.0 && rect[0] + rect[2] <= width, "{cell}");
        assert!(rect[1] >= 0.0 && rect[1] + rect[3] <= height, "{cell}");
        assert!(rect[2] > 1.0 && rect[3] > 1.0, "a geohash-7 cell is a few units across: {cell}");
    }
}

#[test]
fn report_is_self_contained() {
    let html = render(&small_pickups(), &small_durations());
    let without_namespace = html.replace(SVG_NAMESPACE, "");
    for reference in ["http://", "https://", "<link", " src=", "@import", "url(http"] {
        assert!(!without_namespace.contains(reference), "the page must not load anything: found {reference:?}");
    }
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<style>") && html.contains("document.title = \"taxi report ready\""));
}

#[test]
fn report_has_sections_and_summary() {
    let html = render(&small_pickups(), &small_durations());
    for text in [
        "Pickups per geohash-7 cell",
        "<select id=\"window\">",
        "<svg id=\"legend\"",
        "Average trip duration to the airports",
        "<svg id=\"chart\"",
    ] {
        assert!(html.contains(text), "missing {text:?}");
    }
    assert!(!html.contains("class=\"no-data\""));
    assert_eq!(
        summary(&html),
        [
            ("Pickup windows", "2"),
            ("Window ends", "2016-01-06 13:00 UTC – 2016-01-06 14:00 UTC"),
            ("Pickup cells", "3"),
            ("Total pickups", "24"),
            ("Airport trips", "14"),
            ("Trips to JFK", "9"),
            ("Trips to LGA", "5"),
        ]
        .map(|(label, value)| (label.to_string(), value.to_string()))
    );
}

/// The summary table's (label, value) pairs: labels in the head row, values in the body row.
fn summary(html: &str) -> Vec<(String, String)> {
    let table = &html[html.find("<section id=\"summary\">").expect("a summary")..];
    cell_texts(table, "thead", "th").into_iter().zip(cell_texts(table, "tbody", "td")).collect()
}

/// The contents of the `cell` elements in the first `part` element of `html`.
fn cell_texts(html: &str, part: &str, cell: &str) -> Vec<String> {
    let start = html.find(&format!("<{part}>")).expect("table part");
    let end = start + html[start..].find(&format!("</{part}>")).expect("table part closed");
    let (open, close) = (format!("<{cell}>"), format!("</{cell}>"));
    html[start..end].split(&open).skip(1).map(|text| text.split(&close).next().unwrap_or("").to_string()).collect()
}

#[test]
fn empty_inputs_say_there_is_no_data() {
    let html = render(&[], &[]);
    assert!(html.contains("No pickup data."));
    assert!(html.contains("No airport trip data."));
    assert!(!html.contains("<svg id=\"map\"") && !html.contains("<svg id=\"chart\""));
    assert!(summary(&html).contains(&("Total pickups".to_string(), "0".to_string())));

    let pickups_only = render(&small_pickups(), &[]);
    assert!(pickups_only.contains("<svg id=\"map\"") && pickups_only.contains("No airport trip data."));
    let durations_only = render(&[], &small_durations());
    assert!(durations_only.contains("No pickup data.") && durations_only.contains("<svg id=\"chart\""));
}

#[test]
fn embedded_text_is_escaped() {
    let hostile = "</script><script>alert(1)</script><!--&\"'";
    let mut durations = small_durations();
    durations[0].airport_code = hostile.to_string();
    let mut pickups = small_pickups();
    pickups[0].location = hostile.to_string(); // not a geohash: counted, but not drawn

    let html = render(&pickups, &durations);
    assert!(!html.contains("<script>alert"), "raw markup from the data reached the page");
    assert!(!html.contains("<!--&"));
    assert!(
        html.contains("<th>Trips to &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;!--&amp;&quot;&#39;</th>")
    );
    assert!(summary(&html).contains(&("Cells not on the map".to_string(), "1".to_string())));
    let data = embedded_data(&html);
    let names: Vec<&str> = data["series"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(names.contains(&hostile), "the JSON escapes decode back to the text: {names:?}");
}

// ---------------------------------------------------------------------------------------------
// Rendering in a headless browser.

/// The window the report is drawn in.
const WINDOW: &str = "--window-size=1200,1600";

#[test]
fn report_renders_in_chromium() {
    let Some(browser) = chromium::find("the taxi report's rendering") else { return };
    let started = Instant::now();
    let (pickups, durations) = rich_fixture();
    let (dir, page) = write(&pickups, &durations);
    let cells = embedded_data(&std::fs::read_to_string(&page).unwrap())["map"]["cells"].as_array().unwrap().len();

    let url = format!("file://{}", page.display());
    let dom = chromium::run(browser, dir.path(), &url, &[WINDOW, "--dump-dom"]);
    assert!(dom.contains("<title>taxi report ready</title>"), "the page's script did not finish: {}", error_of(&dom));
    assert_eq!(dom.matches("class=\"cell\"").count(), cells, "one rectangle per cell");
    assert_eq!(dom.matches("class=\"series-line\"").count(), 2, "a line per airport");
    for drawn in [
        "<option value=\"all\" selected=\"\">All 24 windows summed",
        "<option value=\"0\">Ending 2016-01-06 01:00 UTC (",
        "<option value=\"23\">Ending 2016-01-07 00:00 UTC (",
        "Pickups per cell</text>",
        "To JFK (72 trips)</text>",
        "To LGA (",
        "Average trip duration (minutes)</text>",
        "Window end (UTC)</text>",
        "Midtown</text>",
    ] {
        assert!(dom.contains(drawn), "the drawn page lacks {drawn:?}");
    }
    assert!(dom.contains("data-window=\"all\""));
    assert_eq!(unpainted_cells(&dom), 0, "summed, every cell has pickups");

    // The first hour is quiet: some cells have no pickups, and are left unpainted.
    let first_hour = chromium::run(browser, dir.path(), &format!("{url}#window=0"), &[WINDOW, "--dump-dom"]);
    assert!(first_hour.contains("data-window=\"0\""), "the linked window is shown");
    let unpainted = unpainted_cells(&first_hour);
    assert!(unpainted > 10 && unpainted < cells, "quiet cells are left unpainted: {unpainted} of {cells}");

    // A page of one flat colour compresses to almost nothing; the drawn report does not.
    let blank_url = format!("file://{}", chromium::blank_page(dir.path()).display());
    let (width, height, blank) = chromium::screenshot(browser, dir.path(), &blank_url, "blank.png", &[WINDOW]);
    let (report_width, report_height, drawn) = chromium::screenshot(browser, dir.path(), &url, "report.png", &[WINDOW]);
    assert_eq!((report_width, report_height), (width, height), "both screenshots are of the window");
    assert!(drawn > 20_000 && drawn > 5 * blank, "the screenshot looks empty: {drawn} bytes vs {blank} blank");
    eprintln!("chromium checks took {:?} (report image data {drawn} bytes, blank {blank})", started.elapsed());
    if let Some(keep) = std::env::var_os("TAXI_REPORT_SCREENSHOT") {
        std::fs::copy(dir.path().join("report.png"), keep).expect("screenshot copied");
    }
}

/// How many drawn cells have no fill (no pickups in the shown window).
fn unpainted_cells(dom: &str) -> usize {
    let tags = dom.split("<rect ").filter(|tag| tag.contains("class=\"cell\""));
    tags.filter(|tag| tag[..tag.find('>').unwrap_or(tag.len())].contains("fill=\"none\"")).count()
}

/// The message the page shows when its script failed, for the assertion message.
fn error_of(dom: &str) -> &str {
    let Some(start) = dom.find("id=\"report-error\"") else { return "no error shown" };
    &dom[start..(start + 300).min(dom.len())]
}
