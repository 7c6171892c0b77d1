//! Elasticsearch sink throughput: documents/s into the ES 8 emulation (noida-db on loopback,
//! started by the bench), at parallelism 1 and 2, next to a plain loop that posts the same
//! bulk bodies with no job around it (the emulation's own ceiling), and where the CPU went.
//!
//! ```text
//! EDDY_SERVICES_DIR=/work/services cargo bench --bench elasticsearch            # 200 k documents a run
//! ES_DOCS=1e6 ES_PARALLELISM=1,2,4 ES_IN_FLIGHT=1,4 cargo bench --bench elasticsearch
//! ```

#[path = "common/machine.rs"]
mod machine;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use eddy::prelude::*;
use eddy::runtime::io_runtime;
use eddy_elasticsearch::{Action, ElasticsearchSink, ElasticsearchSinkExt};
use eddy_test_services::Service;
use serde::Serialize;

/// A small result document, like the taxi job's.
#[derive(Debug, Clone, Serialize)]
struct Doc {
    location: String,
    count: u64,
    timestamp: i64,
}

fn doc(i: u64) -> Doc {
    Doc { location: format!("dr5ru{:02x}", i % 251), count: i % 97, timestamp: 1_451_606_400_000 + i as i64 * 1_000 }
}

const BATCH: usize = 1_000;

fn main() {
    let docs = std::env::var("ES_DOCS").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(2e5) as u64;
    let list = |name: &str, default: &str| -> Vec<usize> {
        let text = std::env::var(name).unwrap_or_else(|_| default.into());
        text.split(',').map(|p| p.trim().parse().expect("a number")).collect()
    };
    let (parallelisms, in_flights) = (list("ES_PARALLELISM", "1,2"), list("ES_IN_FLIGHT", "1,2"));
    println!("# Elasticsearch sink, {docs} documents a run, bulk of {BATCH}, {}", machine::machine());
    println!("| run | parallelism | in flight | wall s | docs/s | vs plain loop | eddy CPU s | emulation CPU s | docs per emulation CPU s |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut plain = None;
    let mut row = |name: &str, p: &str, f: &str, (secs, own, theirs): (f64, f64, f64)| {
        let baseline = *plain.get_or_insert(secs);
        println!(
            "| {name} | {p} | {f} | {secs:.2} | {:.0} | {:.2} | {own:.2} | {theirs:.2} | {:.0} |",
            docs as f64 / secs,
            baseline / secs,
            docs as f64 / theirs
        );
    };
    row("plain loop", "-", "1", on_fresh_server(|url| plain_loop(url, "plain", docs)));
    for &p in &parallelisms {
        for &f in &in_flights {
            let index = format!("docs-p{p}-f{f}");
            let figures = on_fresh_server(|url| {
                job(url, &index, docs, p, f);
                let stored = count(url, &index);
                assert_eq!(stored, docs, "{index}: {stored} documents stored");
            });
            row("eddy job", &p.to_string(), &f.to_string(), figures);
        }
    }
}

/// Runs `run` against a new emulation (so no run pays for documents an earlier one left):
/// wall seconds, this process's CPU seconds, the emulation's CPU seconds.
fn on_fresh_server(run: impl FnOnce(&str)) -> (f64, f64, f64) {
    let Some(es) = Service::elasticsearch() else {
        eprintln!("noida-db is not installed: run scripts/install-services.sh (or set EDDY_SERVICES_DIR)");
        std::process::exit(1);
    };
    let server = ServerCpu::find(es.dir());
    measure(&server, || run(&es.url()))
}

/// Wall seconds of `run`, with this process's and the server's CPU seconds meanwhile.
fn measure(server: &ServerCpu, run: impl FnOnce()) -> (f64, f64, f64) {
    let (own, theirs) = (cpu_seconds("/proc/self/stat"), server.seconds());
    let start = Instant::now();
    run();
    let secs = start.elapsed().as_secs_f64();
    (secs, cpu_seconds("/proc/self/stat") - own, server.seconds() - theirs)
}

/// `docs` documents through a job: generator → sink at parallelism `p`.
fn job(url: &str, index: &str, docs: u64, p: usize, in_flight: usize) {
    let index = index.to_string();
    let sink = ElasticsearchSink::builder(url, move |i: &u64| {
        Action::index(index.clone(), &doc(*i)).map(|a| a.id(i.to_string()))
    })
    .bulk_flush_max_actions(BATCH)
    .max_in_flight_requests(in_flight)
    .build()
    .expect("sink settings");
    let env = StreamEnvironment::new();
    env.set_parallelism(p);
    let failed = env.generate(Some(docs), |i| i).sink_to_elasticsearch(sink).collect();
    env.execute("es bench").unwrap().wait().unwrap();
    assert!(failed.take().is_empty());
}

/// The same documents in bulk bodies of `BATCH`, posted one after another by one thread.
fn plain_loop(url: &str, index: &str, docs: u64) {
    let client = reqwest::Client::new();
    let bulk = format!("{url}/_bulk");
    let cancel = AtomicBool::new(false);
    for start in (0..docs).step_by(BATCH) {
        let mut body = Vec::new();
        for i in start..(start + BATCH as u64).min(docs) {
            body.extend_from_slice(format!("{{\"index\":{{\"_index\":\"{index}\",\"_id\":\"{i}\"}}}}\n").as_bytes());
            serde_json::to_writer(&mut body, &doc(i)).unwrap();
            body.push(b'\n');
        }
        let request = client.post(&bulk).header("content-type", "application/x-ndjson").body(body).send();
        let answer = io_runtime::wait(io_runtime::spawn(async move { request.await?.bytes().await }), &cancel);
        let body = answer.unwrap().unwrap().expect("a bulk answer");
        assert!(body.starts_with(b"{") && !body.windows(13).any(|w| w == b"\"errors\":true"), "bulk failed");
    }
}

fn count(url: &str, index: &str) -> u64 {
    let cancel = AtomicBool::new(false);
    let client = reqwest::Client::new();
    let refresh = client.post(format!("{url}/{index}/_refresh")).send();
    let count = client.get(format!("{url}/{index}/_count")).send();
    let body = io_runtime::wait(
        io_runtime::spawn(async move {
            refresh.await?;
            count.await?.text().await
        }),
        &cancel,
    );
    let body = body.unwrap().unwrap().expect("a count");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["count"].as_u64().unwrap()
}

/// CPU seconds (user + system) from a `/proc/<pid>/stat`, or 0.
fn cpu_seconds(stat: impl AsRef<Path>) -> f64 {
    let text = std::fs::read_to_string(stat).unwrap_or_default();
    let fields: Vec<&str> = text.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0 // utime, stime (fields 14, 15) in clock ticks of 1/100 s
}

/// The emulation's process, found by its data directory on its command line.
struct ServerCpu(Option<std::path::PathBuf>);

impl ServerCpu {
    fn find(dir: &Path) -> ServerCpu {
        let wanted = dir.to_string_lossy().into_owned();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmdline).contains(&wanted) {
                    return ServerCpu(Some(entry.path().join("stat")));
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("the emulation's process was not found: its CPU is not shown");
        ServerCpu(None)
    }

    fn seconds(&self) -> f64 {
        self.0.as_ref().map_or(0.0, cpu_seconds)
    }
}
