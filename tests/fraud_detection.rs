//! The fraud-detection example (keyed state and timers), run as a user would, against a
//! sequential model of the rule: per account, a small transaction followed, as the very
//! next transaction of that account and within a minute, by a large one.

#[path = "common/example_binary.rs"]
mod example_binary;

#[allow(dead_code)] // The test uses the generator and the thresholds, not the job itself.
#[path = "../examples/fraud_detection/job.rs"]
mod job;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

fn binary() -> PathBuf {
    example_binary::path("fraud_detection")
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

/// Per account: its alert count and the timestamps of its small transactions, from the model.
fn model_accounts(transactions: &[job::Transaction]) -> HashMap<u32, (u64, Vec<i64>)> {
    let mut accounts: HashMap<u32, (u64, Vec<i64>)> = HashMap::new();
    for line in model(transactions) {
        let account: u32 = line.split(',').next().unwrap().parse().unwrap();
        accounts.entry(account).or_default().0 += 1;
    }
    for tx in transactions.iter().filter(|tx| tx.amount < 1.0) {
        accounts.entry(tx.account).or_default().1.push(tx.timestamp);
    }
    accounts
}

/// `--serve`: while transactions stream in, every account's answer is a state the model says
/// it passes through (an alert count that only grows towards its total, a pending small
/// transaction that is one of its small transactions); once all are in, the counts are the
/// model's; SIGTERM ends the input and the printed alerts are the model's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_served_from_the_running_job_as_the_model_says() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let (count, accounts, seed) = (20_000, 40, 5);
    let transactions = job::transactions(seed, count, accounts);
    let want = model_accounts(&transactions);
    let mut child = Command::new(binary())
        .args(["--serve", "127.0.0.1:0", "--transactions", "20000", "--accounts", "40", "--seed", "5"])
        .args(["--rate", "10000", "--parallelism", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected {line:?}")).to_string();
    let mut stdout = child.stdout.take().unwrap();
    let alerts = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });

    let client = reqwest::Client::new();
    let mut seen = vec![0u64; accounts as usize];
    let (mut reads, mut settled) = (0, false);
    let start = Instant::now();
    while !settled {
        assert!(start.elapsed() < Duration::from_secs(60), "the counts never reached the model's: {seen:?}");
        settled = true;
        for account in 0..accounts {
            let response = client.get(format!("http://{addr}/accounts/{account}")).send().await.unwrap();
            assert_eq!(response.status(), 200);
            let answer: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            reads += 1;
            let (total, smalls) = want.get(&account).cloned().unwrap_or_default();
            let alerts = answer["alerts"].as_u64().unwrap();
            assert!(alerts <= total && alerts >= seen[account as usize], "account {account}: {answer}");
            seen[account as usize] = alerts;
            if let Some(pending) = answer["pending_small_at"].as_i64() {
                assert!(smalls.contains(&pending), "account {account}: {pending} is none of its small transactions");
            }
            settled &= alerts == total;
        }
    }
    assert!(reads > accounts as usize, "the accounts were read while the job ran ({reads} reads)");
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "exit {status}: {rest}");
    let mut printed: Vec<String> = alerts.join().unwrap().lines().map(String::from).collect();
    printed.sort();
    assert_eq!(printed, model(&transactions));
}
