//! A self-contained HTML report of the taxi job's results: a heat map of pickups over NYC, a
//! chart of average trip durations to the airports, and a summary table.
//!
//! Rust aggregates the results and projects the geohash cells onto the map; the page embeds
//! that as JSON and draws it with a little vanilla JS, so the window selector can recolour the
//! map in place. Nothing is loaded from the network: the file opens offline and can be kept as
//! a CI artifact.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use chrono::DateTime;
use serde::Serialize;

use super::trip::{Area, PickupCount, TripDuration, JFK, LGA, NYC};

/// Width of the heat map in SVG units; the height follows from the NYC box's aspect.
const MAP_WIDTH: f64 = 580.0;

/// Well-known places drawn on the map so the viewer can tell where the cells are.
const LANDMARKS: [(&str, f64, f64); 6] = [
    ("Midtown", 40.7549, -73.9840),
    ("Central Park", 40.7829, -73.9654),
    ("Lower Manhattan", 40.7075, -74.0113),
    ("Downtown Brooklyn", 40.6928, -73.9903),
    ("LGA", 40.7769, -73.8740),
    ("JFK", 40.6413, -73.7781),
];

/// Writes the report for the job's results to `path` as one HTML file with inline CSS, JS and
/// SVG. Either input may be empty; the page then says there is no data for that part.
pub fn write_report(path: &Path, pickups: &[PickupCount], durations: &[TripDuration]) -> std::io::Result<()> {
    std::fs::write(path, render_report(pickups, durations))
}

/// The report's HTML (what [`write_report`] writes).
fn render_report(pickups: &[PickupCount], durations: &[TripDuration]) -> String {
    let data = ReportData::new(pickups, durations);
    let mut html = String::new();
    html.push_str(PAGE_START);
    push_summary_section(&mut html, &Summary::new(pickups, &data));
    push_pickup_section(&mut html, &data);
    push_duration_section(&mut html, &data);
    // Writing to a String cannot fail; here and below the fmt::Result is ignored.
    let _ = writeln!(html, "<script type=\"application/json\" id=\"report-data\">{}</script>", script_json(&data));
    let _ = writeln!(html, "<script>\n{PAGE_SCRIPT}</script>\n</body>\n</html>");
    html
}

// ---------------------------------------------------------------------------------------------
// The data the page's script draws, embedded as JSON.

/// Everything the script needs, already aggregated and projected so the JS stays small.
#[derive(Debug, Serialize)]
struct ReportData {
    map: MapData,
    /// Pickup windows in time order.
    windows: Vec<PickupWindow>,
    /// Pickups per cell (same order as `map.cells`) over all windows.
    totals: Vec<u64>,
    /// Average trip duration per airport, airports in name order.
    series: Vec<Series>,
}

#[derive(Debug, Serialize)]
struct MapData {
    width: f64,
    height: f64,
    cells: Vec<Cell>,
    landmarks: Vec<Label>,
    /// The airport drop-off areas the job uses, outlined on the map.
    areas: Vec<AreaOutline>,
}

/// A geohash cell as an SVG rectangle `[x, y, width, height]`.
#[derive(Debug, Serialize)]
struct Cell {
    id: String,
    rect: [f64; 4],
}

#[derive(Debug, Serialize)]
struct Label {
    name: &'static str,
    x: f64,
    y: f64,
}

#[derive(Debug, Serialize)]
struct AreaOutline {
    name: &'static str,
    rect: [f64; 4],
}

/// One window's pickups as sparse `(cell index, count)` pairs: most cells are empty in any hour.
#[derive(Debug, Serialize)]
struct PickupWindow {
    end: i64,
    label: String,
    total: u64,
    counts: Vec<(usize, u64)>,
}

#[derive(Debug, Serialize)]
struct Series {
    name: String,
    trips: u64,
    points: Vec<DurationPoint>,
}

#[derive(Debug, Serialize)]
struct DurationPoint {
    /// Window end, ms since the epoch.
    t: i64,
    label: String,
    minutes: f64,
    trips: u64,
}

