//! Input a newcomer's sweep found the example binaries mishandling, run as a user would:
//! a 50 MB line (read in bounded memory and skipped, not buffered), lines that are not UTF-8
//! (dead letters naming the file and line, in every format), timestamps on the reserved
//! ends of the time line, a far-future watermark event (the trips it makes late go to a
//! late-trips file, counted), and `NaN` coordinates (the same reason from CSV and JSON).
//! Expected results are worked out by hand for each small input.

#[path = "common/example_binary.rs"]
mod example_binary;

#[path = "common/peak_rss.rs"]
mod peak_rss;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn example(name: &str) -> Command {
    let binary = example_binary::path(name);
    Command::new(binary)
}

fn succeeded(name: &str, out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{name} failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines.sort();
    lines
}

#[test]
fn word_count_skips_a_50_mb_line_in_bounded_memory_and_names_every_skipped_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.tsv");
    let mut text = b"1000\tone two two\n".to_vec(); // line 1
    let long_at = text.len(); // line 2: 50 MB of words
    text.extend_from_slice(b"2000\t");
    text.extend(std::iter::repeat_n(b"word ", 10_000_000).flatten());
    let long = text.len() - long_at;
    text.push(b'\n');
    let bad_at = text.len(); // line 3
    text.extend_from_slice(b"3000\tbad \xff byte\n");
    text.extend_from_slice(b"4000\tthree\n9223372036854775807\tend\n-9223372036854775808\tstart\n");
    text.extend_from_slice(b"9223372036854775806\tlast words\n");
    std::fs::write(&input, &text).unwrap();
    let mut command = example("word_count");
    command.args(["--input", input.to_str().unwrap(), "--timestamped", "--parallelism", "2"]);
    let (out, peak) = peak_rss::run_with_peak_rss(command);
    let stderr = succeeded("word_count", &out);
    let path = input.display();
    for says in [
        format!("{path}, line 2 (byte {long_at}): the line is {long} bytes long, over the limit of 1048576 bytes"),
        format!("{path}, line 3 (byte {bad_at}): the line is not UTF-8"),
        "timestamp 9223372036854775807 (i64::MAX) is reserved".to_string(),
        "timestamp -9223372036854775808 (i64::MIN) is reserved".to_string(),
        "4 malformed lines skipped".to_string(),
    ] {
        assert!(stderr.contains(&says), "stderr does not say {says:?}:\n{stderr}");
    }
    let want = [
        "0,5000,one,1",
        "0,5000,three,1",
        "0,5000,two,2",
        // The last window of the time line ends at i64::MAX, not at a wrapped negative value.
        "9223372036854775000,9223372036854775807,last,1",
        "9223372036854775000,9223372036854775807,words,1",
    ];
    assert_eq!(sorted_lines(&String::from_utf8(out.stdout).unwrap()), want);
    // Buffering the line whole (and copying it into a String) needs 100 MB on its own.
    assert!(peak < 100 << 20, "peak RSS {} MiB reading a 50 MB line", peak >> 20);
}

