//! The word count spread over several processes (`--application-id`, eddy-cluster), run as a
//! user would: example binaries on loopback, a real broker (noida-db), the checkpoint store a
//! shared directory. Whatever happens to the processes (three of them, one killed with
//! SIGKILL, one added, two stopped), the committed output equals the counts a sequential
//! model computes from the input, and the one-process run's.

#[path = "common/example_binary.rs"]
mod example_binary;

#[path = "../crates/eddy-kafka/tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{create_topic, produce_to, read_committed, Service};

/// Input partitions.
const PARTITIONS: i32 = 12;

/// Each test runs a broker and three or four processes: on a small machine two at once starve
/// each other past the tests' time limits, so they take turns. A test that fails leaves no
/// process behind: its turn ends by killing those still running.
fn one_at_a_time() -> Turn {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    Turn { _turn: TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) }
}

/// The processes the running test started.
static STARTED: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// A test's turn; see [`one_at_a_time`].
struct Turn {
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let started = std::mem::take(&mut *STARTED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        if std::thread::panicking() {
            for pid in started {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
        }
    }
}

/// Starts `command`, for the running test's turn to kill should the test fail.
fn spawn(command: &mut Command) -> Child {
    let child = command.spawn().unwrap();
    STARTED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(child.id());
    child
}
/// Window length of the runs (the example's default).
const WINDOW_MS: i64 = 5000;

/// The input: per partition, `lines` lines `<ms>\t<words>` in event-time order (so nothing is
/// late), drawn from a seeded generator over a small vocabulary.
fn input(lines: usize) -> Vec<Vec<String>> {
    let mut rng = fastrand::Rng::with_seed(16);
    (0..PARTITIONS)
        .map(|p| {
            let mut time = 1_767_225_600_000 + p as i64 * 37;
            (0..lines)
                .map(|_| {
                    time += rng.i64(0..400);
                    let words: Vec<String> = (0..rng.usize(1..8)).map(|_| format!("w{}", rng.u32(0..300))).collect();
                    format!("{time}\t{}", words.join(" "))
                })
                .collect()
        })
        .collect()
}

/// The sequential model: `start,end,word,count` per word and 5 s window.
fn model(input: &[Vec<String>]) -> BTreeSet<String> {
    let mut counts: BTreeMap<(i64, String), u64> = BTreeMap::new();
    for line in input.iter().flatten() {
        let (time, text) = line.split_once('\t').unwrap();
        let time: i64 = time.parse().unwrap();
        let start = time - time.rem_euclid(WINDOW_MS);
        for word in text.split(' ') {
            *counts.entry((start, word.to_string())).or_default() += 1;
        }
    }
    counts.into_iter().map(|((start, word), n)| format!("{start},{},{word},{n}", start + WINDOW_MS)).collect()
}

/// A broker with the input in topic `lines` and an empty `counts`.
fn setup(lines: usize) -> Option<(Service, BTreeSet<String>)> {
    let kafka = Service::kafka()?;
    let brokers = kafka.address();
    create_topic(&brokers, "lines", PARTITIONS);
    create_topic(&brokers, "counts", 3);
    let input = input(lines);
    append(&brokers, &input);
    Some((kafka, model(&input)))
}

/// Appends `input[p]` to partition `p` of `lines`.
fn append(brokers: &str, input: &[Vec<String>]) {
    for (p, lines) in input.iter().enumerate() {
        let values: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
        produce_to(brokers, "lines", p as i32, &values);
    }
}

/// A run that is still going when something happens to its processes: the input comes in
/// two halves, the second after the event, so no process can have finished the work before.
struct TwoHalves {
    kafka: Service,
    dir: tempfile::TempDir,
    second: Vec<Vec<String>>,
    expected: BTreeSet<String>,
}

impl TwoHalves {
    /// A broker holding the first half of the input.
    fn new(lines: usize) -> Option<Self> {
        let kafka = Service::kafka()?;
        let brokers = kafka.address();
        create_topic(&brokers, "lines", PARTITIONS);
        create_topic(&brokers, "counts", 3);
        let input = input(lines);
        let expected = model(&input);
        let (first, mut second): (Vec<_>, Vec<_>) = input
            .iter()
            .map(|lines| {
                let (a, b) = lines.split_at(lines.len() / 2);
                (a.to_vec(), b.to_vec())
            })
            .unzip();
        // Last in every partition, a line far ahead in event time: its watermark fires every
        // window of the real lines (its own window never fires, so it is not in the model).
        let newest: i64 =
            input.iter().flatten().map(|l| l.split_once('\t').unwrap().0.parse::<i64>().unwrap()).max().unwrap();
        for lines in &mut second {
            lines.push(format!("{}\tsentinel", newest + 10 * WINDOW_MS));
        }
        append(&brokers, &first);
        Some(TwoHalves { kafka, dir: tempfile::tempdir().unwrap(), second, expected })
    }

