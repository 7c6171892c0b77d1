//! The writer and the committer together, on an in-memory store with both ways of staging
//! parts: multipart uploads and hidden staging objects.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::ObjectStoreExt;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;
use crate::committer::Manifest;
use crate::io_runtime::block_on;
use crate::{DateTimeBucketAssigner, FileSink, FilesCommitter};
use eddy_stream::sink::Committer;

/// Both staging strategies.
fn storages() -> [Storage; 2] {
    [Storage::in_memory(), Storage::from_store(Arc::new(InMemory::new()), "memory-staged://")]
}

/// Every object in the store with its bytes, by key.
fn objects(storage: &Storage) -> BTreeMap<String, Vec<u8>> {
    let store = storage.store().clone();
    block_on(async move {
        let listed: Vec<_> = store.list(None).try_collect().await.unwrap();
        let mut objects = BTreeMap::new();
        for meta in listed {
            let bytes = store.get(&meta.location).await.unwrap().bytes().await.unwrap();
            objects.insert(meta.location.to_string(), bytes.to_vec());
        }
        objects
    })
    .unwrap()
}

/// What a reader sees: objects with no component starting with `_` or `.`, as lines.
fn visible(storage: &Storage) -> BTreeMap<String, Vec<String>> {
    objects(storage)
        .into_iter()
        .filter(|(key, _)| !key.split('/').any(|c| c.starts_with('_') || c.starts_with('.')))
        .map(|(key, bytes)| (key, String::from_utf8(bytes).unwrap().lines().map(String::from).collect()))
        .collect()
}

fn hidden(storage: &Storage, dir: &str) -> Vec<String> {
    objects(storage).into_keys().filter(|k| k.contains(&format!("/_eddy/{dir}/"))).collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Trip {
    id: u64,
    airport: String,
}

fn trip(id: u64) -> Trip {
    Trip { id, airport: ["JFK", "LGA"][id as usize % 2].to_string() }
}

const HOUR: i64 = 3_600_000;
/// 2026-11-29T15:00:00Z.
const T0: i64 = 1_795_964_400_000;

fn sink(storage: Storage) -> FileSink<Trip> {
    FileSink::new(storage, "trips").bucket_assigner(DateTimeBucketAssigner::event_time(PathPattern::hive_hourly()))
}

fn writer_and_committer<T: Serialize + Send + 'static>(sink: FileSink<T>) -> (FileSinkWriter<T>, FilesCommitter) {
    let (config, committer) = sink.build().unwrap();
    (FileSinkWriter::new(config, 0), committer)
}

