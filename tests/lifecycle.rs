//! `open` and `close` of user functions (Flink's `RichFunction`): each subtask opens its own
//! copy once before its first record and closes it once after its last; a restarted job opens
//! fresh copies (the failed attempt's are closed as it is torn down); an error in `open` fails
//! the job naming the operator.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eddy::prelude::*;

/// What happened to the copies of a function: ("open" | "close" | "record", subtask, attempt).
type Log = Arc<Mutex<Vec<(&'static str, usize, usize)>>>;

#[derive(Clone)]
struct Logged {
    log: Log,
    /// (subtask, attempt) once opened.
    at: Option<(usize, usize)>,
    fail_open: bool,
}

impl Logged {
    fn new(log: &Log) -> Self {
        Logged { log: log.clone(), at: None, fail_open: false }
    }

    fn note(&self, what: &'static str) {
        let (subtask, attempt) = self.at.expect("used before open");
        self.log.lock().unwrap().push((what, subtask, attempt));
    }
}

impl ProcessFunction<u64, u64> for Logged {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        if self.fail_open {
            return Err(format!("no database at subtask {}", ctx.subtask_index()).into());
        }
        self.at = Some((ctx.subtask_index(), ctx.attempt_number()));
        assert_eq!(ctx.operator_name(), "logged");
        self.note("open");
        Ok(())
    }

    fn process_element(&mut self, value: u64, ctx: &mut ProcessContext<'_, u64>) {
        self.note("record");
        ctx.collect(value);
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.note("close");
        Ok(())
    }
}

impl KeyedProcessFunction<u64, u64, u64> for Logged {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        ProcessFunction::<u64, u64>::open(self, ctx)
    }

    fn process_element(&mut self, value: &u64, ctx: &mut KeyedContext<'_, u64, u64>) -> Result<(), BoxError> {
        self.note("record");
        ctx.collect(*value);
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        ProcessFunction::<u64, u64>::close(self)
    }
}

/// For each subtask: the events its copies saw, in order.
fn per_subtask(log: &Log, parallelism: usize) -> Vec<Vec<(&'static str, usize)>> {
    let mut subtasks = vec![Vec::new(); parallelism];
    for &(what, subtask, attempt) in log.lock().unwrap().iter() {
        // Records of one copy fold into one entry.
        let events: &mut Vec<(&'static str, usize)> = &mut subtasks[subtask];
        if what != "record" || events.last() != Some(&("record", attempt)) {
            events.push((what, attempt));
        }
    }
    subtasks
}

#[test]
fn every_subtask_opens_once_before_its_records_and_closes_once_after() {
    for keyed in [false, true] {
        let log = Log::default();
        let env = StreamEnvironment::new();
        env.set_parallelism(3);
        let numbers = env.from_collection((0..3_000u64).collect());
        let out = if keyed {
            numbers.key_by(|x: &u64| x % 11).process(Logged::new(&log)).name("logged").collect()
        } else {
            numbers.process(Logged::new(&log)).name("logged").collect()
        };
        env.execute("lifecycle").unwrap().wait().unwrap();
        assert_eq!(out.take().len(), 3_000);
        for events in per_subtask(&log, 3) {
            assert_eq!(events, vec![("open", 0), ("record", 0), ("close", 0)], "keyed: {keyed}");
        }
    }
}

#[test]
fn a_restart_opens_fresh_copies_and_closes_the_failed_ones() {
    let log = Log::default();
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(CheckpointConfig::every(Duration::from_millis(20)));
    env.set_restart_strategy(RestartStrategy::FixedDelay { attempts: 1, delay: Duration::from_millis(10) });
    let failed = Arc::new(AtomicBool::new(false));
    env.generate(Some(20_000), |i| i)
        .uid("numbers")
        .map(move |i: u64| {
            if i == 10_000 && !failed.swap(true, Ordering::Relaxed) {
                panic!("once");
            }
            i
        })
        .process(Logged::new(&log))
        .name("logged")
        .collect();
    let result = env.execute("restarted").unwrap().wait().unwrap();
    assert_eq!(result.restarts, 1);
    for events in per_subtask(&log, 2) {
        // The failed attempt's copy may not have seen a record yet; it is closed either way.
        let attempt0: Vec<_> = events.iter().filter(|e| e.1 == 0 && e.0 != "record").copied().collect();
        assert_eq!(attempt0, vec![("open", 0), ("close", 0)]);
        assert_eq!(
            events.iter().filter(|e| e.1 == 1).copied().collect::<Vec<_>>(),
            vec![("open", 1), ("record", 1), ("close", 1)]
        );
    }
}

#[test]
fn an_error_in_open_fails_the_job_naming_the_operator() {
    let log = Log::default();
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    env.from_iter(0..3u64).process(Logged { fail_open: true, ..Logged::new(&log) }).name("logged").collect();
    let error = match env.execute("no database") {
        Err(error) => error,
        Ok(job) => job.wait().unwrap_err(),
    };
    assert_eq!(error.to_string(), "operator 'logged' (subtask 0 of 1) failed: open failed: no database at subtask 0");
    assert!(log.lock().unwrap().is_empty());
}
