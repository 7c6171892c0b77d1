//! Headless Chromium for the tests that check a page renders (the taxi report, the metrics
//! endpoint's web view): find the browser, run it on a page, read what it drew.
//!
//! CI installs the browser (`scripts/install-chromium.sh`) and must check rendering, so there
//! a missing browser fails the test; locally the check is skipped with a loud note.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
/// A cold headless start takes a second or two; this only bounds a hung browser.
const TIMEOUT: Duration = Duration::from_secs(90);

/// The browser, or `None` (after a note) where it is not installed; `check` says what the
/// caller would have checked with it.
pub fn find(check: &str) -> Option<&'static Path> {
    let path = Path::new(CHROMIUM);
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{CHROMIUM} is missing; CI must install it (scripts/install-chromium.sh) to check {check}");
    }
    eprintln!("note: {CHROMIUM} not found, skipping the check of {check} (scripts/install-chromium.sh)");
    None
}

/// Runs headless Chromium on the `page` URL with `args` (`--window-size=…`, `--dump-dom`,
/// `--screenshot=…`) in a fresh profile under `work`, returning its stdout. Panics, with its
/// stderr, on failure or timeout.
pub fn run(browser: &Path, work: &Path, page: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir_in(work).expect("profile dir");
    let (stdout_path, stderr_path) = (profile.path().join("stdout"), profile.path().join("stderr"));
    // Output goes to files rather than pipes so a chatty browser cannot block on a full pipe
    // while we wait for it.
    let mut child = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.path().join("profile").display()))
        .args(args)
        .arg(page)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("stdout file"))
        .stderr(File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("chromium waitable") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} took over {TIMEOUT:?}: {}", tail(&stderr_path));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "chromium {args:?} failed ({status}): {}", tail(&stderr_path));
    std::fs::read_to_string(&stdout_path).expect("chromium output")
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text[text.len().saturating_sub(2000)..].to_string()
}

/// Width, height and compressed pixel bytes of a PNG, read from its chunks.
pub fn png_summary(png: &[u8]) -> (u32, u32, usize) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be32 = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    let (mut at, mut idat) = (8, 0);
    let (mut width, mut height) = (0, 0);
    while at + 8 <= png.len() {
        let len = be32(at) as usize;
        match &png[at + 4..at + 8] {
            b"IHDR" => (width, height) = (be32(at + 8), be32(at + 12)),
            b"IDAT" => idat += len,
            _ => {}
        }
        at += 12 + len; // length, type, data, CRC
    }
    (width, height, idat)
}

/// Screenshots `page` (with `args`, e.g. the window size) into `work/name`; returns the PNG's
/// [`png_summary`].
pub fn screenshot(browser: &Path, work: &Path, page: &str, name: &str, args: &[&str]) -> (u32, u32, usize) {
    let png = work.join(name);
    let mut args = args.to_vec();
    let shot = format!("--screenshot={}", png.display());
    args.push(&shot);
    run(browser, work, page, &args);
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()));
    png_summary(&bytes)
}

/// A page of one flat colour, whose screenshot compresses to almost nothing: what a drawn
/// page's screenshot is compared with.
pub fn blank_page(dir: &Path) -> PathBuf {
    let path = dir.join("blank.html");
    std::fs::write(&path, "<!DOCTYPE html><html><body></body></html>").expect("blank page written");
    path
}