#[test]
fn parts_are_invisible_until_committed_then_land_in_their_buckets() {
    for storage in storages() {
        let (mut writer, committer) = writer_and_committer(sink(storage.clone()));
        committer.clean_up(&[]).unwrap();
        for (id, time) in [(1, T0), (2, T0 + 10), (3, T0 + HOUR)] {
            writer.write_at(trip(id), time, T0).unwrap();
        }
        assert!(visible(&storage).is_empty(), "{}: {:?}", storage.url(), objects(&storage).keys());
        let txn = writer.close_all(1, T0).unwrap().unwrap();
        assert_eq!((txn.parts.len(), txn.records()), (2, 3));
        assert!(visible(&storage).is_empty(), "pre-committed parts are still invisible");
        committer.commit(&txn).unwrap();
        committer.commit(&txn).unwrap(); // a replayed commit changes nothing
        let seen = visible(&storage);
        let by_dir: BTreeMap<&str, &Vec<String>> =
            seen.iter().map(|(key, lines)| (key.rsplit_once('/').unwrap().0, lines)).collect();
        let first = r#"{"id":1,"airport":"LGA"}"#;
        assert_eq!(
            by_dir,
            BTreeMap::from([
                (
                    "trips/year=2026/month=11/day=29/hour=15",
                    &vec![first.to_string(), r#"{"id":2,"airport":"JFK"}"#.into()]
                ),
                ("trips/year=2026/month=11/day=29/hour=16", &vec![r#"{"id":3,"airport":"LGA"}"#.to_string()]),
            ]),
            "{}",
            storage.url()
        );
        assert!(seen.keys().all(|k| k.ends_with(".jsonl") && k.contains("/part-")));
        assert!(hidden(&storage, "staging").is_empty() && hidden(&storage, "uploads").is_empty());
        // The manifest records what the commit made visible.
        let manifests = hidden(&storage, "commits");
        assert_eq!(manifests.len(), 1);
        let manifest: Manifest = serde_json::from_slice(&objects(&storage)[&manifests[0]]).unwrap();
        assert_eq!(manifest.parts.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(), seen.keys().collect::<Vec<_>>());
        assert_eq!(writer.close_all(2, T0).unwrap(), None, "nothing written, nothing to commit");
    }
}

#[test]
fn what_cannot_be_written_goes_to_the_error_prefix() {
    #[derive(Clone, Serialize)]
    struct Nested {
        id: u64,
        inner: Option<BTreeMap<String, u8>>,
    }
    for storage in storages() {
        let sink = FileSink::new(storage.clone(), "out")
            .bucket_assigner(DateTimeBucketAssigner::event_time(PathPattern::hive_daily()))
            .format(crate::Format::csv())
            .validator(|n: &Nested| if n.id == 13 { Err("unlucky".into()) } else { Ok(()) })
            .error_prefix("failed/!{firehose:error-output-type}/")
            .unwrap();
        let (mut writer, committer) = writer_and_committer(sink);
        writer.write_at(Nested { id: 1, inner: None }, T0, T0).unwrap();
        writer.write_at(Nested { id: 2, inner: Some(BTreeMap::from([("a".into(), 1)])) }, T0, T0).unwrap(); // CSV has no maps
        writer.write_at(Nested { id: 13, inner: None }, T0, T0).unwrap();
        writer.write_at(Nested { id: 4, inner: None }, NO_TIMESTAMP, T0).unwrap();
        writer.write_at(Nested { id: 5, inner: None }, i64::MAX, T0).unwrap();
        let txn = writer.close_all(1, T0).unwrap().unwrap();
        committer.commit(&txn).unwrap();
        let seen = visible(&storage);
        let data: Vec<_> = seen.iter().filter(|(k, _)| k.starts_with("out/")).collect();
        assert_eq!(data.len(), 1);
        assert_eq!(data[0].1, &vec!["id,inner".to_string(), "1,".to_string()]);
        let errors: BTreeMap<String, Vec<ErrorRecord>> = seen
            .iter()
            .filter(|(k, _)| k.starts_with("failed/"))
            .map(|(k, lines)| {
                let kind = k.split('/').nth(1).unwrap().to_string();
                (kind, lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect())
            })
            .collect();
        let ids = |kind: &str| errors[kind].iter().map(|e| e.record["id"].as_u64().unwrap()).collect::<Vec<_>>();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(ids("format-conversion-failed"), [2]);
        assert_eq!(ids("processing-failed"), [13]);
        assert_eq!(ids("bucket-assignment-failed"), [4, 5]);
        assert_eq!(errors["processing-failed"][0].error_message, "unlucky");
        assert_eq!(errors["processing-failed"][0].event_time, Some(T0));
        assert!(errors["bucket-assignment-failed"][0].error_message.contains("no event time"));
        assert!(errors["format-conversion-failed"][0].error_message.contains("CSV"));
    }
}

#[test]
fn committer_refuses_forged_transactions_and_names_lost_parts() {
    let storage = Storage::in_memory();
    let (mut writer, committer) = writer_and_committer(sink(storage.clone()));
    writer.write_at(trip(1), T0, T0).unwrap();
    let txn = writer.close_all(1, T0).unwrap().unwrap();
    let mut forged = txn.clone();
    forged.parts[0].key = "elsewhere/part-x.jsonl".into();
    assert!(committer.commit(&forged).unwrap_err().to_string().contains("outside the sink"));
    let mut forged = txn.clone();
    forged.parts[0].key = "trips/_eddy/commits/x".into();
    assert!(committer.commit(&forged).is_err());
    // Aborted: the upload is gone, so a later commit cannot find the part anywhere.
    committer.abort(&txn).unwrap();
    let lost = committer.commit(&txn).unwrap_err().to_string();
    assert!(lost.contains(&txn.parts[0].key) && lost.contains("memory:///trips"), "{lost}");
    assert!(visible(&storage).is_empty());
}

#[test]
fn checkpoint_ids_must_grow_and_a_failed_writer_stays_failed() {
    let (mut writer, _) = writer_and_committer(sink(Storage::in_memory()));
    writer.write_at(trip(1), T0, T0).unwrap();
    writer.close_all(5, T0).unwrap().unwrap();
    writer.write_at(trip(2), T0, T0).unwrap();
    assert!(writer.close_all(5, T0).unwrap_err().to_string().contains("must grow"));
    assert_eq!(writer.close_all(6, T0).unwrap().unwrap().records(), 1);
}

/// A record of the rolling test: its bucket and the time it was written are in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Timed {
    seq: u64,
    bucket: u8,
    at: i64,
    pad: String,
}

#[derive(Debug, Clone)]
enum Step {
    Write { bucket: u8, pad: usize },
    Advance(i64),
    Checkpoint,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..3u8, 0..40usize).prop_map(|(bucket, pad)| Step::Write { bucket, pad }),
        3 => (0..30_000i64).prop_map(Step::Advance),
        1 => Just(Step::Checkpoint),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The real writer under a rolling policy: every record once, parts never span a
    /// checkpoint, never grow past the size before a record, never outlive the rollover or
    /// inactivity interval, and never roll without a reason.
    #[test]
    fn parts_roll_by_size_age_inactivity_and_checkpoints(
        steps in prop::collection::vec(step(), 1..120),
        part_size in 60u64..400,
        rollover in 5_000i64..90_000,
        inactivity in 2_000i64..40_000,
    ) {
        let storage = Storage::in_memory();
        let policy = RollingPolicy::on_checkpoint()
            .with_part_size(part_size)
            .with_rollover_interval(Duration::from_millis(rollover as u64))
            .with_inactivity_interval(Duration::from_millis(inactivity as u64));
        let sink = FileSink::new(storage, "t")
            .bucket_assigner(|r: &Timed, _: &BucketContext| format!("b={}", r.bucket))
            .rolling_policy(policy);
        let (mut writer, _) = writer_and_committer(sink);
        let (mut now, mut checkpoint, mut seq) = (T0, 1u64, 0u64);
        let mut epoch_of = Vec::new();
        let mut parts = Vec::new();
        for step in steps.iter().chain([Step::Checkpoint].iter()) {
            match step {
                Step::Write { bucket, pad } => {
                    let record = Timed { seq, bucket: *bucket, at: now, pad: "x".repeat(*pad) };
                    writer.write_at(record, now, now).unwrap();
                    epoch_of.push(checkpoint);
                    seq += 1;
                }
                Step::Advance(ms) => now += ms,
                Step::Checkpoint => {
                    if let Some(txn) = writer.close_all(checkpoint, now).unwrap() {
                        parts.extend(txn.parts);
                    }
                    checkpoint += 1;
                }
            }
        }
        let config = writer.config.clone();
        let committer = FilesCommitter::new(config.storage.clone(), config.layout.clone(), vec!["t".into()], "t".into());
        let mut seen: Vec<Vec<Timed>> = Vec::new();
        for part in &parts {
            let txn = FilesTxn { checkpoint: 1, subtask: 0, token: writer.token.clone(), parts: vec![part.clone()] };
            committer.commit(&txn).unwrap();
        }
        let all = visible(&config.storage);
        for part in &parts {
            let records: Vec<Timed> = all[&part.key].iter().map(|l| serde_json::from_str(l).unwrap()).collect();
            prop_assert_eq!(records.len() as u64, part.records);
            seen.push(records);
        }
        let size = |r: &Timed| serde_json::to_vec(r).unwrap().len() as u64 + 1;
        let mut written: Vec<u64> = seen.iter().flatten().map(|r| r.seq).collect();
        written.sort_unstable();
        prop_assert_eq!(written, (0..seq).collect::<Vec<_>>(), "every record exactly once");
        for records in &seen {
            let (first, last) = (&records[0], &records[records.len() - 1]);
            prop_assert!(records.iter().all(|r| r.bucket == first.bucket));
            prop_assert!(records.iter().all(|r| epoch_of[r.seq as usize] == epoch_of[first.seq as usize]), "spans a checkpoint");
            let before_last: u64 = records[..records.len() - 1].iter().map(size).sum();
            prop_assert!(before_last < part_size, "{before_last} bytes before its last record");
            prop_assert!(last.at - first.at < rollover, "open {} ms", last.at - first.at);
            prop_assert!(records.windows(2).all(|w| w[1].at - w[0].at < inactivity), "idle too long");
        }
        // A bucket's next part within the same checkpoint needs a reason to exist.
        let mut by_bucket: BTreeMap<u8, Vec<&Vec<Timed>>> = BTreeMap::new();
        for records in &seen {
            by_bucket.entry(records[0].bucket).or_default().push(records);
        }
        for runs in by_bucket.values_mut() {
            runs.sort_by_key(|r| r[0].seq);
            for pair in runs.windows(2) {
                let (previous, next) = (pair[0], &pair[1][0]);
                let (first, last) = (&previous[0], &previous[previous.len() - 1]);
                prop_assert!(last.seq < next.seq, "a bucket's parts hold runs of its records");
                let same_epoch = epoch_of[last.seq as usize] == epoch_of[next.seq as usize];
                let full = previous.iter().map(size).sum::<u64>() >= part_size;
                let old = next.at - first.at >= rollover;
                let idle = next.at - last.at >= inactivity;
                prop_assert!(!same_epoch || full || old || idle, "rolled for no reason before {}", next.seq);
            }
        }
    }
}

/// One step of a job with two sink subtasks, as the checkpoint coordinator drives them.
#[derive(Debug, Clone)]
enum Op {
    /// A subtask writes this many records.
    Write(usize, u8),
    /// A barrier: every subtask pre-commits; its transactions wait for the checkpoint.
    Barrier,
    /// The last barrier's checkpoint completes.
    Complete,
    /// The job commits every completed transaction.
    Commit,
    /// The process dies and restarts from its last complete checkpoint: commits its
    /// transactions again, cleans up, and starts new writers.
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, 1..4u8).prop_map(|(subtask, n)| Op::Write(subtask, n)),
        2 => Just(Op::Barrier),
        2 => Just(Op::Complete),
        2 => Just(Op::Commit),
        1 => Just(Op::Crash),
    ]
}

