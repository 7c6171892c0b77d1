//! The fraud-detection example (keyed state and timers), run as a user would, against a
//! sequential model of the rule: per account, a small transaction followed, as the very
//! next transaction of that account and within a minute, by a large one.

#[allow(dead_code)] // The test uses the generator and the thresholds, not the job itself.
#[path = "../examples/fraud_detection/job.rs"]
mod job;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

fn binary() -> PathBuf {
    let examples = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples");
    let binary = examples.join("fraud_detection");
    assert!(binary.exists(), "{} is missing: run plain `cargo test`, which builds the examples", binary.display());
    binary
}

/// Alerts as `account,small_at,large_at,amount` lines, sorted.
fn model(transactions: &[job::Transaction]) -> Vec<String> {
    let mut last_small: HashMap<u32, i64> = HashMap::new();
    let mut alerts = Vec::new();
    for tx in transactions {
        if let Some(small_at) = last_small.remove(&tx.account) {
            if tx.amount > 500.0 && tx.timestamp - small_at <= 60_000 {
                alerts.push(format!("{},{},{},{:.2}", tx.account, small_at, tx.timestamp, tx.amount));
            }
        }
        if tx.amount < 1.0 {
            last_small.insert(tx.account, tx.timestamp);
        }
    }
    alerts.sort();
    alerts
}

fn run(args: &[&str]) -> Vec<String> {
    let out = Command::new(binary()).args(args).output().unwrap();
    assert!(out.status.success(), "fraud_detection {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let mut lines: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect();
    lines.sort();
    lines
}

#[test]
fn alerts_equal_the_sequential_model_at_any_parallelism_and_on_both_state_backends() {
    let (count, accounts, seed) = (30_000, 300, 11);
    let expected = model(&job::transactions(seed, count, accounts));
    assert!(expected.len() > 20, "the input should raise alerts");
    let common = ["--transactions", "30000", "--accounts", "300", "--seed", "11"];
    for parallelism in ["1", "2", "3"] {
        assert_eq!(run(&[&common[..], &["--parallelism", parallelism]].concat()), expected, "heap, p={parallelism}");
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    assert_eq!(run(&[&common[..], &["--parallelism", "2", "--state-dir", state]].concat()), expected, "sled");
}
