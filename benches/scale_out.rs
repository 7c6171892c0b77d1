//! Scale-out (eddy-cluster): records/s of the distributed word count with 1, 2 and 3
//! processes over a 12-partition topic, and the failover time: from a process's SIGKILL to
//! every task (the dead one's too) committing progress again, with a replacement started
//! under the dead one's `--instance-id`, and without (a survivor stands in for it once its
//! lease has stood still for the session timeout). Against noida-db on loopback, with the
//! release `word_count` example as the processes (its distributed mode: the one-process
//! DataStream job, run by `eddy_cluster::execute_distributed`).
//!
//! On one machine the processes share its cores, so this is a functional scale check (the
//! work spreads, nothing is lost), not a speed-up claim.
//!
//! ```text
//! cargo build --release --example word_count && cargo bench --bench scale_out
//! SCALE_OUT_LINES=5000 cargo bench --bench scale_out     # lines per partition (default 20000)
//! SCALE_OUT_ONLY=failover SCALE_OUT_LOGS=/tmp/logs cargo bench --bench scale_out   # the two failovers alone, with logs
//! ```

#[path = "common/machine.rs"]
mod machine;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Processes started, naming their logs.
static COUNT: AtomicUsize = AtomicUsize::new(0);

use eddy_kafka::rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use eddy_kafka::rdkafka::client::DefaultClientContext;
use eddy_kafka::rdkafka::config::ClientConfig;
use eddy_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use eddy_kafka::rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use eddy_kafka::rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// Input partitions.
const PARTITIONS: i32 = 12;

fn binary() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/examples/word_count");
    assert!(path.exists(), "{} is missing: cargo build --release --example word_count", path.display());
    path
}

fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("an admin client");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = futures::executor::block_on(admin.create_topics([&new], &AdminOptions::new())).expect("create");
    results.into_iter().for_each(|r| drop(r.expect("topic created")));
    std::thread::sleep(Duration::from_millis(500));
}