    fn brokers(&self) -> String {
        self.kafka.address()
    }

    /// Starts one unbounded process (SIGTERM stops it).
    fn start(&self) -> Child {
        self.start_with(&[])
    }

    /// Starts one unbounded process with more flags.
    fn start_with(&self, extra: &[&str]) -> Child {
        // The rebalance timeout (how long a rebalance waits for members to rejoin): short, as
        // noida-db's rebalances are frequent.
        let mut args = vec!["--max-poll-interval-ms", "8000"];
        args.extend(extra);
        start_process(&self.brokers(), &self.dir.path().join("store"), &args)
    }

    /// Starts three processes as the static members [`NAMES`] and waits for the first
    /// committed row; returns the first (the one a test kills or pauses) and the others.
    fn start_three_named(&self) -> (Child, Vec<Child>) {
        let mut processes: Vec<Child> = NAMES.iter().map(|name| self.start_with(&["--instance-id", name])).collect();
        wait_for_rows(&self.brokers(), 1);
        let first = processes.remove(0);
        (first, processes)
    }

    /// Appends the second half, waits for every row and checks them.
    fn finish_input_and_check(&self) {
        append(&self.brokers(), &self.second);
        wait_for_rows(&self.brokers(), self.expected.len());
        assert_same(&committed_rows(&self.brokers(), self.expected.len()), &self.expected);
    }
}

/// The `--instance-id`s of the three static members the kill and pause tests start.
const NAMES: [&str; 3] = ["wc-0", "wc-1", "wc-2"];

/// SIGKILL, and the process reaped.
fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Starts one process of the distributed word count, bounded.
fn start(brokers: &str, store: &Path, extra: &[&str]) -> Child {
    let mut args = vec!["--bounded"];
    args.extend(extra);
    start_process(brokers, store, &args)
}

/// Starts one process of the distributed word count.
fn start_process(brokers: &str, store: &Path, extra: &[&str]) -> Child {
    spawn(&mut process(brokers, store, extra))
}

/// The command of one process of the distributed word count, its stderr piped.
fn process(brokers: &str, store: &Path, extra: &[&str]) -> Command {
    let url = format!("file://{}", store.display());
    let mut command = Command::new(example_binary::path("word_count"));
    command
        .args(["--kafka-brokers", brokers, "--input-topic", "lines", "--output-topic", "counts"])
        .args(["--application-id", "wc", "--checkpoint-store", &url, "--timestamped"])
        .args(["--checkpoint-interval-ms", "300"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Waits for a process to exit (at most `limit`), checks it exited 0 and returns its stderr.
fn finish(child: Child, limit: Duration) -> String {
    let pid = child.id();
    let deadline = Instant::now() + limit;
    let mut child = child;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(status.success(), "process {pid} failed ({status}): {stderr}");
            return stderr.into_owned();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("process {pid} did not finish in {limit:?}: {}", String::from_utf8_lossy(&output.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the output topic holds (read_committed), checking nothing is there twice.
fn committed_rows(brokers: &str, expected: usize) -> BTreeSet<String> {
    let mut rows = BTreeSet::new();
    for row in read_committed(brokers, "counts", expected + 1, Duration::from_secs(3)) {
        assert!(rows.insert(row.clone()), "{row} committed twice");
    }
    rows
}

/// Waits until at least `rows` rows are committed; returns how many there are.
fn wait_for_rows(brokers: &str, rows: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let committed = read_committed(brokers, "counts", rows, Duration::from_millis(500)).len();
        if committed >= rows {
            return committed;
        }
        assert!(Instant::now() < deadline, "only {committed} rows committed after 2 minutes\n{}", progress(brokers));
    }
}

/// Where the job stands, for a failure message: per partition of the input and the
/// repartition topic, the group's committed offset and the end of the log.
fn progress(brokers: &str) -> String {
    use eddy_kafka::rdkafka::config::ClientConfig;
    use eddy_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
    use eddy_kafka::rdkafka::topic_partition_list::{Offset, TopicPartitionList};

    let group: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", "wc").create().unwrap();
    let mut report = String::new();
    let visible = read_committed(brokers, "counts", usize::MAX, Duration::from_millis(500)).len();
    let ends: Vec<_> =
        (0..3).map(|p| group.fetch_watermarks("counts", p, Duration::from_secs(5)).map(|(_, h)| h)).collect();
    report += &format!("counts: {visible} rows visible read_committed; log ends {ends:?}\n");
    report += &stable_offsets(brokers, "counts", 3);
    for topic in ["lines", "wc-window-repartition"] {
        let mut list = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            list.add_partition(topic, p);
        }
        let committed = group.committed_offsets(list, Duration::from_secs(10)).unwrap();
        for element in committed.elements() {
            let end = group.fetch_watermarks(topic, element.partition(), Duration::from_secs(5)).map(|(_, high)| high);
            let at = match element.offset() {
                Offset::Offset(o) => o.to_string(),
                other => format!("{other:?}"),
            };
            report += &format!("{topic}/{}: committed {at} of {end:?}\n", element.partition());
        }
    }
    report
}

/// Per partition of `topic`, the last offset a read_committed reader gets to against the end
/// of the log: a partition where it stays far behind holds a transaction nobody ended.
fn stable_offsets(brokers: &str, topic: &str, partitions: i32) -> String {
    use eddy_kafka::rdkafka::config::ClientConfig;
    use eddy_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
    use eddy_kafka::rdkafka::message::Message;
    use eddy_kafka::rdkafka::topic_partition_list::{Offset, TopicPartitionList};

    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "eddy-test-stable")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let mut all = TopicPartitionList::new();
    for p in 0..partitions {
        all.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    reader.assign(&all).unwrap();
    let mut last = vec![-1; partitions as usize];
    let mut quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(2) {
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(100)) {
            last[m.partition() as usize] = m.offset();
            quiet = Instant::now();
        }
    }
    let mut report = String::new();
    for p in 0..partitions {
        let end = reader.fetch_watermarks(topic, p, Duration::from_secs(5)).map(|(_, high)| high);
        report += &format!("{topic}/{p}: read_committed reaches offset {}, log end {end:?}\n", last[p as usize]);
    }
    report
}

/// Sends SIGTERM, as `kill` or Kubernetes would.
fn terminate(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// The number of tasks a process reports it started.
fn tasks_started(stderr: &str) -> u64 {
    let (_, after) = stderr.split_once("s; ").unwrap_or_else(|| panic!("no summary in {stderr}"));
    after.split(' ').next().unwrap().parse().unwrap()
}

fn assert_same(actual: &BTreeSet<String>, expected: &BTreeSet<String>) {
    let missing: Vec<_> = expected.difference(actual).take(5).collect();
    let extra: Vec<_> = actual.difference(expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} rows, {} expected; missing {missing:?}, extra {extra:?}",
        actual.len(),
        expected.len()
    );
}

#[test]
fn three_processes_equal_the_model_and_the_one_process_run() {
    let _turn = one_at_a_time();
    let Some((kafka, expected)) = setup(300) else { return };
    let brokers = kafka.address();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let processes: Vec<Child> = (0..3).map(|_| start(&brokers, &store, &[])).collect();
    for process in processes {
        finish(process, Duration::from_secs(120));
    }
    assert_same(&committed_rows(&brokers, expected.len()), &expected);

    // The one-process run (eddy's own runtime, exactly-once into its own topic) agrees.
    create_topic(&brokers, "single", 1);
    let checkpoints = dir.path().join("chk");
    let out = Command::new(example_binary::path("word_count"))
        .args(["--kafka-brokers", &brokers, "--input-topic", "lines", "--output-topic", "single", "--timestamped"])
        .args(["--bounded", "--checkpoint-dir", checkpoints.to_str().unwrap(), "--parallelism", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let single: BTreeSet<String> =
        read_committed(&brokers, "single", expected.len() + 1, Duration::from_secs(3)).into_iter().collect();
    assert_same(&single, &expected);
}

/// Lines per partition of the runs that something happens to mid-way.
const LINES: usize = 2000;

/// Stops a process with SIGTERM; returns the number of tasks it started.
fn stop(process: Child) -> u64 {
    terminate(&process);
    let stderr = finish(process, Duration::from_secs(60));
    assert!(stderr.contains("stopped; tasks handed back"), "{stderr}");
    tasks_started(&stderr)
}

/// SIGKILL, then a replacement comes (as a StatefulSet restarts a pod). noida-db drops the dead
/// member when the group rebalances for the newcomer; the dead process's open transactions are
/// aborted by the fencing of whoever starts its tasks, and its state comes from the store. The
/// newcomer often takes a live process's tasks too, fencing it mid-transaction: the window
/// tasks reading all along must still see what the tasks' next owners write (see
/// `incarnation.rs` in eddy-cluster).
#[test]
fn a_process_killed_mid_run_is_replaced_and_the_results_stay_exact() {
    let _turn = one_at_a_time();
    let Some(run) = TwoHalves::new(LINES) else { return };
    let (victim, mut processes) = run.start_three_named();
    kill(victim);
    processes.push(run.start_with(&["--instance-id", NAMES[0]]));
    run.finish_input_and_check();
    let started: Vec<u64> = processes.into_iter().map(stop).collect();
    // The survivors started 16 tasks between them at first; the dead one's 8 moved.
    assert!(started.iter().sum::<u64>() > 16, "the survivors and the replacement started only {started:?} tasks");
}

/// SIGKILL and no replacement. noida-db never drops the dead member from the group (nor
/// hands its partitions to anyone); a survivor sees the dead process's liveness lease stand
/// still for the session timeout and stands in for it under its `--instance-id` (see
/// `liveness.rs` in eddy-cluster), so the two survivors run the dead one's tasks.
#[test]
fn a_process_killed_mid_run_its_tasks_move_to_the_two_survivors() {
    let _turn = one_at_a_time();
    let Some(run) = TwoHalves::new(LINES) else { return };
    let (victim, processes) = run.start_three_named();
    kill(victim);
    run.finish_input_and_check();
    let started: Vec<u64> = processes.into_iter().map(stop).collect();
    // The survivors started 16 tasks between them at first; the dead one's 8 moved to them.
    assert!(started.iter().sum::<u64>() >= 24, "the survivors started only {started:?} tasks");
}

/// The process killed comes back late (a supervisor restarting it under its name) after a
/// survivor stood in for it: it takes its place back, the stand-in stops quietly (its process
/// runs on and stops cleanly), and the output stays exact.
#[test]
fn a_killed_process_restarted_late_takes_its_place_back_from_the_stand_in() {
    let _turn = one_at_a_time();
    let Some(run) = TwoHalves::new(LINES) else { return };
    let (victim, processes) = run.start_three_named();
    kill(victim);
    run.finish_input_and_check();
    // Restarted with its task starts logged, to see it take its place back.
    let log = run.dir.path().join("back.log");
    let args = ["--max-poll-interval-ms", "8000", "--instance-id", NAMES[0]];
    let mut command = process(&run.brokers(), &run.dir.path().join("store"), &args);
    let back = spawn(command.env("RUST_LOG", "eddy_cluster=info").stderr(std::fs::File::create(&log).unwrap()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log).unwrap().contains("task started") {
        assert!(Instant::now() < deadline, "the restarted process started no task in a minute");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_same(&committed_rows(&run.brokers(), run.expected.len()), &run.expected);
    // Every process stops cleanly, the one whose stand-in stepped back too.
    let survivors: Vec<String> = processes
        .into_iter()
        .map(|process| {
            terminate(&process);
            finish(process, Duration::from_secs(60))
        })
        .collect();
    let started: u64 = survivors.iter().map(|stderr| tasks_started(stderr)).sum();
    assert!(started >= 24, "the survivors started only {started} tasks");
    assert!(
        survivors.iter().any(|stderr| stderr.contains("the member stood in for is back: the stand-in stops")),
        "no stand-in stepped back: {survivors:?}"
    );
    terminate(&back);
    finish(back, Duration::from_secs(60));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("stopped; tasks handed back"), "{log}");
}

/// A process that was only slow, not dead: paused (SIGSTOP) past the session timeout, a
/// survivor stands in for it and runs its tasks, fencing its transactional producers as
/// every task start does. Resumed, it must not commit anything.
#[test]
fn a_paused_process_is_stood_in_for_and_commits_nothing_when_it_resumes() {
    let _turn = one_at_a_time();
    let Some(run) = TwoHalves::new(LINES) else { return };
    let (paused, processes) = run.start_three_named();
    signal(&paused, "STOP");
    run.finish_input_and_check();
    signal(&paused, "CONT");
    // Its consumer finds its group.instance.id taken (FENCED_INSTANCE_ID): the process stops
    // with an error that says so, for its supervisor to restart it (it then takes its place
    // back from the stand-in).
    let resumed = failed(paused, Duration::from_secs(60));
    assert!(resumed.contains("another member joined the group as wc-0-0"), "{resumed}");
    assert_same(&committed_rows(&run.brokers(), run.expected.len()), &run.expected);
    let started: Vec<u64> = processes.into_iter().map(stop).collect();
    assert!(started.iter().sum::<u64>() >= 24, "the survivors started only {started:?} tasks");
}

/// Sends `signal` (`STOP`, `CONT`, ...) to a process.
fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// Waits for a process to exit (at most `limit`), checks it failed and returns its stderr.
fn failed(mut child: Child, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "process {} still runs after {limit:?}", child.id());
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "process exited 0: {stderr}");
    stderr
}

#[test]
fn a_fourth_process_takes_over_tasks_mid_run() {
    let _turn = one_at_a_time();
    let Some(run) = TwoHalves::new(LINES) else { return };
    let mut processes: Vec<Child> = (0..3).map(|_| run.start()).collect();
    wait_for_rows(&run.brokers(), 1);
    processes.push(run.start());
    run.finish_input_and_check();
    let started: Vec<u64> = processes.into_iter().map(stop).collect();
    assert!(started[3] > 0, "no task moved to the 4th process: {started:?}");
}

#[test]
fn three_processes_scale_down_to_one() {
    let _turn = one_at_a_time();
    let Some(run) = TwoHalves::new(LINES) else { return };
    let mut processes: Vec<Child> = (0..3).map(|_| run.start()).collect();
    wait_for_rows(&run.brokers(), 1);
    let last = processes.pop().unwrap();
    // Each stopped process commits, hands its tasks back and exits 0.
    for process in processes {
        stop(process);
    }
    run.finish_input_and_check();
    let started = stop(last);
    assert!(started > 8, "the last process started only {started} tasks: it took over none");
}

#[test]
fn two_processes_of_two_members_each_equal_the_model() {
    let _turn = one_at_a_time();
    let Some((kafka, expected)) = setup(300) else { return };
    let brokers = kafka.address();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let processes: Vec<Child> = (0..2).map(|_| start(&brokers, &store, &["--parallelism", "2"])).collect();
    let started: u64 = processes.into_iter().map(|p| tasks_started(&finish(p, Duration::from_secs(120)))).sum();
    assert!(started >= 24, "{started} tasks started");
    assert_same(&committed_rows(&brokers, expected.len()), &expected);
}

#[test]
fn distributed_flags_are_checked_before_anything_runs() {
    let refused = |args: &[&str], says: &str| {
        let out = Command::new(example_binary::path("word_count"))
            .args(["--kafka-brokers", "127.0.0.1:9", "--input-topic", "lines", "--output-topic", "counts"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{args:?}: {stderr}");
    };
    refused(&["--application-id", "wc"], "--checkpoint-store");
    refused(
        &["--application-id", "wc", "--checkpoint-store", "ftp://x/y"],
        "give file:///shared/dir or s3://bucket/prefix",
    );
    refused(&["--application-id", "w c", "--checkpoint-store", "file:///tmp/unused"], "only letters, digits");
    refused(
        &["--application-id", "wc", "--checkpoint-store", "file:///tmp/unused", "--checkpoint-dir", "/tmp/x"],
        "cannot be used with",
    );
    refused(&["--checkpoint-store", "file:///tmp/unused"], "--application-id");

    let taxi_refused = |args: &[&str], says: &str| {
        let out = Command::new(example_binary::path("taxi_analytics"))
            .args(["--kafka-brokers", "127.0.0.1:9", "--topic", "trips"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "taxi {args:?}: {stderr}");
    };
    let store = ["--application-id", "taxi", "--checkpoint-store"];
    taxi_refused(&["--application-id", "taxi"], "--checkpoint-store");
    taxi_refused(&[&store[..], &["ftp://x/y"]].concat(), "give file:///shared/dir or s3://bucket/prefix");
    taxi_refused(&[&store[..], &["file:///tmp/unused", "--input", "trips.jsonl"]].concat(), "cannot be used with");
    taxi_refused(&[&store[..], &["file:///tmp/unused", "--format", "tlc-csv"]].concat(), "drop --format tlc-csv");
    taxi_refused(&["--s3-endpoint", "http://127.0.0.1:9"], "--s3-endpoint is the server of --s3");
}

/// Without `--timestamped` a record's event time is its Kafka timestamp (Kafka Streams'
/// default): the same model over the timestamps the records were produced with.
#[test]
fn kafka_record_timestamps_are_the_event_time_without_timestamped() {
    use eddy_kafka::rdkafka::config::ClientConfig;
    use eddy_kafka::rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    let _turn = one_at_a_time();
    let Some(kafka) = Service::kafka() else { return };
    let brokers = kafka.address();
    create_topic(&brokers, "lines", PARTITIONS);
    create_topic(&brokers, "counts", 3);
    // Shifted to the last hour (by whole windows): the broker would expire records stamped
    // months ago at once.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let shift = (now - 3_600_000 - 1_767_225_600_000) / WINDOW_MS * WINDOW_MS;
    let input: Vec<Vec<String>> = input(200)
        .into_iter()
        .map(|lines| {
            let shifted = |line: String| {
                let (time, text) = line.split_once('\t').unwrap();
                format!("{}\t{text}", time.parse::<i64>().unwrap() + shift)
            };
            lines.into_iter().map(shifted).collect()
        })
        .collect();
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    for (p, lines) in input.iter().enumerate() {
        for line in lines {
            // The time goes in the record's timestamp; the value is the text alone.
            let (time, text) = line.split_once('\t').unwrap();
            let record = BaseRecord::<(), str>::to("lines").payload(text).partition(p as i32);
            producer.send(record.timestamp(time.parse().unwrap())).unwrap();
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let expected = model(&input);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("store").display());
    let processes: Vec<Child> = (0..2)
        .map(|_| {
            spawn(
                Command::new(example_binary::path("word_count"))
                    .args(["--kafka-brokers", &brokers, "--input-topic", "lines", "--output-topic", "counts"])
                    .args(["--application-id", "wc", "--checkpoint-store", &url, "--bounded"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped()),
            )
        })
        .collect();
    for process in processes {
        finish(process, Duration::from_secs(120));
    }
    assert_same(&committed_rows(&brokers, expected.len()), &expected);
}

/// The taxi job's trips for the distributed run: per partition, `trips` JSON trip events in
/// drop-off order, picked up around a few spots (so cells repeat) and dropped off at JFK, at
/// LaGuardia or in town; some outside NYC (filtered out) and a line that is no event.
fn taxi_input(trips: usize) -> Vec<Vec<String>> {
    let mut rng = fastrand::Rng::with_seed(1616);
    let spots = [(40.7580, -73.9855), (40.7128, -74.0060), (40.7306, -73.9866), (40.7812, -73.9665)];
    let time = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    (0..PARTITIONS)
        .map(|p| {
            let mut dropoff = 1_452_038_400_000 + p as i64 * 1000; // 2016-01-06
            let mut lines: Vec<String> = (0..trips)
                .map(|_| {
                    dropoff += rng.i64(0..90) * 1000;
                    let (lat, lon) = spots[rng.usize(0..spots.len())];
                    let pickup = (lat + rng.f64() * 0.004, lon + rng.f64() * 0.004);
                    let drop = match rng.u8(0..10) {
                        0..=3 => (40.640 + rng.f64() * 0.01, -73.790 + rng.f64() * 0.02), // JFK
                        4..=5 => (40.770 + rng.f64() * 0.005, -73.875 + rng.f64() * 0.01), // LGA
                        6 => (41.2, -73.9),                                                // outside NYC
                        _ => (40.75 + rng.f64() * 0.02, -73.99 + rng.f64() * 0.02),
                    };
                    let minutes = rng.i64(5..70);
                    format!(
                        r#"{{"type":"trip","pickup_latitude":{},"pickup_longitude":{},"dropoff_latitude":{},"dropoff_longitude":{},"pickup_datetime":"{}","dropoff_datetime":"{}"}}"#,
                        pickup.0,
                        pickup.1,
                        drop.0,
                        drop.1,
                        time(dropoff - minutes * 60_000 - rng.i64(0..60) * 1000),
                        time(dropoff)
                    )
                })
                .collect();
            lines.insert(trips / 2, "not an event".to_string());
            lines
        })
        .collect()
}

/// The sequential model of the taxi job (hourly windows, geohash 7 hot spots, geohash 6
/// airport cells, at least 2 trips): both outputs' rows as canonical JSON.
fn taxi_model(input: &[Vec<String>]) -> (BTreeSet<String>, BTreeSet<String>) {
    let inside = |lat: f64, lon: f64| (40.560..=40.878).contains(&lat) && (-74.054..=-73.722).contains(&lon);
    let airport = |lat: f64, lon: f64| {
        if (40.632..=40.654).contains(&lat) && (-73.800..=-73.761).contains(&lon) {
            Some("JFK")
        } else if (40.766..=40.778).contains(&lat) && (-73.881..=-73.859).contains(&lon) {
            Some("LGA")
        } else {
            None
        }
    };
    let cell = |lat: f64, lon: f64, precision| geohash::encode(geohash::Coord { x: lon, y: lat }, precision).unwrap();
    let millis = |text: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(text.as_str().unwrap()).unwrap().timestamp_millis()
    };
    let (mut pickups, mut airports) = (BTreeMap::new(), BTreeMap::new());
    for line in input.iter().flatten() {
        let Ok(trip) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let at = |field: &str| trip[field].as_f64().unwrap();
        let (plat, plon, dlat, dlon) =
            (at("pickup_latitude"), at("pickup_longitude"), at("dropoff_latitude"), at("dropoff_longitude"));
        if !inside(plat, plon) || !inside(dlat, dlon) {
            continue;
        }
        let (pickup, dropoff) = (millis(&trip["pickup_datetime"]), millis(&trip["dropoff_datetime"]));
        let end = dropoff - dropoff.rem_euclid(3_600_000) + 3_600_000;
        *pickups.entry((cell(plat, plon, 7), end)).or_insert(0u64) += 1;
        if let Some(code) = airport(dlat, dlon) {
            let (sum, n) = airports.entry((cell(plat, plon, 6), code, end)).or_insert((0i64, 0u64));
            *sum += (dropoff - pickup) / 60_000;
            *n += 1;
        }
    }
    let pickups = pickups
        .into_iter()
        .map(|((location, timestamp), count)| {
            serde_json::json!({"location": location, "pickup_count": count, "timestamp": timestamp}).to_string()
        })
        .collect();
    let airports = airports
        .into_iter()
        .filter(|(_, (_, n))| *n >= 2)
        .map(|((location, code, timestamp), (sum, n))| {
            serde_json::json!({"location": location, "airport_code": code, "sum_trip_duration": sum,
                               "avg_trip_duration": sum as f64 / n as f64, "timestamp": timestamp})
            .to_string()
        })
        .collect();
    (pickups, airports)
}

/// What `topic` holds (read_committed), as canonical JSON, checking nothing is there twice.
fn committed_json(brokers: &str, topic: &str, expected: usize) -> BTreeSet<String> {
    let mut rows = BTreeSet::new();
    for row in read_committed(brokers, topic, expected + 1, Duration::from_secs(3)) {
        let canonical = serde_json::from_str::<serde_json::Value>(&row).unwrap().to_string();
        assert!(rows.insert(canonical), "{row} committed twice in {topic}");
    }
    rows
}

/// The taxi job's two keyed-window branches (hot spots, airport trips), each behind its own
/// repartition topic, over three processes: both outputs equal the sequential model and the
/// one-process Kafka run.
#[test]
fn taxi_analytics_over_three_processes_equals_the_model_and_the_one_process_run() {
    let _turn = one_at_a_time();
    let Some(kafka) = Service::kafka() else { return };
    let brokers = kafka.address();
    create_topic(&brokers, "trips", PARTITIONS);
    for topic in ["pickups", "durations", "single-pickups", "single-durations"] {
        create_topic(&brokers, topic, 3);
    }
    let input = taxi_input(150);
    for (p, lines) in input.iter().enumerate() {
        let values: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
        produce_to(&brokers, "trips", p as i32, &values);
    }
    let (pickups, durations) = taxi_model(&input);
    assert!(
        pickups.len() > 50 && durations.len() > 10,
        "a model with too little in it: {} {}",
        pickups.len(),
        durations.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("store").display());
    let taxi = || {
        let mut command = Command::new(example_binary::path("taxi_analytics"));
        command.args(["--kafka-brokers", &brokers, "--topic", "trips", "--bounded"]).stdin(Stdio::null());
        command
    };
    let processes: Vec<Child> = (0..3)
        .map(|_| {
            spawn(
                taxi()
                    .args(["--application-id", "taxi", "--checkpoint-store", &url, "--checkpoint-interval-ms", "300"])
                    .args(["--pickup-topic", "pickups", "--duration-topic", "durations"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped()),
            )
        })
        .collect();
    for process in processes {
        finish(process, Duration::from_secs(120));
    }
    assert_same(&committed_json(&brokers, "pickups", pickups.len()), &pickups);
    assert_same(&committed_json(&brokers, "durations", durations.len()), &durations);

    // One process on eddy's own runtime, exactly-once into topics of its own, agrees.
    let out = taxi()
        .args(["--source", "kafka", "--sink", "kafka", "--out-of-orderness-ms", "60000"])
        .args(["--pickup-topic", "single-pickups", "--duration-topic", "single-durations"])
        .args(["--checkpoint-dir", dir.path().join("chk").to_str().unwrap(), "--output", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_same(&committed_json(&brokers, "single-pickups", pickups.len()), &pickups);
    assert_same(&committed_json(&brokers, "single-durations", durations.len()), &durations);
}