#[test]
fn word_count_on_stdin_names_skipped_lines_by_number() {
    let mut child = example("word_count")
        .args(["--input", "-", "--max-line-length", "100"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = b"a b\n".to_vec();
    input.extend_from_slice(&[b'x'; 200]);
    input.extend_from_slice(b"\nnot \xc3 utf-8\nc\n");
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = succeeded("word_count", &out);
    let long = "stdin, line 2 (byte 4): the line is 200 bytes long, over the limit of 100 bytes";
    assert!(stderr.contains(long), "{stderr}");
    assert!(stderr.contains("stdin, line 3 (byte 205): the line is not UTF-8"), "{stderr}");
    // Processing-time windows depend on the clock: compare the words.
    let words: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| line.split(',').nth(2).unwrap().to_string() + "," + line.split(',').nth(3).unwrap())
        .collect();
    let mut words = words;
    words.sort();
    assert_eq!(words, ["a,1", "b,1", "c,1"]);
}

/// A trip event picked up at (40.75, −73.99) at 10:00 on 2016-01-01, dropped off at `dropoff`.
fn trip(dropoff: &str) -> String {
    format!(
        r#"{{"type":"trip","pickup_latitude":40.75,"pickup_longitude":-73.99,"dropoff_latitude":40.76,"dropoff_longitude":-73.98,"pickup_datetime":"2016-01-01T10:00:00Z","dropoff_datetime":"{dropoff}"}}"#
    )
}

fn watermark(at: &str) -> String {
    format!(r#"{{"type":"watermark","watermark":"{at}"}}"#)
}

/// Runs the taxi job on `input` at parallelism 1; returns its stderr and output directory.
fn taxi(dir: &Path, input: &Path, extra: &[&str]) -> (String, PathBuf) {
    let out_dir = dir.join("out");
    let out = example("taxi_analytics")
        .args(["--input", input.to_str().unwrap(), "--output", out_dir.to_str().unwrap(), "--parallelism", "1"])
        .args(extra)
        .output()
        .unwrap();
    (succeeded("taxi_analytics", &out), out_dir)
}

fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// The reason of each dead letter, by the line's position in the input (1-based).
fn reasons(out_dir: &Path) -> Vec<String> {
    let mut reasons: Vec<String> = json_lines(&out_dir.join("dead_letters.jsonl"))
        .iter()
        .map(|d| d["reason"].as_str().unwrap().to_string())
        .collect();
    reasons.sort();
    reasons
}

#[test]
fn taxi_json_dead_letters_bad_lines_and_writes_trips_made_late_to_the_late_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    let nan = trip("2016-01-01T10:20:00Z").replace("\"pickup_latitude\":40.75", "\"pickup_latitude\":NaN");
    let nan_text = trip("2016-01-01T10:20:00Z").replace("\"pickup_latitude\":40.75", "\"pickup_latitude\":\"NaN\"");
    let mut text = String::new();
    for line in [
        trip("2016-01-01T10:10:00Z"),      // 1: in the 10:00 window
        watermark("2016-01-01T10:20:00Z"), // 2
        trip("2016-01-01T10:30:00Z"),      // 3: in the 10:00 window
        nan,                               // 4: NaN as Python's json writes it
        nan_text,                          // 5: NaN as a string
        watermark("9999-01-01T00:00:00Z"), // 6: every window fires
        trip("2016-01-01T10:40:00Z"),      // 7: late
        trip("2016-01-01T11:40:00Z"),      // 8: late
    ] {
        text.push_str(&line);
        text.push('\n');
    }
    let offset = text.len();
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"{\"type\":\"trip\",\"note\":\"caf\xe9\"}\n"); // 9: Latin-1, not UTF-8
    std::fs::write(&input, bytes).unwrap();
    let (stderr, out_dir) = taxi(dir.path(), &input, &[]);
    assert!(stderr.contains("4 trips (0 outside NYC, 2 late), 3 dead letters"), "{stderr}");
    let pickups = json_lines(&out_dir.join("pickup_count.jsonl"));
    assert_eq!(pickups.len(), 1, "{pickups:?}");
    assert_eq!((pickups[0]["pickup_count"].as_u64(), pickups[0]["timestamp"].as_i64()), (Some(2), Some(1451646000000)));
    let late: Vec<String> =
        json_lines(&out_dir.join("late_trips.jsonl")).iter().map(|t| t["dropoff_datetime"].to_string()).collect();
    assert_eq!(late, ["\"2016-01-01T10:40:00Z\"", "\"2016-01-01T11:40:00Z\""]);
    let not_utf8 = format!("{}, line 9 (byte {offset}): the line is not UTF-8", input.display());
    let reasons = reasons(&out_dir);
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].starts_with(&not_utf8), "{reasons:?}");
    assert_eq!(reasons[1..], ["unparsable pickup latitude \"NaN\"", "unparsable pickup latitude \"NaN\""]);
}

const CSV_HEADER: &str =
    "lpepPickupDatetime,lpepDropoffDatetime,pickupLongitude,pickupLatitude,dropoffLongitude,dropoffLatitude,totalAmount";

