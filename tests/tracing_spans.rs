//! The runtime's `tracing` as a subscriber sees it: spans for the job, each attempt, each
//! task and each checkpoint (with their names and ids), and structured events for completed
//! checkpoints, a restart and dead letters. The subscriber is process-wide (tasks run on their
//! own threads), so this file holds one test.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eddy::prelude::*;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// Log lines, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

static FAILED_ONCE: AtomicBool = AtomicBool::new(false);

#[test]
fn spans_and_events_name_the_job_attempt_task_and_checkpoint() {
    let logs = Captured::default();
    tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
        .finish()
        .try_init()
        .expect("the only subscriber of this test binary");

    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(30)));
    env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 1, delay: Duration::from_millis(10) });
    let out = env
        .generate(Some(3_000), |i| i)
        .uid("numbers")
        .map(|i: u64| {
            std::thread::sleep(Duration::from_micros(100));
            // Fails once, well after the first checkpoints.
            if i == 2_000 && !FAILED_ONCE.swap(true, Ordering::SeqCst) {
                panic!("failing once at {i}");
            }
            i
        })
        .name("slow")
        .try_map(|i: &u64| if i % 1_000 == 7 { Err(format!("{i} is unlucky")) } else { Ok(*i) })
        .name("lucky")
        .collect();
    let result = env.execute("traced").unwrap().wait().unwrap();
    assert_eq!(result.restarts, 1);
    assert!(!out.take().is_empty());

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let find = |what: &[&str]| {
        lines
            .iter()
            .find(|line| what.iter().all(|part| line.contains(part)))
            .unwrap_or_else(|| panic!("no line with {what:?} in:\n{text}"))
    };
    find(&[
        "INFO",
        "job{job=traced}:attempt{attempt=0}:checkpoint{id=1 kind=Checkpoint}",
        "checkpoint completed",
        "size_bytes=",
    ]);
    find(&["INFO", "job{job=traced}:attempt{attempt=0}", "attempt starting", "restored=false"]);
    find(&["WARN", "job{job=traced}", "restarting", "restart=1", "failing once at 2000"]);
    find(&["INFO", "job{job=traced}:attempt{attempt=1}", "attempt starting", "restored=true"]);
    find(&["job{job=traced}:attempt{attempt=1}:checkpoint{id=", "checkpoint completed"]);
    find(&[
        "DEBUG",
        "job{job=traced}:attempt{attempt=0}:task{task=Source: Generator#0}",
        "dead-letter output",
        "records=",
    ]);
    find(&["INFO", "job{job=traced}", "job finished"]);
}