/// The job as the model sees it.
struct Job {
    storage: Storage,
    config: Arc<SinkConfig<Trip>>,
    committer: FilesCommitter,
    writers: Vec<FileSinkWriter<Trip>>,
    checkpoint: u64,
    in_flight: Vec<FilesTxn>,
    completed: Vec<FilesTxn>,
    committed_txns: Vec<FilesTxn>,
    next: u64,
}

impl Job {
    fn new(storage: Storage) -> Job {
        let (config, committer) = sink(storage.clone()).build().unwrap();
        committer.clean_up(&[]).unwrap();
        let mut job = Job {
            storage,
            config,
            committer,
            writers: Vec::new(),
            checkpoint: 0,
            in_flight: Vec::new(),
            completed: Vec::new(),
            committed_txns: Vec::new(),
            next: 0,
        };
        job.start();
        job
    }

    fn start(&mut self) {
        self.writers = (0..2).map(|subtask| FileSinkWriter::new(self.config.clone(), subtask)).collect();
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Write(subtask, n) => {
                for _ in 0..n {
                    // Records spread over three hours, so each transaction has several parts.
                    let time = T0 + (self.next as i64 % 3) * HOUR;
                    self.writers[subtask].write_at(trip(self.next), time, T0).unwrap();
                    self.next += 1;
                }
            }
            Op::Barrier => {
                self.checkpoint += 1;
                for writer in &mut self.writers {
                    if let Some(txn) = writer.close_all(self.checkpoint, T0).unwrap() {
                        self.in_flight.push(txn);
                    }
                }
            }
            Op::Complete => self.completed.append(&mut self.in_flight),
            Op::Commit => self.commit_completed(),
            Op::Crash => self.crash(),
        }
    }

    fn commit_completed(&mut self) {
        for txn in &self.completed {
            self.committer.commit(txn).unwrap();
            if !self.committed_txns.contains(txn) {
                self.committed_txns.push(txn.clone());
            }
        }
    }

    fn crash(&mut self) {
        self.writers.clear();
        self.in_flight.clear();
        self.commit_completed();
        self.committer.clean_up(&self.completed).unwrap();
        assert!(hidden(&self.storage, "staging").is_empty() && hidden(&self.storage, "uploads").is_empty());
        self.start();
    }

    /// Every visible record, sorted.
    fn seen(&self) -> Vec<String> {
        let mut lines: Vec<String> = visible(&self.storage).into_values().flatten().collect();
        lines.sort();
        lines
    }

    fn expected(&self) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        let all = objects(&self.storage);
        for part in self.committed_txns.iter().flat_map(|t| &t.parts) {
            let text = String::from_utf8(all[&part.key].clone()).unwrap();
            assert_eq!(text.lines().count() as u64, part.records);
            lines.extend(text.lines().map(String::from));
        }
        lines.sort();
        lines
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Whatever the interleaving of writes, checkpoints, commits and crashes, a reader sees
    /// exactly the records of committed transactions, each once, and restores leave nothing
    /// staged behind.
    #[test]
    fn readers_see_exactly_the_committed_records(ops in prop::collection::vec(op(), 0..40), staged in any::<bool>()) {
        let [multipart, staging] = storages();
        let mut job = Job::new(if staged { staging } else { multipart });
        for op in &ops {
            job.apply(op);
            prop_assert_eq!(job.seen(), job.expected());
        }
        job.crash();
        let seen = job.seen();
        let mut ids: Vec<u64> =
            seen.iter().map(|l| serde_json::from_str::<Trip>(l).unwrap().id).collect();
        let count = ids.len();
        ids.dedup();
        prop_assert_eq!(ids.len(), count, "no record twice");
        let committed: u64 = job.committed_txns.iter().map(FilesTxn::records).sum();
        prop_assert_eq!(count as u64, committed);
    }
}