/// Appends lines `from..to` of every partition: `<ms>\t<five words>`, 10 ms apart.
fn produce(brokers: &str, topic: &str, from: usize, to: usize) {
    let producer: ThreadedProducer<_> =
        ClientConfig::new().set("bootstrap.servers", brokers).set("linger.ms", "20").create().unwrap();
    for p in 0..PARTITIONS {
        for i in from..to {
            let words: Vec<String> = (0..5).map(|k| format!("w{}", (i * 31 + k * 7 + p as usize) % 500)).collect();
            let line = format!("{}\t{}", 1_767_225_600_000 + i as i64 * 10, words.join(" "));
            let mut record = BaseRecord::<(), str>::to(topic).payload(line.as_str()).partition(p);
            while let Err((_, back)) = producer.send(record) {
                std::thread::sleep(Duration::from_millis(5));
                record = back;
            }
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

fn start(brokers: &str, input: &str, app: &str, store: &Path, extra: &[&str]) -> Child {
    // SCALE_OUT_LOGS=dir: each process's debug log (task starts, first commits) in
    // dir/<app>-<pid>.log, to see where a failover's time goes.
    let logs = std::env::var_os("SCALE_OUT_LOGS").map(PathBuf::from);
    let stderr = match &logs {
        Some(dir) => {
            std::fs::create_dir_all(dir).unwrap();
            let name = format!("{app}-{}-{}.log", std::process::id(), COUNT.fetch_add(1, Ordering::Relaxed));
            Stdio::from(std::fs::File::create(dir.join(name)).unwrap())
        }
        None => Stdio::null(),
    };
    Command::new(binary())
        .env("RUST_LOG", if logs.is_some() { "warn,eddy_cluster=debug" } else { "warn" })
        .args(["--kafka-brokers", brokers, "--input-topic", input, "--output-topic", &format!("{app}-out")])
        .args(["--application-id", app, "--checkpoint-store", &format!("file://{}", store.display())])
        .args(["--timestamped", "--checkpoint-interval-ms", "1000"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Seconds for `processes` processes of `members` group members each to run the whole
/// bounded input.
fn throughput(brokers: &str, processes: usize, members: usize, dir: &Path) -> f64 {
    let app = format!("bench{processes}x{members}");
    create_topic(brokers, &format!("{app}-out"), 3);
    let started = Instant::now();
    let members = members.to_string();
    let args = ["--bounded", "--parallelism", members.as_str()];
    let children: Vec<Child> = (0..processes).map(|_| start(brokers, "lines", &app, &dir.join(&app), &args)).collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a process failed");
    }
    started.elapsed().as_secs_f64()
}

/// The committed offsets of `app`'s consumer group on `topic`.
fn committed(brokers: &str, app: &str, topic: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", app).create().unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition(topic, p);
    }
    let offsets = consumer.committed_offsets(list, Duration::from_secs(10)).unwrap();
    offsets
        .elements()
        .iter()
        .map(|e| (e.partition(), if let Offset::Offset(o) = e.offset() { o } else { -1 }))
        .collect()
}

/// Seconds from a SIGKILL to every input partition committing again; `replace` starts a
/// process under the dead one's `--instance-id` right after the kill.
fn failover(brokers: &str, lines: usize, dir: &Path, replace: bool) -> Option<f64> {
    let app = if replace { "failover-replaced" } else { "failover-alone" };
    let input = format!("{app}-in");
    create_topic(brokers, &input, PARTITIONS);
    create_topic(brokers, &format!("{app}-out"), 3);
    produce(brokers, &input, 0, lines / 2);
    let store = dir.join(app);
    let liveness = ["--session-timeout-ms", "6000", "--max-poll-interval-ms", "8000"];
    let named = |i: usize| {
        let name = format!("p{i}");
        let mut args: Vec<String> = liveness.iter().map(|s| s.to_string()).collect();
        args.extend(["--instance-id".to_string(), name]);
        args
    };
    let mut children: Vec<Child> = (0..3)
        .map(|i| start(brokers, &input, app, &store, &named(i).iter().map(String::as_str).collect::<Vec<_>>()))
        .collect();
    // Until the first half is committed everywhere.
    while committed(brokers, app, &input).values().any(|&o| o < (lines / 2) as i64) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = committed(brokers, app, &input);
    let killed = Instant::now();
    let epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap();
    eprintln!("{app}: SIGKILL at {:.3} s since the epoch", epoch.as_secs_f64());
    children[0].kill().unwrap();
    children[0].wait().unwrap();
    if replace {
        children[0] = start(brokers, &input, app, &store, &named(0).iter().map(String::as_str).collect::<Vec<_>>());
    }
    produce(brokers, &input, lines / 2, lines / 2 + 200);
    let mut taken = None;
    while killed.elapsed() < Duration::from_secs(60) {
        let now = committed(brokers, app, &input);
        if now.iter().all(|(p, o)| *o > before[p]) {
            taken = Some(killed.elapsed().as_secs_f64());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    taken
}

fn main() {
    let lines: usize =
        std::env::var("SCALE_OUT_LINES").map_or(20_000, |v| v.parse().expect("SCALE_OUT_LINES: a number"));
    let kafka = eddy_test_services::Service::kafka().expect("noida-db: run scripts/install-services.sh");
    let brokers = kafka.address();
    let dir = tempfile::tempdir().unwrap();
    println!("scale-out, {}; {PARTITIONS} partitions x {lines} lines of 5 words", machine::machine());
    // SCALE_OUT_ONLY=failover: only the two failovers, to repeat them quickly.
    let only_failover = std::env::var("SCALE_OUT_ONLY").as_deref() == Ok("failover");
    if !only_failover {
        create_topic(&brokers, "lines", PARTITIONS);
        produce(&brokers, "lines", 0, lines);
    }
    let total = (lines * PARTITIONS as usize) as f64;
    let mut base = None;
    let runs = match only_failover {
        true => vec![],
        false => vec![(1, 1), (2, 1), (3, 1), (1, 3)],
    };
    for (processes, members) in runs {
        let seconds = throughput(&brokers, processes, members, dir.path());
        let rate = total / seconds;
        let ratio = rate / *base.get_or_insert(rate);
        println!(
            "{processes} process(es) x {members} member(s): {seconds:.2} s, {rate:.0} lines/s ({:.0} words/s), {ratio:.2}x",
            rate * 5.0
        );
    }
    for replace in [true, false] {
        let what = if replace {
            "SIGKILL + a replacement with the same --instance-id"
        } else {
            "SIGKILL, no replacement: a survivor stands in"
        };
        match failover(&brokers, lines, dir.path(), replace) {
            Some(seconds) => println!("failover ({what}): every task committing again after {seconds:.2} s"),
            None => println!("failover ({what}): the dead process's tasks did not move within 60 s"),
        }
    }
}
