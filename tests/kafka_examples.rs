//! The examples over Kafka, run as a user would (their binaries and flags) against a real
//! broker (noida-db): word count from a topic to a topic exactly-once, and the taxi job from
//! a replayed, 4-partition topic to two result topics, killed with SIGKILL twice and
//! restored, against the same job over files.

#[path = "common/example_binary.rs"]
mod example_binary;

#[path = "../crates/eddy-kafka/tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{create_topic, produce, read_committed, Service};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/corpus.tsv");

/// An example binary, which a plain `cargo test` builds next to the tests.
fn binary(name: &str) -> PathBuf {
    example_binary::path(name)
}

/// Runs an example to the end and returns its stderr; panics with it if the run fails.
fn run(name: &str, args: &[&str]) -> String {
    let out = Command::new(binary(name)).args(args).stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{name} {args:?} failed: {stderr}");
    stderr
}

/// The lines of a file as a set, checking there are no duplicates.
fn line_set(lines: impl IntoIterator<Item = String>, what: &str) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for line in lines {
        assert!(set.insert(line.clone()), "{what}: {line} twice");
    }
    set
}

#[test]
fn word_count_from_topic_to_topic_matches_the_file_run() {
    let Some(kafka) = Service::kafka() else { return };
    let brokers = kafka.address();
    create_topic(&brokers, "lines", 3);
    create_topic(&brokers, "counts", 1);
    let mut input: Vec<Vec<u8>> =
        std::fs::read_to_string(CORPUS).unwrap().lines().map(|l| l.as_bytes().to_vec()).collect();
    // Two records the file does not have, which the Kafka run skips and reports: one without
    // its time prefix, one stamped with the "no timestamp" marker.
    input.insert(5, b"no time prefix".to_vec());
    input.insert(9, b"-9223372036854775808\tthe marker".to_vec());
    produce(&brokers, "lines", &input, Some(3));
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference.csv");
    run(
        "word_count",
        &["--input", CORPUS, "--timestamped", "--parallelism", "1", "--output", reference.to_str().unwrap()],
    );
    let expected = line_set(std::fs::read_to_string(&reference).unwrap().lines().map(String::from), "file run");
    let checkpoints = dir.path().join("chk");
    let stderr = run(
        "word_count",
        &[
            "--kafka-brokers",
            &brokers,
            "--input-topic",
            "lines",
            "--timestamped",
            "--bounded",
            "--output-topic",
            "counts",
            "--checkpoint-dir",
            checkpoints.to_str().unwrap(),
            "--checkpoint-interval-ms",
            "200",
            "--parallelism",
            "2",
        ],
    );
    let got = line_set(read_committed(&brokers, "counts", expected.len(), Duration::from_secs(10)), "Kafka run");
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the Kafka run's rows differ from the file run's");
    assert!(stderr.contains("2 malformed lines skipped"), "{stderr}");
    assert!(stderr.contains("no `<epoch_ms>` and tab") && stderr.contains("reserved for"), "{stderr}");
}

