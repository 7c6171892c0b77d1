//! The word count spread over several processes (`--application-id`, eddy-cluster), run as a
//! user would: example binaries on loopback, a real broker (noida-db), the checkpoint store a
//! shared directory. Whatever happens to the processes (three of them, one killed with
//! SIGKILL, one added, two stopped), the committed output equals the counts a sequential
//! model computes from the input, and the one-process run's.

#[path = "common/example_binary.rs"]
mod example_binary;

#[path = "../crates/eddy-kafka/tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{create_topic, produce_to, read_committed, Service};

/// Input partitions.
const PARTITIONS: i32 = 12;
/// Window length of the runs (the example's default).
const WINDOW_MS: i64 = 5000;

/// The input: per partition, `lines` lines `<ms>\t<words>` in event-time order (so nothing is
/// late), drawn from a seeded generator over a small vocabulary.
fn input(lines: usize) -> Vec<Vec<String>> {
    let mut rng = fastrand::Rng::with_seed(16);
    (0..PARTITIONS)
        .map(|p| {
            let mut time = 1_767_225_600_000 + p as i64 * 37;
            (0..lines)
                .map(|_| {
                    time += rng.i64(0..400);
                    let words: Vec<String> = (0..rng.usize(1..8)).map(|_| format!("w{}", rng.u32(0..300))).collect();
                    format!("{time}\t{}", words.join(" "))
                })
                .collect()
        })
        .collect()
}

/// The sequential model: `start,end,word,count` per word and 5 s window.
fn model(input: &[Vec<String>]) -> BTreeSet<String> {
    let mut counts: BTreeMap<(i64, String), u64> = BTreeMap::new();
    for line in input.iter().flatten() {
        let (time, text) = line.split_once('\t').unwrap();
        let time: i64 = time.parse().unwrap();
        let start = time - time.rem_euclid(WINDOW_MS);
        for word in text.split(' ') {
            *counts.entry((start, word.to_string())).or_default() += 1;
        }
    }
    counts.into_iter().map(|((start, word), n)| format!("{start},{},{word},{n}", start + WINDOW_MS)).collect()
}

/// A broker with the input in topic `lines` and an empty `counts`.
fn setup(lines: usize) -> Option<(Service, BTreeSet<String>)> {
    let kafka = Service::kafka()?;
    let brokers = kafka.address();
    create_topic(&brokers, "lines", PARTITIONS);
    create_topic(&brokers, "counts", 3);
    let input = input(lines);
    for (p, lines) in input.iter().enumerate() {
        let values: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
        produce_to(&brokers, "lines", p as i32, &values);
    }
    Some((kafka, model(&input)))
}

/// Starts one process of the distributed word count.
fn start(brokers: &str, store: &Path, extra: &[&str]) -> Child {
    let url = format!("file://{}", store.display());
    Command::new(example_binary::path("word_count"))
        .args(["--kafka-brokers", brokers, "--input-topic", "lines", "--output-topic", "counts"])
        .args(["--application-id", "wc", "--checkpoint-store", &url, "--timestamped", "--bounded"])
        .args(["--checkpoint-interval-ms", "300"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a process to exit (at most `limit`) and checks it exited 0.
fn finish(child: Child, limit: Duration) {
    let pid = child.id();
    let deadline = Instant::now() + limit;
    let mut child = child;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(status.success(), "process {pid} failed ({status}): {stderr}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("process {pid} did not finish in {limit:?}: {}", String::from_utf8_lossy(&output.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the output topic holds (read_committed), checking nothing is there twice.
fn committed_rows(brokers: &str, expected: usize) -> BTreeSet<String> {
    let mut rows = BTreeSet::new();
    for row in read_committed(brokers, "counts", expected + 1, Duration::from_secs(3)) {
        assert!(rows.insert(row.clone()), "{row} committed twice");
    }
    rows
}

fn assert_same(actual: &BTreeSet<String>, expected: &BTreeSet<String>) {
    let missing: Vec<_> = expected.difference(actual).take(5).collect();
    let extra: Vec<_> = actual.difference(expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} rows, {} expected; missing {missing:?}, extra {extra:?}",
        actual.len(),
        expected.len()
    );
}

#[test]
fn three_processes_equal_the_model_and_the_one_process_run() {
    let Some((kafka, expected)) = setup(300) else { return };
    let brokers = kafka.address();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let processes: Vec<Child> = (0..3).map(|_| start(&brokers, &store, &[])).collect();
    for process in processes {
        finish(process, Duration::from_secs(120));
    }
    let rows = committed_rows(&brokers, expected.len());
    eprintln!("{} rows", rows.len());
    assert_same(&rows, &expected);

    // The one-process run (eddy's own runtime, exactly-once into its own topic) agrees.
    create_topic(&brokers, "single", 1);
    let checkpoints = dir.path().join("chk");
    let out = Command::new(example_binary::path("word_count"))
        .args(["--kafka-brokers", &brokers, "--input-topic", "lines", "--output-topic", "single", "--timestamped"])
        .args(["--bounded", "--checkpoint-dir", checkpoints.to_str().unwrap(), "--parallelism", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let single: BTreeSet<String> =
        read_committed(&brokers, "single", expected.len() + 1, Duration::from_secs(3)).into_iter().collect();
    assert_same(&single, &expected);
}