impl ReportData {
    fn new(pickups: &[PickupCount], durations: &[TripDuration]) -> Self {
        let projection = Projection::new(NYC, MAP_WIDTH);
        let (cells, index) = map_cells(pickups, &projection);
        let windows = pickup_windows(pickups, &index);
        let mut totals = vec![0; cells.len()];
        for (cell, count) in windows.iter().flat_map(|window| &window.counts) {
            totals[*cell] += count;
        }
        let map = MapData {
            width: round2(projection.width()),
            height: round2(projection.height()),
            cells,
            landmarks: LANDMARKS
                .iter()
                .map(|&(name, lat, lon)| {
                    let (x, y) = projection.point(lat, lon);
                    Label { name, x: round2(x), y: round2(y) }
                })
                .collect(),
            areas: [("JFK", JFK), ("LGA", LGA)]
                .into_iter()
                .map(|(name, area)| AreaOutline { name, rect: projection.rect(&area) })
                .collect(),
        };
        ReportData { map, windows, totals, series: duration_series(durations) }
    }
}

/// The distinct cells that can be drawn, sorted by geohash, and each one's index by geohash.
/// Locations that are not geohashes or lie off the map are left out (their pickups still count
/// in the summary).
fn map_cells(pickups: &[PickupCount], projection: &Projection) -> (Vec<Cell>, BTreeMap<String, usize>) {
    let locations: BTreeSet<&str> = pickups.iter().map(|p| p.location.as_str()).collect();
    let cells: Vec<Cell> = locations
        .into_iter()
        .filter_map(|location| {
            let area = geohash_area(location)?;
            projection.overlaps(&area).then(|| Cell { id: location.to_string(), rect: projection.rect(&area) })
        })
        .collect();
    let index = cells.iter().enumerate().map(|(i, cell)| (cell.id.clone(), i)).collect();
    (cells, index)
}

/// The area of a geohash, or `None` if it is not one. An empty string would decode to the whole
/// world, so it is rejected too.
fn geohash_area(location: &str) -> Option<Area> {
    if location.is_empty() {
        return None;
    }
    let bbox = geohash::decode_bbox(location).ok()?;
    Some(Area { min_lat: bbox.min().y, max_lat: bbox.max().y, min_lon: bbox.min().x, max_lon: bbox.max().x })
}

/// Pickups grouped by window end, counts of repeated (cell, window) pairs added up.
fn pickup_windows(pickups: &[PickupCount], index: &BTreeMap<String, usize>) -> Vec<PickupWindow> {
    let mut by_window: BTreeMap<i64, BTreeMap<usize, u64>> = BTreeMap::new();
    for pickup in pickups {
        if let Some(&cell) = index.get(&pickup.location) {
            *by_window.entry(pickup.timestamp).or_default().entry(cell).or_default() += pickup.pickup_count;
        }
    }
    by_window
        .into_iter()
        .map(|(end, counts)| PickupWindow {
            end,
            label: utc_label(end),
            total: counts.values().sum(),
            counts: counts.into_iter().collect(),
        })
        .collect()
}

/// Per airport and window end, the average over all pickup cells weighted by their trips.
fn duration_series(durations: &[TripDuration]) -> Vec<Series> {
    // (sum of minutes, trips) per airport and window end.
    let mut sums: BTreeMap<&str, BTreeMap<i64, (i64, u64)>> = BTreeMap::new();
    for duration in durations {
        let trips = trips_of(duration);
        if trips == 0 {
            continue;
        }
        let entry = sums.entry(&duration.airport_code).or_default().entry(duration.timestamp).or_default();
        entry.0 += duration.sum_trip_duration;
        entry.1 += trips;
    }
    sums.into_iter()
        .map(|(airport, windows)| Series {
            name: airport.to_string(),
            trips: windows.values().map(|&(_, trips)| trips).sum(),
            points: windows
                .into_iter()
                .map(|(t, (minutes, trips))| DurationPoint {
                    t,
                    label: utc_label(t),
                    minutes: round2(minutes as f64 / trips as f64),
                    trips,
                })
                .collect(),
        })
        .collect()
}

/// How many trips a duration record stands for. The job emits only the sum and the average, so
/// the count is recovered as `sum / avg`, rounded because the average is a float. A record with
/// no positive average cannot tell its count and is left out.
fn trips_of(duration: &TripDuration) -> u64 {
    let avg = duration.avg_trip_duration;
    if avg.is_finite() && avg > 0.0 && duration.sum_trip_duration > 0 {
        (duration.sum_trip_duration as f64 / avg).round() as u64
    } else {
        0
    }
}

