//! Watermark alignment in the Kafka source against a real broker (noida-db). One subtask
//! reads two partitions: partition 0 is live (written while the job runs), partition 1 holds
//! a backlog ahead of it in event time, the case alignment is for. Unaligned, the reader
//! would read the whole backlog at once and the window stage would hold it until partition
//! 0 caught up; aligned, the reader pauses partition 1 in the consumer and reads it in step
//! with partition 0. Either way the output is what the topic holds, each record once, with
//! no late record.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{create_topic, produce_to, Service};
use eddy_kafka::{KafkaRecord, KafkaSource};
use eddy_stream::prelude::*;

/// Records per partition, 10 ms of event time apart.
const PER_PARTITION: i64 = 20_000;
const STEP_MS: i64 = 10;
/// Partition 0 is written this many records at a time, one chunk every [`CHUNK_EVERY`].
const CHUNK: i64 = 1_000;
const CHUNK_EVERY: Duration = Duration::from_millis(50);
/// Far longer than the pause between two chunks of partition 0, however loaded the machine:
/// a chunk written after partition 0 went idle is behind the watermark partition 1 moved on
/// (late, as in Flink). 1 s was not enough under a full CI run (192 late records once).
const IDLENESS: Duration = Duration::from_secs(5);
/// How far a partition may run ahead of the group in event time.
const DRIFT_MS: i64 = 1_000;
/// Records of partition 1 read before the reader first hears that it is above the bound
/// (until the watermark is published and the group read: 64 here, one poll), and event time
/// it reads past the bound between two looks at the group (a millisecond or two of reading:
/// about 10 s of event time in a debug build). Unaligned, the reader reads all 20,000 records
/// of partition 1 while partition 0's first chunks come, 100 s ahead of it or more (290 s
/// measured), so a reader that does not pause fails either check by a wide margin.
const SLACK_RECORDS: usize = 2_000;
const SLACK_MS: i64 = 50_000;

/// `(partition, event time)` in the order the source emitted them.
type Log = Arc<Mutex<Vec<(i32, i64)>>>;

/// What one run gave: the emit order, and the count per `(partition, minute)`.
struct Run {
    log: Vec<(i32, i64)>,
    counts: BTreeMap<(i32, i64), u64>,
}

/// The event time of record `k` of `partition`: partition 1 is `lead_ms` ahead.
fn time(partition: i32, k: i64, lead_ms: i64) -> i64 {
    i64::from(partition) * lead_ms + k * STEP_MS
}

fn values(partition: i32, ks: std::ops::Range<i64>, lead_ms: i64) -> Vec<Vec<u8>> {
    ks.map(|k| time(partition, k, lead_ms).to_string().into_bytes()).collect()
}

/// Writes partition 1's backlog, then reads topic `topic` at parallelism 1, aligned with
/// [`DRIFT_MS`], while partition 0 is written chunk by chunk; stops (draining, so every window
/// fires) once every record came.
fn run(kafka: &Service, topic: &str, lead_ms: i64) -> Run {
    let brokers = kafka.address();
    create_topic(&brokers, topic, 2);
    produce_to(&brokers, topic, 1, &values(1, 0..PER_PARTITION, lead_ms));
    produce_to(&brokers, topic, 0, &values(0, 0..CHUNK, lead_ms));
    let env = StreamEnvironment::new();
    env.set_parallelism(1);
    env.set_batch_size(64);
    env.enable_checkpointing(CheckpointConfig::on_request());
    let source = KafkaSource::builder()
        .brokers(&brokers)
        .topics([topic])
        .deserializer(|r: &KafkaRecord<'_>| -> Result<(i32, i64), BoxError> {
            Ok((r.partition(), std::str::from_utf8(r.payload().unwrap_or_default())?.parse()?))
        })
        .build()
        .unwrap()
        .timestamps(|e: &(i32, i64)| e.1)
        .unwrap();
    // Partition 0 is live and never ends: once it has no new records for a while, it is
    // idle and no longer holds partition 1 back, which then reads its rest.
    let strategy = WatermarkStrategy::monotonous()
        .with_interval(Duration::from_millis(1))
        .with_idleness(IDLENESS)
        .with_watermark_alignment("partitions", Duration::from_millis(DRIFT_MS as u64), Duration::from_millis(1));
    let log = Log::default();
    let logged = log.clone();
    let counts = env
        .from_source(source, strategy, topic)
        .uid("partitions")
        .map(move |e| {
            logged.lock().unwrap().push(e);
            e
        })
        .key_by(|e: &(i32, i64)| e.0)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(60)))
        .aggregate_with(Count, |partition: &i32, w, n| ((*partition, w.start), n))
        .uid("counts")
        .collect();
    let job = env.execute("aligned partitions").unwrap();
    for from in (CHUNK..PER_PARTITION).step_by(CHUNK as usize) {
        std::thread::sleep(CHUNK_EVERY);
        produce_to(&brokers, topic, 0, &values(0, from..from + CHUNK, lead_ms));
    }
    // Partition 0 never ends (it is live), so the test waits for the records, not the job.
    let deadline = Instant::now() + Duration::from_secs(60);
    while log.lock().unwrap().len() < 2 * PER_PARTITION as usize {
        assert!(Instant::now() < deadline, "only {} records came", log.lock().unwrap().len());
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir = tempfile::tempdir().unwrap();
    job.stop_with_savepoint(dir.path(), true).unwrap();
    let result = job.wait().unwrap();
    assert_eq!(result.metrics.total_all("late_records_dropped"), 0);
    let log = std::mem::take(&mut *log.lock().unwrap());
    Run { log, counts: counts.take().into_iter().collect() }
}

