//! The metrics endpoint's web page against a running job, in headless Chromium: it draws the
//! job graph with the planner's chains, its numbers change between two loads, the watermark
//! lag chart and the checkpoints tab show what the job did; a screenshot is taken (and kept
//! with `EDDY_WEB_VIEW_SCREENSHOT=path.png`, as docs/observability.md shows it). That the page
//! is self-contained is checked without a browser.

#[path = "common/chromium.rs"]
mod chromium;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use eddy::prelude::*;
use eddy_metrics_http::{MetricsServer, ServeMetrics};

/// How far behind the wall clock the job's event time runs.
const BEHIND_MS: i64 = 3_000;

/// The chains the planner makes of [`start_job`]'s job, first operator to last.
const CHAINS: [&str; 2] = ["Source: Generator -> throttle -> Timestamps/Watermarks", "sums -> Sink: ForEach"];

/// A job that runs until cancelled: a throttled generator whose event time is `BEHIND_MS`
/// behind the wall clock, summed per key (state in checkpoints every 300 ms).
fn start_job() -> (StreamEnvironment, MetricsServer, JobHandle) {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(300)));
    let server = env.serve_metrics("127.0.0.1:0").expect("a free port");
    env.generate(None, |i| i)
        .uid("numbers")
        .map(|x: u64| {
            std::thread::sleep(Duration::from_micros(200));
            x
        })
        .name("throttle")
        .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |_: &u64| {
            eddy::core::time::now_ms() - BEHIND_MS
        })
        .key_by(|x: &u64| x % 16)
        .reduce(|a, b| a.wrapping_add(b))
        .uid("sums")
        .name("sums")
        .for_each(|_: u64| {});
    let job = env.execute("web view").expect("the job starts");
    (env, server, job)
}

/// `GET path` over plain HTTP/1.0: status line and body.
fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).expect("the endpoint accepts");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a response has a head");
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

#[test]
fn the_page_is_self_contained() {
    let env = StreamEnvironment::new();
    let server = env.serve_metrics("127.0.0.1:0").unwrap();
    let (status, page) = http_get(server.local_addr(), "/");
    assert!(status.contains("200"), "{status}");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("/* STYLE */") && !page.contains("// SCRIPT"), "style and script are put in place");
    let without_namespace = page.replace("http://www.w3.org/2000/svg", "");
    for reference in ["http://", "https://", "<link", " src=", "@import", "url(http", "innerHTML"] {
        assert!(
            !without_namespace.contains(reference),
            "the page must not load anything (or write markup): {reference:?}"
        );
    }
}

/// The values of attribute `name` in `dom`, in document order, unescaped.
fn attributes(dom: &str, name: &str) -> Vec<String> {
    let open = format!(" {name}=\"");
    dom.split(&open)
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap_or(0)].to_string())
        .map(|v| v.replace("&gt;", ">").replace("&lt;", "<").replace("&quot;", "\"").replace("&amp;", "&"))
        .collect()
}

/// Records into the source chain as the page shows them.
fn records_in(dom: &str) -> u64 {
    attributes(dom, "data-records-in").first().and_then(|v| v.parse().ok()).expect("the page shows records in")
}

