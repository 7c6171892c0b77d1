//! The word_count example, run as a user would (its binary and flags), against an
//! independent computation of the expected counts.

#[path = "common/example_binary.rs"]
mod example_binary;

#[path = "../examples/word_count/generate.rs"]
mod generate;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The example binary, which a plain `cargo test` builds next to the tests (a target filter
/// such as `--test word_count` or `--all-targets` does not build it as a plain binary).
fn word_count_binary() -> PathBuf {
    example_binary::path("word_count")
}

/// Counts per (window start, word), computed plainly: split on anything that is not an
/// ASCII letter, digit or `_`, lowercase, bucket by `ts - ts mod window`.
fn expected(input: &str, window_ms: i64) -> BTreeMap<(i64, String), u64> {
    let mut counts = BTreeMap::new();
    for line in input.lines() {
        let Some((ts, text)) = line.split_once('\t') else { continue };
        let Ok(ts) = ts.parse::<i64>() else { continue };
        let start = ts - ts.rem_euclid(window_ms);
        for token in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|t| !t.is_empty()) {
            *counts.entry((start, token.to_ascii_lowercase())).or_insert(0) += 1;
        }
    }
    counts
}

/// Parses `start,end,word,count` lines, checking every window has the expected length.
fn parse_output(output: &str, window_ms: i64) -> BTreeMap<(i64, String), u64> {
    let mut counts = BTreeMap::new();
    for line in output.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 4, "bad output line {line:?}");
        let (start, end): (i64, i64) = (fields[0].parse().unwrap(), fields[1].parse().unwrap());
        assert_eq!(end - start, window_ms, "window bounds in {line:?}");
        let previous = counts.insert((start, fields[2].to_string()), fields[3].parse().unwrap());
        assert!(previous.is_none(), "duplicate row for {line:?}");
    }
    counts
}

fn generated_input(dir: &Path, disorder_ms: u64) -> (PathBuf, String) {
    let path = dir.join("input.tsv");
    let spec = generate::Spec { target_bytes: 400_000, seed: 7, disorder_ms, start_ms: 1_700_000_000_000 };
    generate::generate(&path, spec).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

fn run(args: &[&str]) -> (String, String) {
    let out = Command::new(word_count_binary()).args(args).output().expect("run word_count");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "word_count {args:?} failed: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

#[test]
fn timestamped_input_matches_independent_counts_at_parallelism_1_2_3() {
    let dir = tempfile::tempdir().unwrap();
    let (input, text) = generated_input(dir.path(), 0);
    let want = expected(&text, 5000);
    assert!(want.len() > 1000, "the input should span many windows and words");
    for parallelism in ["1", "2", "3"] {
        let output = dir.path().join(format!("out-{parallelism}.csv"));
        let args = ["--input", input.to_str().unwrap(), "--timestamped", "--parallelism", parallelism];
        run(&[&args[..], &["--output", output.to_str().unwrap()]].concat());
        let got = parse_output(&std::fs::read_to_string(&output).unwrap(), 5000);
        assert_eq!(got, want, "parallelism {parallelism}");
    }
}

#[test]
fn out_of_order_input_within_the_bound_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (input, text) = generated_input(dir.path(), 3000);
    let args = ["--input", input.to_str().unwrap(), "--timestamped", "--window-ms", "2000"];
    let (stdout, stderr) = run(&[&args[..], &["--out-of-orderness-ms", "3000", "--parallelism", "2"]].concat());
    assert_eq!(parse_output(&stdout, 2000), expected(&text, 2000));
    assert!(stderr.contains("0 late words dropped"), "{stderr}");
}

#[test]
fn stdin_in_processing_time_counts_every_word_once() {
    let text = "The cat; the DOG.\nno_tab here 42\n\ncat-cat\n";
    let mut child = Command::new(word_count_binary())
        .args(["--input", "-", "--parallelism", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    // Processing-time windows depend on the clock, so compare totals per word.
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for ((_, word), n) in parse_output(&String::from_utf8(out.stdout).unwrap(), 5000) {
        *totals.entry(word).or_insert(0) += n;
    }
    let want = [("42", 1), ("cat", 3), ("dog", 1), ("here", 1), ("no_tab", 1), ("the", 2)];
    assert_eq!(totals, want.iter().map(|(w, n)| (w.to_string(), *n)).collect());
}

#[test]
fn malformed_timestamped_lines_are_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.tsv");
    std::fs::write(&input, "1000\ta b a\nnot a timestamp\n2000\tb\n").unwrap();
    let (stdout, stderr) = run(&["--input", input.to_str().unwrap(), "--timestamped"]);
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["0,5000,a,2", "0,5000,b,2"]);
    assert!(stderr.contains("1 malformed lines skipped"), "{stderr}");
}

#[test]
fn bundled_corpus_runs_with_no_arguments() {
    let (stdout, _) = run(&[]);
    let counts = parse_output(&stdout, 5000);
    let corpus = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/corpus.tsv")).unwrap();
    assert_eq!(counts, expected(&corpus, 5000));
}