/// Each partition's records came once each, in offset order, and the windows counted them
/// as the topic holds them.
fn assert_output(run: &Run, lead_ms: i64) {
    let mut model = BTreeMap::new();
    for partition in 0..2 {
        let got: Vec<i64> = run.log.iter().filter(|e| e.0 == partition).map(|e| e.1).collect();
        let expected: Vec<i64> = (0..PER_PARTITION).map(|k| time(partition, k, lead_ms)).collect();
        assert!(got == expected, "partition {partition}: {} records, not each once in order", got.len());
        for t in expected {
            *model.entry((partition, t.div_euclid(60_000) * 60_000)).or_default() += 1;
        }
    }
    assert_eq!(run.counts, model);
}

#[test]
fn a_partition_far_ahead_waits_paused_while_the_other_is_read() {
    let Some(kafka) = Service::kafka() else { return };
    // Partition 1 starts a million seconds after partition 0 ends: above the bound as long as
    // partition 0 is read, and read once partition 0 has gone idle.
    let lead = 1_000_000_000;
    let run = run(&kafka, "far-ahead", lead);
    assert_output(&run, lead);
    let last_of_0 = run.log.iter().rposition(|e| e.0 == 0).unwrap();
    let early = run.log[..last_of_0].iter().filter(|e| e.0 == 1).count();
    assert!(early <= SLACK_RECORDS, "{early} records of the partition far ahead came while the other was read");
}

#[test]
fn a_partition_ahead_reads_in_step_within_the_drift() {
    let Some(kafka) = Service::kafka() else { return };
    // Partition 1 is 100 s ahead of partition 0 over 200 s of event time each: it waits until
    // partition 0 is 99 s in, then reads in step with it, pausing and resuming all along.
    let lead = 100_000;
    let run = run(&kafka, "ahead", lead);
    assert_output(&run, lead);
    // How far partition 1 got ahead of what partition 0 had emitted, while 0 was still read.
    let last_of_0 = run.log.iter().rposition(|e| e.0 == 0).unwrap();
    let mut latest_of_0 = None;
    let (mut read_of_1, mut largest_lead) = (0, i64::MIN);
    for &(partition, time) in &run.log[..last_of_0] {
        if partition == 0 {
            latest_of_0 = Some(time);
            continue;
        }
        read_of_1 += 1;
        if read_of_1 > SLACK_RECORDS {
            largest_lead = largest_lead.max(time - latest_of_0.unwrap_or(i64::MIN / 2));
        }
    }
    assert!(read_of_1 > SLACK_RECORDS, "partition 1 read along with partition 0: {read_of_1} records");
    assert!(largest_lead <= DRIFT_MS + SLACK_MS, "partition 1 ran {largest_lead} ms ahead of partition 0");
}