#[test]
fn taxi_csv_gives_the_json_reasons_and_names_lines_that_are_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("green.csv");
    let mut text = format!("{CSV_HEADER}\n").into_bytes();
    text.extend_from_slice(b"2016-01-01 10:00:00,2016-01-01 10:10:00,-73.99,40.75,-73.98,40.76,10.5\n"); // line 2
    text.extend_from_slice(b"2016-01-01 10:00:00,2016-01-01 10:20:00,-73.99,NaN,-73.98,40.76,10.5\n"); // line 3
    let offset = text.len();
    text.extend_from_slice(b"2016-01-01 10:00:00,2016-01-01 10:30:00,-73.99,40.75,-73.98,40.76,caf\xe9\n"); // line 4
    text.extend_from_slice(b"2016-01-01 10:00:00,2016-01-01 10:40:00,-73.99,40.75,-73.98,40.76,7\n"); // line 5
    std::fs::write(&input, &text).unwrap();
    let (stderr, out_dir) = taxi(dir.path(), &input, &["--format", "tlc-csv"]);
    assert!(stderr.contains("2 trips (0 outside NYC, 0 late), 2 dead letters"), "{stderr}");
    let reasons = reasons(&out_dir);
    let not_utf8 = format!("{}, line 4 (byte {offset}): the line is not UTF-8", input.display());
    assert!(reasons[0].starts_with(&not_utf8), "{reasons:?}");
    // The same reason as the JSON trip with a NaN latitude gets.
    assert_eq!(reasons[1], "unparsable pickup latitude \"NaN\"");

    // A header that is not UTF-8 stops the run before it starts, naming file and line.
    let mut bad_header = b"lpepPickupDatetime\xff".to_vec();
    bad_header.extend_from_slice(&text[CSV_HEADER.find(',').unwrap()..]);
    std::fs::write(&input, bad_header).unwrap();
    let out = example("taxi_analytics")
        .args(["--input", input.to_str().unwrap(), "--format", "tlc-csv", "--output"])
        .arg(dir.path().join("out2"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("{}, line 1: the CSV header is not UTF-8", input.display())), "{stderr}");
}

#[test]
fn taxi_replay_passes_lines_that_are_not_utf8_on_raw_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("green.csv");
    let bad: &[u8] = b"2016-01-01 10:00:00,2016-01-01 10:30:00,-73.99,40.75,-73.98,40.76,caf\xe9";
    let mut text = format!("{CSV_HEADER}\n").into_bytes();
    text.extend_from_slice(b"2016-01-01 10:00:00,2016-01-01 10:20:00,-73.99,40.75,-73.98,40.76,10.5\n"); // line 2
    text.extend_from_slice(bad); // line 3
    text.extend_from_slice(b"\n2016-01-01 10:00:00,2016-01-01 10:10:00,-73.99,40.75,-73.98,40.76,7\n"); // line 4
    std::fs::write(&input, &text).unwrap();
    let out = example("taxi_replay")
        .args(["--input", input.to_str().unwrap(), "--format", "tlc-csv", "--speedup", "0"])
        .output()
        .unwrap();
    let stderr = succeeded("taxi_replay", &out);
    assert!(stderr.contains(&format!("{}, line 3: not UTF-8", input.display())), "{stderr}");
    assert!(stderr.contains("(1 input lines not UTF-8, passed on raw)"), "{stderr}");
    // Sorted by drop-off, the raw line keeps its place: the second line out, as it was the
    // second data row in.
    let lines: Vec<&[u8]> = out.stdout.split(|&b| b == b'\n').collect();
    assert_eq!(lines[1], bad, "{:?}", String::from_utf8_lossy(&out.stdout));
    for i in [0, 2] {
        let event: Value = serde_json::from_slice(lines[i]).unwrap();
        assert_eq!(event["type"], "trip");
    }
    assert_eq!(serde_json::from_slice::<Value>(lines[0]).unwrap()["dropoff_datetime"], "2016-01-01T10:10:00Z");
}
