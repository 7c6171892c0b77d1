//! Every example binary checks its flags before doing any work, and says what to do: values
//! that cannot work (a parallelism above the max parallelism, a window longer than event
//! time, an empty account range, a geohash precision outside 1..=12, a report path that
//! cannot be written) are refused at once with exit code 2 (1 for a path), never clamped,
//! wrapped or found out after the job ran.

#[path = "common/example_binary.rs"]
mod example_binary;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An example binary, which a plain `cargo test` builds next to the tests.
fn example(name: &str) -> Command {
    let binary = example_binary::path(name);
    Command::new(binary)
}

fn run(name: &str, args: &[&str]) -> Output {
    example(name).args(args).output().unwrap()
}

/// Runs an example that must refuse `args` with a usage error whose text holds `says`.
fn refused(name: &str, args: &[&str], says: &str) {
    let out = run(name, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name} {args:?} should be refused: {stderr}");
    assert!(stderr.contains(says), "{name} {args:?}: {stderr:?} does not say {says:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

const U64_MAX: &str = "18446744073709551615";

#[test]
fn parallelism_outside_1_to_128_is_refused_not_clamped() {
    let says = "use a whole number from 1 to 128 (the max parallelism)";
    for name in ["word_count", "fraud_detection", "taxi_analytics"] {
        for p in ["0", "129", "100000", "-1", "two"] {
            refused(name, &[&format!("--parallelism={p}")], says);
        }
    }
}

#[test]
fn window_lengths_beyond_event_time_are_refused_not_wrapped() {
    for name in ["word_count", "taxi_analytics"] {
        refused(name, &["--window-ms", U64_MAX], "is not in 1..=9223372036854775807");
        refused(name, &["--window-ms", "0"], "is not in 1..=9223372036854775807");
        refused(name, &["--out-of-orderness-ms", U64_MAX], "is not in 0..=9223372036854775807");
    }
}

#[test]
fn word_count_refuses_a_zero_checkpoint_interval_and_line_limit() {
    refused("word_count", &["--checkpoint-interval-ms", "0"], "is not in 1..");
    refused("word_count", &["--max-line-length", "0"], "is not in 1..=");
}

#[test]
fn word_count_state_backend_flags_go_together_and_sled_gives_the_same_counts() {
    refused("word_count", &["--state-backend", "sled"], "--state-dir");
    refused("word_count", &["--state-dir", "/tmp/unused"], "add --state-backend sled, or drop --state-dir");
    refused("word_count", &["--state-backend", "disk"], "[possible values: heap, sled]");
    refused(
        "word_count",
        &["--state-backend", "sled", "--state-dir", "/tmp/x", "--state-cache-mb", "0"],
        "is not in 1..=",
    );
    let dir = tempfile::tempdir().unwrap();
    let counts = |extra: &[&str]| {
        let mut args = vec!["--parallelism", "2"];
        args.extend_from_slice(extra);
        let out = run("word_count", &args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut lines: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect();
        lines.sort();
        lines
    };
    let state = dir.path().join("state");
    let sled = counts(&["--state-backend", "sled", "--state-dir", state.to_str().unwrap()]);
    assert!(!sled.is_empty());
    assert_eq!(sled, counts(&[]));
    // Each subtask's database is working state, removed when the job ends.
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0);
}

#[test]
fn fraud_detection_needs_at_least_one_account() {
    refused("fraud_detection", &["--accounts", "0"], "0 is not in 1..=4294967295");
    // One account works: every transaction is that account's.
    let out = run("fraud_detection", &["--accounts", "1", "--transactions", "2000", "--parallelism", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.lines().all(|alert| alert.starts_with("0,")), "{stdout}");
}

#[test]
fn taxi_hotspot_and_airport_precisions_are_geohash_lengths() {
    for flag in ["--hotspot-precision", "--airport-precision"] {
        for value in ["0", "13", "99"] {
            refused("taxi_analytics", &[flag, value], "is not in 1..=12");
        }
    }
}

/// A one-trip taxi input, in JSON events.
fn one_trip(dir: &Path) -> PathBuf {
    let input = dir.join("trip.jsonl");
    let trip = r#"{"type":"trip","pickup_latitude":40.75,"pickup_longitude":-73.99,"dropoff_latitude":40.76,"dropoff_longitude":-73.98,"pickup_datetime":"2016-01-01T10:00:00Z","dropoff_datetime":"2016-01-01T10:10:00Z"}"#;
    std::fs::write(&input, format!("{trip}\n")).unwrap();
    input
}

#[test]
fn taxi_precision_12_gives_12_character_cells() {
    let dir = tempfile::tempdir().unwrap();
    let input = one_trip(dir.path());
    let out_dir = dir.path().join("out");
    let args = ["--input", input.to_str().unwrap(), "--output", out_dir.to_str().unwrap(), "--hotspot-precision", "12"];
    let out = run("taxi_analytics", &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pickups = std::fs::read_to_string(out_dir.join("pickup_count.jsonl")).unwrap();
    let cell = geohash::encode(geohash::Coord { x: -73.99, y: 40.75 }, 12).unwrap();
    assert!(pickups.contains(&format!("\"location\":\"{cell}\",\"pickup_count\":1")), "{pickups}");
}

#[test]
fn an_unwritable_report_path_fails_before_the_job_runs() {
    let dir = tempfile::tempdir().unwrap();
    let input = one_trip(dir.path());
    let out_dir = dir.path().join("out");
    let report = dir.path().join("no such dir").join("report.html");
    let args = [
        "--input",
        input.to_str().unwrap(),
        "--output",
        out_dir.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];
    let out = run("taxi_analytics", &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("cannot write {} (--report)", report.display())), "{stderr}");
    assert!(!out_dir.join("pickup_count.jsonl").exists(), "the job ran before the report path was checked");
    // A writable report path is left as it was until the report is written.
    let fine = dir.path().join("report.html");
    let args =
        ["--input", input.to_str().unwrap(), "--output", out_dir.to_str().unwrap(), "--report", fine.to_str().unwrap()];
    assert!(run("taxi_analytics", &args).status.success());
    assert!(std::fs::read_to_string(&fine).unwrap().contains("<html"));
}

#[test]
fn taxi_replay_refuses_rates_and_intervals_that_cannot_work() {
    refused("taxi_replay", &["--generate", "--malformed-per-million", "1000001"], "is not in 0..=1000000");
    refused("taxi_replay", &["--generate", "--watermark-every-ms=-1"], "is not in 0..");
    refused("taxi_replay", &["--generate", "--disorder-ms", U64_MAX], "is not in 0..=9223372036854775807");
}

#[test]
fn gen_words_help_prints_usage_and_creates_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = example("gen_words").arg("--help").current_dir(dir.path()).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: gen_words <OUT> <BYTES>"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "gen_words --help wrote a file");
    let bad = example("gen_words").args(["words.tsv", "lots"]).current_dir(dir.path()).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("use a number of bytes such as 100000000 or 1e8"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // Float notation still works, as it did.
    let ok = example("gen_words").args(["words.tsv", "1e3"]).current_dir(dir.path()).output().unwrap();
    assert!(ok.status.success());
    assert!(std::fs::metadata(dir.path().join("words.tsv")).unwrap().len() >= 1000);
}

#[test]
fn metrics_addresses_are_checked_before_the_job_runs() {
    for name in ["word_count", "taxi_analytics"] {
        refused(name, &["--metrics-addr", "localhost"], "give HOST:PORT, e.g. 127.0.0.1:9249");
        refused(name, &["--metrics-addr", "127.0.0.1:99999"], "give HOST:PORT");
    }
    // A taken port fails before any work, and says what to do.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run("word_count", &["--metrics-addr", &addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("pick another port"), "{stderr}");
    assert!(out.stdout.is_empty(), "no counts before the endpoint is up");
    // A free one is served while the job runs, and says where.
    let out = run("word_count", &["--metrics-addr", "127.0.0.1:0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("word count: metrics at http://127.0.0.1:"), "{stderr}");
}

#[test]
fn logs_follow_rust_log_and_the_progress_line_stays_off_a_pipe() {
    let stderr = |args: &[&str], rust_log: Option<&str>| {
        let mut command = example("word_count");
        command.args(args).env_remove("RUST_LOG");
        if let Some(filter) = rust_log {
            command.env("RUST_LOG", filter);
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    // Warnings only by default; RUST_LOG=info adds the job's own lines.
    let quiet = stderr(&["--quiet"], None);
    assert!(!quiet.contains("job finished"), "{quiet}");
    let info = stderr(&[], Some("info"));
    assert!(info.contains("job finished") && info.contains("job=word count"), "{info}");
    // A filter that does not parse is reported, and the run goes on.
    let bad = stderr(&[], Some("eddy=["));
    assert!(bad.contains("word count: ignoring RUST_LOG=\"eddy=[\""), "{bad}");
    // stderr is a pipe here: no progress line, with or without --quiet.
    for text in [&quiet, &info, &bad] {
        assert!(!text.contains("records/s") && !text.contains('\r'), "{text}");
    }
}
