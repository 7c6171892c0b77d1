//! Runs a program to its end while sampling its peak resident memory from `/proc`, so a test
//! can bound what a binary (an example, say) needs. Included with `#[path]`.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The peak resident set size (`VmHWM`) of process `pid` so far, in bytes, if it can be read.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Runs `command` to its end and returns its output and its peak RSS in bytes. `VmHWM` is a
/// high-water mark, so sampling it every few milliseconds misses at most a peak reached in
/// the process's last moments. Panics where `/proc` cannot be read (not Linux).
pub fn run_with_peak_rss(mut command: Command) -> (Output, u64) {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the program");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).map(|_| bytes)
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stderr.read_to_end(&mut bytes).map(|_| bytes)
    });
    let mut peak = None;
    let status = loop {
        if let Some(rss) = peak_rss(child.id()) {
            peak = Some(peak.map_or(rss, |p: u64| p.max(rss)));
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = Output { status, stdout: out.join().unwrap().unwrap(), stderr: err.join().unwrap().unwrap() };
    (output, peak.expect("no /proc/<pid>/status to read peak memory from (Linux only)"))
}
