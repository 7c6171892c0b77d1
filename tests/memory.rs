//! Peak memory of word count on a long input with checkpoints: it must not grow with the
//! input. The bound: 256 MiB, about twice what p=1 needed at any input length (130–163 MB
//! measured at 300 MB and 1 GB of input with checkpoints, before the examples' allocator was
//! set up to return freed memory, see `examples/common/allocator.rs`; 56 MiB at 500 MB since),
//! as p=2 runs two of everything.
//!
//! At p=2 it used to grow with the input (293 MiB at 300 MB, 447 MiB at 500 MB, 1.7 GB at
//! 1 GB): each source subtask read one half of the file, whose event time starts elsewhere,
//! and the keyed window stage held every window of the half that ran ahead until the other
//! caught up, since the watermark is the minimum over both. The file is now read in small
//! splits dealt round robin, and the example aligns its sources' watermarks (a subtask more
//! than `--max-drift-ms` ahead of the other pauses), so both stay close in event time. The
//! p=1 test is the control that shows the measurement itself is sound. Both need an
//! optimised build and a long input, so they run from `scripts/memory-check.sh`, not
//! `cargo test`:
//!
//! ```text
//! scripts/memory-check.sh                       # 500 MB of input
//! MEMORY_TEST_BYTES=1e9 scripts/memory-check.sh
//! ```

#[path = "common/example_binary.rs"]
mod example_binary;

#[path = "../examples/word_count/generate.rs"]
mod generate;
#[path = "common/peak_rss.rs"]
mod peak_rss;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;

/// The stated bound on peak RSS, whatever the input length.
const BOUND: u64 = 256 << 20;

/// Words in a timestamped input, counted plainly: the tokens after each line's tab.
fn words_in(path: &Path) -> u64 {
    let mut words = 0;
    for line in BufReader::new(std::fs::File::open(path).unwrap()).lines() {
        let line = line.unwrap();
        let Some((_, text)) = line.split_once('\t') else { continue };
        words += text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|t| !t.is_empty()).count();
    }
    words as u64
}

/// Runs word count on a generated input at `parallelism` with checkpoints every 300 ms;
/// checks that it counted every word and returns its peak RSS in bytes.
fn peak_rss_of_word_count(parallelism: &str) -> u64 {
    if cfg!(debug_assertions) {
        panic!("run this with an optimised build: scripts/memory-check.sh");
    }
    let bytes: f64 = std::env::var("MEMORY_TEST_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(5e8);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("words.tsv");
    let spec = generate::Spec { target_bytes: bytes as u64, seed: 3, disorder_ms: 0, start_ms: 1_700_000_000_000 };
    generate::generate(&input, spec).unwrap();
    let output = dir.path().join("counts.csv");
    let mut command = Command::new(example_binary::path("word_count"));
    command.args(["--input", input.to_str().unwrap(), "--timestamped", "--parallelism", parallelism]);
    command.args(["--checkpoint-interval-ms", "300", "--checkpoint-dir"]).arg(dir.path().join("checkpoints"));
    command.arg("--output").arg(&output);
    let (out, peak) = peak_rss::run_with_peak_rss(command);
    assert!(out.status.success(), "word count failed: {}", String::from_utf8_lossy(&out.stderr));
    let counted: u64 = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|row| row.rsplit(',').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(counted, words_in(&input), "every word counted once");
    eprintln!("word count, p={parallelism}, {} MB with checkpoints: peak RSS {} MiB", bytes / 1e6, peak >> 20);
    peak
}

#[test]
#[ignore = "needs an optimised build and a long input: scripts/memory-check.sh"]
fn word_count_at_parallelism_1_with_checkpoints_stays_within_the_bound() {
    let peak = peak_rss_of_word_count("1");
    assert!(peak <= BOUND, "peak RSS {} MiB, over the bound of {} MiB", peak >> 20, BOUND >> 20);
}

#[test]
#[ignore = "needs an optimised build and a long input: scripts/memory-check.sh"]
fn word_count_at_parallelism_2_with_checkpoints_stays_within_the_bound() {
    let peak = peak_rss_of_word_count("2");
    assert!(peak <= BOUND, "peak RSS {} MiB, over the bound of {} MiB", peak >> 20, BOUND >> 20);
}

/// Watermark alignment's target: p=2 holds little more than p=1 on the same input (it runs
/// two source and two window subtasks, so not the same).
#[test]
#[ignore = "needs an optimised build and a long input: scripts/memory-check.sh"]
fn word_count_at_parallelism_2_needs_at_most_one_and_a_half_times_parallelism_1() {
    let (one, two) = (peak_rss_of_word_count("1"), peak_rss_of_word_count("2"));
    assert!(two * 2 <= one * 3, "p=2 peak RSS {} MiB is over 1.5 times p=1's {} MiB", two >> 20, one >> 20);
}