#[test]
fn the_page_draws_a_running_job_and_its_numbers_move() {
    let Some(browser) = chromium::find("the metrics web view") else { return };
    let (_env, server, job) = start_job();
    let work = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", server.local_addr());
    // Polls run in virtual time, so the page polls several times within the budget.
    let load = |hash: &str| {
        chromium::run(browser, work.path(), &format!("{url}{hash}"), &["--virtual-time-budget=4000", "--dump-dom"])
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let warm =
        |m: &eddy::runtime::JobMetrics| m.job.checkpoints.completed >= 2 && m.operators[0].records_in_per_s() > Some(0);
    while !warm(&job.metrics()) {
        assert!(Instant::now() < deadline, "no checkpoints or no rates: {:?}", job.metrics());
        std::thread::sleep(Duration::from_millis(50));
    }

    let first = load("");
    assert!(first.contains("<title>eddy: web view (RUNNING)</title>"), "the page did not poll: {}", error_of(&first));
    let polls: u64 = attributes(&first, "data-polls")[0].parse().unwrap();
    assert!(polls >= 2, "{polls} polls");
    let chains = attributes(&first, "data-name");
    assert_eq!(chains, CHAINS, "one box per chain, as the planner chains them");
    assert_eq!(first.matches("class=\"edge\"").count(), 1, "one edge between the chains");
    assert!(first.contains(">HASH</text>"), "the edge is labelled with its ship strategy");
    assert_eq!(first.matches(">parallelism 2</text>").count(), 2);
    let levels = attributes(&first, "data-backpressure");
    assert_eq!(levels.len(), 2);
    assert!(levels.iter().all(|l| ["OK", "LOW", "HIGH"].contains(&l.as_str())), "measured after two polls: {levels:?}");
    let rates: Vec<f64> = attributes(&first, "data-rate-in").iter().map(|r| r.parse().expect("a rate")).collect();
    assert!(rates[0] > 0.0, "the source reads: {rates:?}");
    // The sums' chain has a watermark about BEHIND_MS behind the wall clock, and a lag line.
    let lags: Vec<i64> = attributes(&first, "data-lag-ms").iter().map(|l| l.parse().unwrap()).collect();
    assert_eq!(lags.len(), 1, "only the sums have a watermark: {lags:?}");
    assert!((BEHIND_MS..BEHIND_MS + 5_000).contains(&lags[0]), "{lags:?}");
    assert_eq!(first.matches("class=\"lag-line\"").count(), 1);

    // A later load shows more records read.
    std::thread::sleep(Duration::from_millis(1200));
    let second = load("");
    assert!(records_in(&second) > records_in(&first), "{} then {}", records_in(&first), records_in(&second));

    // The history keeps the newest 20, so it is read before and after the page read it.
    let history = || -> Vec<u64> { job.metrics().job.checkpoints.history.iter().map(|c| c.id).collect() };
    let before = history();
    let checkpoints = load("#job=0&tab=checkpoints");
    let after = history();
    let shown: Vec<u64> = attributes(&checkpoints, "data-id").iter().map(|id| id.parse().unwrap()).collect();
    assert!(shown.len() >= 2, "{shown:?}");
    let known = |id: &u64| before.contains(id) || after.contains(id);
    assert!(shown.iter().all(known), "page {shown:?}, job {before:?} then {after:?}");
    assert!(shown.windows(2).all(|w| w[0] > w[1]), "newest first: {shown:?}");
    assert!(checkpoints.contains("sums: "), "the state per operator is shown");

    // A page of one flat colour compresses to almost nothing; the drawn view does not.
    let window = "--window-size=1000,660";
    let blank = format!("file://{}", chromium::blank_page(work.path()).display());
    let (_, _, blank) = chromium::screenshot(browser, work.path(), &blank, "blank.png", &[window]);
    let args = [window, "--virtual-time-budget=6000", "--hide-scrollbars"];
    let (width, height, drawn) = chromium::screenshot(browser, work.path(), &url, "web-view.png", &args);
    assert_eq!((width, height), (1000, 660));
    assert!(drawn > 5 * blank, "the screenshot looks empty: {drawn} bytes vs {blank} blank");
    if let Some(keep) = std::env::var_os("EDDY_WEB_VIEW_SCREENSHOT") {
        std::fs::copy(work.path().join("web-view.png"), keep).expect("screenshot copied");
    }
    job.cancel();
    let _ = job.wait();
}

/// The error the page shows, for an assertion's message.
fn error_of(dom: &str) -> &str {
    let Some(start) = dom.find("id=\"error\"") else { return "no error shown" };
    &dom[start..(start + 300).min(dom.len())]
}
