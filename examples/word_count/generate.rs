//! A deterministic word count input: `<ts_ms>\t<text>` lines, like the peers' `gen_data.py`
//! (Zipf(1.1) words from a 10,000-word vocabulary, mixed case, punctuation), so benchmarks and
//! tests have realistic input without any download.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

const VOCABULARY: usize = 10_000;
const ZIPF_S: f64 = 1.1;
const SEPARATORS: [&str; 11] = [" ", " ", " ", " ", " ", ", ", ". ", "; ", "! ", " - ", "' "];

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Stop after the line that reaches this many bytes.
    pub target_bytes: u64,
    /// Seed of the random generator: the same seed gives the same file.
    pub seed: u64,
    /// Line `i` gets timestamp `start_ms + i`, minus up to this much random disorder.
    pub disorder_ms: u64,
    /// Timestamp of the first line.
    pub start_ms: i64,
}

/// Writes the input to `path`; returns (lines, bytes).
pub fn generate(path: &Path, spec: Spec) -> std::io::Result<(u64, u64)> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let vocabulary: Vec<String> =
        (0..VOCABULARY).map(|_| (0..rng.usize(2..=10)).map(|_| rng.lowercase()).collect()).collect();
    let cdf = zipf_cdf(VOCABULARY, ZIPF_S);
    let (mut lines, mut bytes) = (0u64, 0u64);
    let mut line = String::new();
    while bytes < spec.target_bytes {
        line.clear();
        let disorder = if spec.disorder_ms > 0 { rng.u64(0..=spec.disorder_ms) as i64 } else { 0 };
        line.push_str(&(spec.start_ms + lines as i64 - disorder).to_string());
        line.push('\t');
        for i in 0..rng.usize(5..=15) {
            if i > 0 {
                line.push_str(SEPARATORS[rng.usize(..SEPARATORS.len())]);
            }
            let word = &vocabulary[cdf.partition_point(|&p| p < rng.f64()).min(VOCABULARY - 1)];
            match rng.u8(..100) {
                0..=79 => line.push_str(word),
                80..=94 => {
                    line.push(word.as_bytes()[0].to_ascii_uppercase() as char);
                    line.push_str(&word[1..]);
                }
                _ => line.push_str(&word.to_ascii_uppercase()),
            }
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
        lines += 1;
        bytes += line.len() as u64;
    }
    out.flush()?;
    Ok((lines, bytes))
}

/// Cumulative probabilities of ranks 1..=n under Zipf(s).
fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let weights: Vec<f64> = (1..=n).map(|rank| (rank as f64).powf(-s)).collect();
    let total: f64 = weights.iter().sum();
    weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w / total;
            Some(*acc)
        })
        .collect()
}