/// A window end as shown to people: `2016-01-06 13:00 UTC`.
fn utc_label(millis: i64) -> String {
    DateTime::from_timestamp_millis(millis)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| format!("{millis} ms"))
}

/// Two decimals are finer than a pixel and keep the embedded JSON small.
fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The data as JSON that is safe inside a `<script>` element: `<`, `>` and `&` can only occur
/// inside JSON strings, where their `\u` escapes mean the same, so no `</script>` or `<!--` in
/// the data can end the element early.
fn script_json(data: &ReportData) -> String {
    let json = serde_json::to_string(data).expect("report data serializes");
    json.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

// ---------------------------------------------------------------------------------------------
// Map projection.

/// An equirectangular projection of an area onto SVG coordinates (y down). Longitudes are
/// scaled by cos(mid-latitude) so that, at NYC's latitude, a degree of longitude is drawn about
/// 0.76 times as wide as a degree of latitude is tall, as it is on the ground.
struct Projection {
    area: Area,
    /// SVG units per degree of latitude.
    scale: f64,
    lon_factor: f64,
}

impl Projection {
    fn new(area: Area, width: f64) -> Self {
        let lon_factor = ((area.min_lat + area.max_lat) / 2.0).to_radians().cos();
        Projection { area, scale: width / ((area.max_lon - area.min_lon) * lon_factor), lon_factor }
    }

    fn width(&self) -> f64 {
        (self.area.max_lon - self.area.min_lon) * self.lon_factor * self.scale
    }

    fn height(&self) -> f64 {
        (self.area.max_lat - self.area.min_lat) * self.scale
    }

    /// The SVG point of (lat, lon).
    fn point(&self, lat: f64, lon: f64) -> (f64, f64) {
        ((lon - self.area.min_lon) * self.lon_factor * self.scale, (self.area.max_lat - lat) * self.scale)
    }

    /// An area as `[x, y, width, height]`.
    fn rect(&self, area: &Area) -> [f64; 4] {
        let (x0, y0) = self.point(area.max_lat, area.min_lon);
        let (x1, y1) = self.point(area.min_lat, area.max_lon);
        [round2(x0), round2(y0), round2(x1 - x0), round2(y1 - y0)]
    }

    /// Whether any part of `area` is on the map.
    fn overlaps(&self, area: &Area) -> bool {
        area.min_lat <= self.area.max_lat
            && area.max_lat >= self.area.min_lat
            && area.min_lon <= self.area.max_lon
            && area.max_lon >= self.area.min_lon
    }
}

// ---------------------------------------------------------------------------------------------
// Static HTML: the sections' frames, "no data" messages and the summary table.

fn push_pickup_section(html: &mut String, data: &ReportData) {
    html.push_str("<section id=\"pickups\">\n<h2>Pickups per geohash-7 cell</h2>\n");
    if data.map.cells.is_empty() {
        html.push_str("<p class=\"no-data\">No pickup data.</p>\n</section>\n");
        return;
    }
    html.push_str(concat!(
        "<div class=\"map-layout\">\n",
        "<svg id=\"map\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"Pickup heat map\"></svg>\n",
        "<div class=\"map-side\">\n",
        "<label for=\"window\">Window</label>\n<select id=\"window\"></select>\n",
        "<svg id=\"legend\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"Colour legend\"></svg>\n",
        "<p id=\"cell-info\" class=\"hint\">Point at a cell for its count.</p>\n",
        "<p class=\"hint\">Colours use a log scale. Dashed boxes: the airport drop-off areas. ",
        "Add <code>#window=N</code> to the address to open the N-th window.</p>\n",
        "</div>\n</div>\n</section>\n",
    ));
}

fn push_duration_section(html: &mut String, data: &ReportData) {
    html.push_str("<section id=\"durations\">\n<h2>Average trip duration to the airports</h2>\n");
    if data.series.is_empty() {
        html.push_str("<p class=\"no-data\">No airport trip data.</p>\n</section>\n");
        return;
    }
    html.push_str(concat!(
        "<p class=\"hint\">Per window end: all trips to the airport from any pickup cell, ",
        "weighted by trips.</p>\n",
        "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" ",
        "aria-label=\"Average trip duration chart\"></svg>\n</section>\n",
    ));
}

/// The figures in the summary table.
struct Summary {
    windows: usize,
    first: Option<String>,
    last: Option<String>,
    cells: usize,
    unmapped_cells: usize,
    pickups: u64,
    /// Trips per airport, airports in name order.
    airport_trips: Vec<(String, u64)>,
}

impl Summary {
    fn new(pickups: &[PickupCount], data: &ReportData) -> Self {
        let ends: BTreeSet<i64> = pickups.iter().map(|p| p.timestamp).collect();
        let locations: BTreeSet<&str> = pickups.iter().map(|p| p.location.as_str()).collect();
        Summary {
            windows: ends.len(),
            first: ends.first().map(|&t| utc_label(t)),
            last: ends.last().map(|&t| utc_label(t)),
            cells: locations.len(),
            unmapped_cells: locations.len() - data.map.cells.len(),
            pickups: pickups.iter().map(|p| p.pickup_count).sum(),
            airport_trips: data.series.iter().map(|s| (s.name.clone(), s.trips)).collect(),
        }
    }

    /// (label, value) columns, unescaped.
    fn columns(&self) -> Vec<(String, String)> {
        let mut columns = vec![("Pickup windows".to_string(), group_digits(self.windows as u64))];
        if let (Some(first), Some(last)) = (&self.first, &self.last) {
            columns.push(("Window ends".to_string(), format!("{first} – {last}")));
        }
        columns.push(("Pickup cells".to_string(), group_digits(self.cells as u64)));
        if self.unmapped_cells > 0 {
            columns.push(("Cells not on the map".to_string(), group_digits(self.unmapped_cells as u64)));
        }
        columns.push(("Total pickups".to_string(), group_digits(self.pickups)));
        let airport_total = self.airport_trips.iter().map(|(_, trips)| trips).sum();
        columns.push(("Airport trips".to_string(), group_digits(airport_total)));
        for (airport, trips) in &self.airport_trips {
            columns.push((format!("Trips to {airport}"), group_digits(*trips)));
        }
        columns
    }
}

/// The summary as a two-row table (labels over values): it fits above the map, so a
/// screenshot of the page's first screen shows everything.
fn push_summary_section(html: &mut String, summary: &Summary) {
    let columns = summary.columns();
    html.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<table>\n<thead><tr>");
    for (label, _) in &columns {
        let _ = write!(html, "<th>{}</th>", escape_html(label));
    }
    html.push_str("</tr></thead>\n<tbody><tr>");
    for (_, value) in &columns {
        let _ = write!(html, "<td>{}</td>", escape_html(value));
    }
    html.push_str("</tr></tbody>\n</table>\n</section>\n");
}

/// `1234567` as `1,234,567`.
fn group_digits(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Text for HTML element content or a quoted attribute value.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The page's fixed parts.

const PAGE_START: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>NYC taxi report</title>
<style>
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330;
         background: #f7f7f5; margin: 20px auto; max-width: 1140px; padding: 0 16px; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  h2 { font-size: 17px; margin: 0 0 10px; }
  section { background: #fff; border: 1px solid #dde0e4; border-radius: 6px; padding: 14px 18px;
            margin: 14px 0; }
  .subtitle, .hint { color: #5b6472; margin: 0 0 8px; }
  .hint { font-size: 12px; }
  .no-data { color: #8a5a00; background: #fff6e0; border: 1px solid #f0d9a0; border-radius: 4px;
             padding: 10px 12px; }
  .map-layout { display: flex; gap: 22px; align-items: flex-start; }
  .map-side { display: flex; flex-direction: column; gap: 8px; min-width: 300px; }
  #map { flex: none; background: #e9eef3; border: 1px solid #c9d1da; }
  #map .landmark text { font-size: 12px; font-weight: 600; fill: #1d2330; stroke: #fff;
                        stroke-width: 3px; paint-order: stroke; }
  #map .area { fill: none; stroke: #1d2330; stroke-dasharray: 3 2; stroke-width: 1; }
  #chart text, #legend text { font-size: 12px; fill: #1d2330; }
  #chart .grid { stroke: #e3e6ea; }
  #chart .axis { stroke: #1d2330; }
  #chart .axis-title { font-size: 13px; font-weight: 600; }
  select { font: inherit; padding: 3px; }
  label { font-weight: 600; }
  table { border-collapse: collapse; }
  th, td { text-align: left; padding: 3px 22px 3px 0; }
  th { color: #5b6472; font-weight: 600; font-size: 12px; border-bottom: 1px solid #eceef0; }
  td { font-size: 16px; font-variant-numeric: tabular-nums; }
  #report-error { color: #a40000; font-weight: 600; }
</style>
</head>
<body>
<h1>NYC taxi analytics</h1>
<p class="subtitle">Results of the eddy taxi example: pickups per geohash-7 cell and hour, and trip
durations from each geohash-6 cell to JFK and LaGuardia.</p>
<p id="report-error" hidden></p>
"##;

/// Draws the map, legend and chart from the embedded JSON, then sets the title so that a
/// headless browser can tell the script ran to the end.
const PAGE_SCRIPT: &str = r##""use strict";
(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  // A sequential yellow-orange-red scale that stays visible on the light map background.
  const STOPS = ["#fdb447", "#fd8d3c", "#f16913", "#d94801", "#a63603", "#7f2704", "#4a1500"];
  const SERIES_COLOURS = { JFK: "#1f6fb4", LGA: "#d1495b" };
  const SPARE_COLOURS = ["#2a9d8f", "#7b5ea7", "#6c757d"];
  const HOUR = 3600000;

  function svgEl(name, attrs, parent) {
    const el = document.createElementNS(SVG_NS, name);
    for (const key in attrs) el.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(el);
    return el;
  }

  function svgText(parent, x, y, text, attrs) {
    const el = svgEl("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    el.textContent = text;
    return el;
  }

  function hex(c) { return [1, 3, 5].map(function (i) { return parseInt(c.slice(i, i + 2), 16); }); }

  // Colour for t in [0, 1], interpolated between the stops.
  function colour(t) {
    const pos = Math.min(Math.max(t, 0), 1) * (STOPS.length - 1);
    const i = Math.min(Math.floor(pos), STOPS.length - 2);
    const a = hex(STOPS[i]), b = hex(STOPS[i + 1]), f = pos - i;
    return "rgb(" + a.map(function (v, k) { return Math.round(v + (b[k] - v) * f); }).join(",") + ")";
  }

  // Pickups are heavily skewed towards Manhattan, so colours follow log(count).
  function scale(count, max) { return max <= 1 ? 1 : Math.log(count) / Math.log(max); }

  function formatCount(n) { return n.toLocaleString("en-US"); }

  // ---- heat map ----

  function drawMap(data) {
    const svg = document.getElementById("map");
    if (!svg) return;
    const map = data.map;
    svg.setAttribute("viewBox", "0 0 " + map.width + " " + map.height);
    svg.setAttribute("width", map.width);
    svg.setAttribute("height", map.height);
    // crispEdges: anti-aliased edges of adjacent cells would show as a faint grid.
    const cells = svgEl("g", { class: "cells", "shape-rendering": "crispEdges" }, svg);
    const rects = map.cells.map(function (cell, i) {
      const r = cell.rect;
      return svgEl("rect", { class: "cell", x: r[0], y: r[1], width: r[2], height: r[3], "data-i": i }, cells);
    });
    map.areas.forEach(function (area) {
      const r = area.rect;
      svgEl("rect", { class: "area", x: r[0], y: r[1], width: r[2], height: r[3] }, svg);
    });
    map.landmarks.forEach(function (mark) {
      const g = svgEl("g", { class: "landmark" }, svg);
      svgEl("circle", { cx: mark.x, cy: mark.y, r: 3, fill: "#1d2330", stroke: "#fff" }, g);
      svgText(g, mark.x + 6, mark.y + 4, mark.name);
    });
    const select = buildSelector(data);
    // A link can open one window: report.html#window=3 (its index in the selector).
    const linked = /^#window=(\d+)$/.exec(location.hash);
    if (linked && Number(linked[1]) < data.windows.length) select.value = linked[1];
    let values = data.totals;
    const show = function () {
      values = countsFor(data, select.value);
      recolour(rects, values);
      svg.setAttribute("data-window", select.value);
    };
    select.addEventListener("change", show);
    cells.addEventListener("mouseover", function (event) {
      const i = event.target.getAttribute("data-i");
      if (i === null) return;
      document.getElementById("cell-info").textContent =
        map.cells[i].id + ": " + formatCount(values[i]) + " pickups";
    });
    show();
  }

  function buildSelector(data) {
    const select = document.getElementById("window");
    const all = data.windows.reduce(function (sum, w) { return sum + w.total; }, 0);
    select.appendChild(new Option("All " + data.windows.length + " windows summed (" + formatCount(all) +
      " pickups)", "all", true, true));
    data.windows.forEach(function (w, i) {
      select.appendChild(new Option("Ending " + w.label + " (" + formatCount(w.total) + ")", String(i)));
    });
    return select;
  }

  function countsFor(data, choice) {
    if (choice === "all") return data.totals;
    const counts = new Array(data.totals.length).fill(0);
    data.windows[Number(choice)].counts.forEach(function (pair) { counts[pair[0]] = pair[1]; });
    return counts;
  }

  function recolour(rects, values) {
    const max = values.reduce(function (m, v) { return Math.max(m, v); }, 0);
    rects.forEach(function (rect, i) {
      const v = values[i];
      rect.setAttribute("fill", v > 0 ? colour(scale(v, max)) : "none");
    });
    drawLegend(max);
  }

  // A gradient bar with ticks at powers of ten and at the maximum.
  function drawLegend(max) {
    const svg = document.getElementById("legend");
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const width = 300, barX = 10, barW = 270, barY = 22, barH = 14;
    svg.setAttribute("width", width);
    svg.setAttribute("height", 70);
    svgText(svg, barX, 14, "Pickups per cell", { "font-weight": 600 });
    const gradient = svgEl("linearGradient", { id: "legend-gradient" }, svgEl("defs", {}, svg));
    for (let k = 0; k <= 10; k++) {
      svgEl("stop", { offset: k * 10 + "%", "stop-color": colour(k / 10) }, gradient);
    }
    svgEl("rect", { x: barX, y: barY, width: barW, height: barH, fill: "url(#legend-gradient)",
                    stroke: "#9aa3ad" }, svg);
    const ticks = [1];
    for (let p = 10; p < max; p *= 10) ticks.push(p);
    if (max > 1) ticks.push(max);
    ticks.forEach(function (tick, k) {
      const x = barX + barW * scale(tick, max);
      // Skip a power of ten that would overlap the maximum's label.
      if (k > 0 && tick !== max && barX + barW - x < 28) return;
      svgEl("line", { x1: x, x2: x, y1: barY + barH, y2: barY + barH + 5, stroke: "#1d2330" }, svg);
      svgText(svg, x, barY + barH + 18, formatCount(tick), { "text-anchor": "middle" });
    });
  }

  // ---- trip duration chart ----

  function niceStep(range, count) {
    const raw = range / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  }

  // Ticks on whole UTC hours or days, at most about eight of them.
  function timeTicks(t0, t1) {
    const steps = [1, 2, 3, 6, 12, 24, 48, 168, 336, 672].map(function (h) { return h * HOUR; });
    const step = steps.find(function (s) { return (t1 - t0) / s <= 8; }) || steps[steps.length - 1];
    const ticks = [];
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) ticks.push(t);
    return { step: step, ticks: ticks };
  }

  function pad(n) { return String(n).padStart(2, "0"); }

  function utcDate(t) {
    const d = new Date(t);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate());
  }

  function drawChart(data) {
    const svg = document.getElementById("chart");
    if (!svg) return;
    const W = 1100, H = 380, m = { left: 70, right: 170, top: 16, bottom: 66 };
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("width", W);
    svg.setAttribute("height", H);
    const points = [].concat.apply([], data.series.map(function (s) { return s.points; }));
    let t0 = Math.min.apply(null, points.map(function (p) { return p.t; }));
    let t1 = Math.max.apply(null, points.map(function (p) { return p.t; }));
    if (t0 === t1) { t0 -= HOUR; t1 += HOUR; }
    const top = Math.max.apply(null, points.map(function (p) { return p.minutes; })) || 1;
    const yStep = niceStep(top, 5), yMax = Math.ceil(top / yStep) * yStep;
    const x = function (t) { return m.left + (t - t0) / (t1 - t0) * (W - m.left - m.right); };
    const y = function (v) { return H - m.bottom - v / yMax * (H - m.top - m.bottom); };
    drawYAxis(svg, y, yStep, yMax, m, W, H);
    drawXAxis(svg, x, t0, t1, m, W, H);
    const gap = windowGap(points);
    data.series.forEach(function (series, k) {
      const colour = Object.prototype.hasOwnProperty.call(SERIES_COLOURS, series.name)
        ? SERIES_COLOURS[series.name] : SPARE_COLOURS[k % SPARE_COLOURS.length];
      drawSeries(svg, series, colour, x, y, gap);
      drawLegendEntry(svg, series, colour, W - m.right + 20, m.top + 10 + k * 24);
    });
  }

  function drawYAxis(svg, y, step, max, m, W, H) {
    for (let v = 0; v <= max + step / 2; v += step) {
      svgEl("line", { class: "grid", x1: m.left, x2: W - m.right, y1: y(v), y2: y(v) }, svg);
      svgText(svg, m.left - 8, y(v) + 4, String(Math.round(v * 100) / 100), { "text-anchor": "end" });
    }
    svgEl("line", { class: "axis", x1: m.left, x2: m.left, y1: m.top, y2: H - m.bottom }, svg);
    const cy = (m.top + H - m.bottom) / 2;
    svgText(svg, 18, cy, "Average trip duration (minutes)",
      { class: "axis-title", "text-anchor": "middle", transform: "rotate(-90 18 " + cy + ")" });
  }

  function drawXAxis(svg, x, t0, t1, m, W, H) {
    const base = H - m.bottom;
    svgEl("line", { class: "axis", x1: m.left, x2: W - m.right, y1: base, y2: base }, svg);
    const ticks = timeTicks(t0, t1);
    let lastDate = "";
    ticks.ticks.forEach(function (t) {
      svgEl("line", { class: "axis", x1: x(t), x2: x(t), y1: base, y2: base + 5 }, svg);
      const date = utcDate(t);
      // Hourly ticks show the time, and the date under it only where the day changes.
      const lines = ticks.step >= 24 * HOUR ? [date] : [pad(new Date(t).getUTCHours()) + ":00"];
      if (ticks.step < 24 * HOUR && date !== lastDate) lines.push(date);
      lastDate = date;
      lines.forEach(function (line, i) {
        svgText(svg, x(t), base + 18 + i * 14, line, { "text-anchor": "middle" });
      });
    });
    svgText(svg, (m.left + W - m.right) / 2, H - 10, "Window end (UTC)",
      { class: "axis-title", "text-anchor": "middle" });
  }

  // The window length, taken as the smallest spacing of window ends; lines break at larger gaps
  // so hours without data do not look measured.
  function windowGap(points) {
    const ts = Array.from(new Set(points.map(function (p) { return p.t; }))).sort(function (a, b) { return a - b; });
    let gap = Infinity;
    for (let i = 1; i < ts.length; i++) gap = Math.min(gap, ts[i] - ts[i - 1]);
    return gap;
  }

  function drawSeries(svg, series, colour, x, y, gap) {
    const g = svgEl("g", { class: "series", "data-name": series.name }, svg);
    let d = "";
    series.points.forEach(function (p, i) {
      const joined = i > 0 && p.t - series.points[i - 1].t <= gap * 1.5;
      d += (joined ? "L" : "M") + x(p.t).toFixed(1) + "," + y(p.minutes).toFixed(1);
    });
    svgEl("path", { class: "series-line", d: d, fill: "none", stroke: colour, "stroke-width": 2 }, g);
    series.points.forEach(function (p) {
      const dot = svgEl("circle", { class: "series-point", cx: x(p.t), cy: y(p.minutes), r: 3, fill: colour }, g);
      svgEl("title", {}, dot).textContent = series.name + ", window ending " + p.label + ": " +
        p.minutes.toFixed(1) + " min average over " + p.trips + " trips";
    });
  }

  function drawLegendEntry(svg, series, colour, x, y) {
    const g = svgEl("g", { class: "chart-legend" }, svg);
    svgEl("line", { x1: x, x2: x + 22, y1: y, y2: y, stroke: colour, "stroke-width": 2.5 }, g);
    svgEl("circle", { cx: x + 11, cy: y, r: 3, fill: colour }, g);
    svgText(g, x + 30, y + 4, "To " + series.name + " (" + formatCount(series.trips) + " trips)");
  }

  try {
    const data = JSON.parse(document.getElementById("report-data").textContent);
    drawMap(data);
    drawChart(data);
    document.title = "taxi report ready";
  } catch (error) {
    const box = document.getElementById("report-error");
    box.hidden = false;
    box.textContent = "The report could not be drawn: " + error;
    document.title = "taxi report error";
  }
})();
"##;
