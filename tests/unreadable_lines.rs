//! Lines a text source cannot pass on (too long, not UTF-8) become dead letters exactly
//! once, also across a failure and a restore from a checkpoint: the source task sends what a
//! poll rejected before it handles the barrier that records a position past it.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eddy::prelude::*;

/// The file's line `n` (from 1): every 97th is not UTF-8, every 131st is longer than the
/// 64-byte limit, the rest are `line <n>`.
fn line(n: usize) -> Vec<u8> {
    if n % 97 == 0 {
        format!("line {n} caf").into_bytes().into_iter().chain([0xe9]).collect()
    } else if n % 131 == 0 {
        format!("line {n} {}", "long ".repeat(20)).into_bytes()
    } else {
        format!("line {n}").into_bytes()
    }
}

const LINES: usize = 3_000;

/// Fails the job once, when the first attempt reaches this line.
const FAIL_AT: &str = "line 2500";
static FAILED: AtomicBool = AtomicBool::new(false);

#[test]
fn unreadable_lines_are_dead_lettered_exactly_once_across_a_restore() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let mut offsets = Vec::new();
    let mut offset = 0;
    for n in 1..=LINES {
        let bytes = line(n);
        offsets.push(offset);
        offset += bytes.len() + 1;
        file.write_all(&bytes).unwrap();
        file.write_all(b"\n").unwrap();
    }
    let env = StreamEnvironment::new();
    env.set_parallelism(2).set_max_line_length(64);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)));
    env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 1, delay: Duration::from_millis(10) });
    let lines = env.read_text_file(file.path()).uid("lines");
    let passed = lines
        .map(|line: String| {
            // Slow enough for several checkpoints before the failure.
            std::thread::sleep(Duration::from_micros(200));
            if line == FAIL_AT && !FAILED.swap(true, Ordering::SeqCst) {
                panic!("failing once at {line}");
            }
            line
        })
        .collect();
    let dead = lines.dead_letters::<RawRecord>().collect();
    let result = env.execute("unreadable lines").unwrap().wait().unwrap();
    assert_eq!(result.restarts, 1, "the job should have failed once and restored");
    assert!(result.checkpoints >= 2, "{} checkpoints", result.checkpoints);

    let path = file.path().display().to_string();
    let (mut want_lines, mut want_dead) = (Vec::new(), Vec::new());
    for n in 1..=LINES {
        let position = format!("line {n} (byte {})", offsets[n - 1]);
        match line(n) {
            bytes if n % 97 == 0 => want_dead.push((position, bytes, "the line is not UTF-8".to_string())),
            bytes if n % 131 == 0 => {
                let reason = format!("the line is {} bytes long", bytes.len());
                want_dead.push((position, bytes, reason));
            }
            _ => want_lines.push(format!("line {n}")),
        }
    }
    let mut got_lines = passed.take();
    got_lines.sort();
    want_lines.sort();
    assert_eq!(got_lines, want_lines, "every readable line exactly once");
    let mut got_dead = dead.take();
    got_dead.sort_by(|a, b| a.input.position.cmp(&b.input.position));
    want_dead.sort();
    assert_eq!(got_dead.len(), want_dead.len(), "every unreadable line exactly once: {got_dead:#?}");
    for (got, (position, payload, reason)) in got_dead.iter().zip(&want_dead) {
        assert_eq!((&got.input.split, &got.input.position), (&path, position));
        assert_eq!(&got.input.payload, payload, "the line's bytes as read (these are under 256 bytes)");
        assert!(got.error.starts_with(reason), "{:?} does not start with {reason:?}", got.error);
    }
    // The metric counts the letters sent before the failure and again after the restore.
    assert!(result.metrics.total("Source: TextFile", "dead_letters") >= want_dead.len() as u64);
}