#[test]
fn word_count_refuses_kafka_flags_that_cannot_work() {
    let out = Command::new(binary("word_count")).args(["--input-topic", "t"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kafka-brokers"));
    let out = Command::new(binary("word_count")).args(["--kafka-brokers", "127.0.0.1:1"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither --input-topic nor --output-topic"));
}

/// JSON documents, each re-serialized from its parsed form so equal documents compare equal.
fn documents(lines: impl IntoIterator<Item = String>, what: &str) -> BTreeSet<String> {
    let canonical = lines.into_iter().map(|l| serde_json::from_str::<serde_json::Value>(&l).unwrap().to_string());
    line_set(canonical, what)
}

fn file_documents(path: &Path) -> BTreeSet<String> {
    documents(std::fs::read_to_string(path).unwrap().lines().map(String::from), &path.display().to_string())
}

/// Whether the checkpoint directory holds a complete checkpoint to restore from (a run
/// killed before its first checkpoint completed leaves none: the next one starts afresh).
fn has_checkpoint(dir: &Path) -> bool {
    eddy_state::checkpoint::open_restore_path(dir).is_ok()
}

#[test]
fn taxi_over_kafka_killed_twice_writes_what_the_file_run_writes_exactly_once() {
    let Some(kafka) = Service::kafka() else { return };
    let brokers = kafka.address();
    create_topic(&brokers, "trips", 4);
    create_topic(&brokers, "pickup_count", 2);
    create_topic(&brokers, "trip_duration", 2);
    let dir = tempfile::tempdir().unwrap();
    let day = dir.path().join("day.jsonl");
    let trips = if cfg!(debug_assertions) { "60000" } else { "400000" };
    let generate = ["--generate", "--trips", trips, "--start", "2016-02-01T00:00:00Z", "--speedup", "0"];
    run("taxi_replay", &[&generate[..], &["--output", day.to_str().unwrap()]].concat());
    run("taxi_replay", &[&generate[..], &["--kafka-brokers", &brokers, "--topic", "trips"]].concat());

    let files = dir.path().join("files");
    run(
        "taxi_analytics",
        &["--input", day.to_str().unwrap(), "--parallelism", "2", "--output", files.to_str().unwrap()],
    );
    let (pickups, durations) =
        (file_documents(&files.join("pickup_count.jsonl")), file_documents(&files.join("trip_duration.jsonl")));
    assert!(!pickups.is_empty() && !durations.is_empty());

    let checkpoints = dir.path().join("chk");
    let out = dir.path().join("kafka-out");
    let job = |restore: bool| {
        let mut args = vec![
            "--source",
            "kafka",
            "--kafka-brokers",
            &brokers,
            "--topic",
            "trips",
            "--bounded",
            "--sink",
            "kafka",
            "--parallelism",
            "2",
            "--checkpoint-interval-ms",
            "500",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(["--checkpoint-dir".into(), checkpoints.display().to_string()]);
        args.extend(["--output".into(), out.display().to_string()]);
        if restore && has_checkpoint(&checkpoints) {
            args.extend(["--restore".into(), checkpoints.display().to_string()]);
        }
        let mut command = Command::new(binary("taxi_analytics"));
        command.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        command
    };
    let mut kills = 0;
    for attempt in 0..2 {
        let mut child = job(attempt > 0).spawn().unwrap();
        // A random moment after the first checkpoint can have completed.
        let wait = Duration::from_millis(1_200 + fastrand::u64(0..1_500));
        let started = Instant::now();
        while started.elapsed() < wait && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let _ = child.wait();
    }
    assert!(kills >= 1, "every run ended before it could be killed: give it more trips");
    let last = job(true).output().unwrap();
    assert!(last.status.success(), "the restored run failed: {}", String::from_utf8_lossy(&last.stderr));

    let read = |topic: &str, expected: usize| {
        documents(read_committed(&brokers, topic, expected + 1, Duration::from_secs(5)), &format!("topic {topic}"))
    };
    let (got_pickups, got_durations) = (read("pickup_count", pickups.len()), read("trip_duration", durations.len()));
    assert_eq!((got_pickups.len(), got_durations.len()), (pickups.len(), durations.len()), "{kills} kills");
    assert!(got_pickups == pickups, "pickup counts differ from the file run's");
    assert!(got_durations == durations, "trip durations differ from the file run's");
}

#[test]
fn taxi_refuses_kafka_flags_that_cannot_work() {
    let refused = |args: &[&str], says: &str| {
        let out = Command::new(binary("taxi_analytics")).args(args).stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{args:?}: {stderr}");
    };
    refused(&["--source", "kafka", "--topic", "trips"], "need --kafka-brokers");
    refused(&["--source", "kafka", "--kafka-brokers", "127.0.0.1:1"], "needs --topic");
    refused(&["--topic", "trips", "--kafka-brokers", "127.0.0.1:1"], "are for --source kafka");
    refused(&["--source", "kafka", "--kafka-brokers", "127.0.0.1:1", "--topic", "t", "--format", "tlc-csv"], "JSON");
    refused(&["--input", "-", "--checkpoint-dir", "/tmp/x"], "stdin");
    refused(&["--sink", "kafka", "--kafka-brokers", "127.0.0.1:1", "--report", "/tmp/r.html"], "drop one");
}
