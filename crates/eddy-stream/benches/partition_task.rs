//! Partition tasks next to one process: a word count (flat_map → marked key_by → 5 s tumbling
//! count) run in one process at parallelism 1, and as the partition tasks of its two
//! sub-topologies over in-memory topics, all on one thread, in the same run. What it shows is
//! the cost of what a task adds per record: a topic record decoded by its reader, each word
//! pre-aggregated and its partial counts encoded into the repartition topic and decoded again,
//! one record per call instead of batches. No Kafka: the topics are vectors.
//!
//! ```text
//! cargo bench -p eddy-stream --bench partition_task                 # 200,000 lines, 1, 2 and 4 partitions
//! PT_LINES=1000000 PT_PARTITIONS=1,4 cargo bench -p eddy-stream --bench partition_task
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy_core::time::MAX_WATERMARK;
use eddy_core::{Barrier, Output, Record, Timestamp};
use eddy_runtime::fan_out::combine;
use eddy_runtime::graph::{erase, AnyOutput, BuildContext};
use eddy_runtime::partition_task::{PartitionTask, TaskSpec};
use eddy_runtime::topic::{
    InputTopic, Outbox, Outgoing, OutputTopic, TopicReader, TopicReaderFactory, TopicRecord, TopicWriterFactory,
};
use eddy_stream::prelude::*;

const WORDS: [&str; 16] = [
    "to", "be", "or", "not", "that", "is", "the", "question", "whether", "tis", "nobler", "in", "mind", "suffer",
    "slings", "arrows",
];

fn main() {
    let lines: usize = std::env::var("PT_LINES").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let partitions: Vec<usize> = std::env::var("PT_PARTITIONS")
        .unwrap_or_else(|_| "1,2,4".into())
        .split(',')
        .map(|p| p.trim().parse().expect("PT_PARTITIONS: numbers"))
        .collect();
    let input = generate(lines);
    let words: usize = input.iter().map(|l| l.split(' ').count() - 1).sum();
    println!("# word count, {lines} lines, {words} words, {}", machine());
    println!("| config | wall s | M words/s | vs one process | repartition records | repartition MB | results |");
    println!("|---|---|---|---|---|---|---|");
    let (wall, results) = one_process(&input);
    let rate = |wall: Duration| words as f64 / wall.as_secs_f64() / 1e6;
    println!("| one process, p=1 | {:.2} | {:.2} | 1.00 | - | - | {results} |", wall.as_secs_f64(), rate(wall));
    for p in partitions {
        let run = tasks(&input, p);
        assert_eq!(run.results, results, "the tasks' results differ from one process's");
        println!(
            "| tasks, {p} partition(s), one thread | {:.2} | {:.2} | {:.2} | {} | {:.1} | {} |",
            run.wall.as_secs_f64(),
            rate(run.wall),
            rate(run.wall) / rate(wall),
            run.repartition_records,
            run.repartition_bytes as f64 / 1e6,
            run.results
        );
    }
}

/// `"<ms>\t<words>"` lines, 10 ms apart, 4 to 11 words each.
fn generate(n: usize) -> Vec<String> {
    let mut seed = 42u64;
    let mut next = move || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize
    };
    (0..n)
        .map(|i| {
            let words: Vec<&str> = (0..4 + next() % 8).map(|_| WORDS[next() % WORDS.len()]).collect();
            format!("{}\t{}", i * 10, words.join(" "))
        })
        .collect()
}

fn time_of(line: &str) -> i64 {
    line.split('\t').next().and_then(|ms| ms.parse().ok()).expect("a line starts with its ms")
}

/// The word count after its source; results are counted, not kept.
fn word_count(lines: DataStream<String>, counted: Arc<AtomicU64>) -> DataStream<String> {
    let counts = lines
        .flat_map(|l: String| l.split('\t').nth(1).unwrap_or_default().split(' ').map(String::from).collect::<Vec<_>>())
        .key_by(|w: &String| w.clone())
        .repartitioned(Repartitioned::named("words"))
        .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
        .aggregate_with(Count, |word, window, n| format!("{}\t{word}\t{n}", window.end))
        .uid("count");
    counts.map(move |c| {
        counted.fetch_add(1, Ordering::Relaxed);
        c
    })
}

fn one_process(input: &[String]) -> (Duration, u64) {
    let env = StreamEnvironment::new();
    let counted = Arc::new(AtomicU64::new(0));
    let lines = env
        .from_collection(input.to_vec())
        .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |l: &String| time_of(l));
    word_count(lines, counted.clone()).for_each(|_| {});
    let started = Instant::now();
    env.execute("one process").unwrap().wait().unwrap();
    (started.elapsed(), counted.load(Ordering::Relaxed))
}

struct TasksRun {
    wall: Duration,
    results: u64,
    repartition_records: usize,
    repartition_bytes: usize,
}

/// Sub-topology 0's tasks read all their partitions, then sub-topology 1's read what the
/// first wrote; one thread, in that order.
fn tasks(input: &[String], partitions: usize) -> TasksRun {
    let env = StreamEnvironment::new();
    let counted = Arc::new(AtomicU64::new(0));
    let lines = env
        .from_collection(Vec::<String>::new())
        .read_from_topic(InputTopic { topic: "lines".into(), reader: Arc::new(Lines) });
    word_count(lines, counted.clone())
        .add_sink("Out", |_, _| Ok(Discard))
        .write_to_topic(OutputTopic { topic: "out".into(), writer: Arc::new(Discarding) });
    let plan = env.distributed_plan("bench").unwrap();
    let (graph, config) = env.take_job().unwrap();
    let payloads: Vec<Vec<Vec<u8>>> = (0..partitions)
        .map(|p| input.iter().skip(p).step_by(partitions).map(|l| l.clone().into_bytes()).collect())
        .collect();
    let started = Instant::now();
    let build = |sub_topology, partition| {
        let spec = TaskSpec {
            graph: &graph,
            plan: &plan,
            sub_topology,
            partition,
            partitions,
            config: &config,
            restored: None,
        };
        PartitionTask::build(spec).unwrap()
    };
    // What sub-topology 0 writes, per partition of the repartition topic, with its producer.
    let mut topic: Vec<Vec<(usize, Outgoing)>> = vec![Vec::new(); partitions];
    let (mut records, mut bytes) = (0, 0);
    for (p, lines) in payloads.iter().enumerate() {
        let mut task = build(0, p);
        for (offset, line) in lines.iter().enumerate() {
            let record = TopicRecord {
                partition: p as i32,
                offset: offset as i64,
                key: None,
                payload: Some(line),
                timestamp: None,
            };
            task.record("lines", &record).unwrap();
            route(&mut topic, p, task.drain(), &mut records, &mut bytes);
        }
        task.end_of_topic("lines").unwrap();
        route(&mut topic, p, task.drain(), &mut records, &mut bytes);
    }
    for (p, messages) in topic.iter().enumerate() {
        let mut task = build(1, p);
        let name = "bench-words-repartition";
        for (offset, (producer, message)) in messages.iter().enumerate() {
            match message {
                Outgoing::Record(r) => {
                    let record = TopicRecord {
                        partition: p as i32,
                        offset: offset as i64,
                        key: None,
                        payload: Some(&r.payload),
                        timestamp: r.timestamp,
                    };
                    task.record(name, &record).unwrap()
                }
                Outgoing::Watermark { watermark, .. } => task.watermark(name, *producer, *watermark).unwrap(),
                Outgoing::End { .. } => task.end(name, *producer).unwrap(),
            }
            task.drain();
        }
        assert!(task.is_finished());
    }
    TasksRun {
        wall: started.elapsed(),
        results: counted.load(Ordering::Relaxed),
        repartition_records: records,
        repartition_bytes: bytes,
    }
}

/// Puts what producer `p` sent into the repartition topic's partitions.
fn route(topic: &mut [Vec<(usize, Outgoing)>], p: usize, out: Vec<Outgoing>, records: &mut usize, bytes: &mut usize) {
    for item in out {
        match &item {
            Outgoing::Record(r) => {
                *records += 1;
                *bytes += r.payload.len() + 8;
                topic[r.partition.unwrap_or(0) as usize].push((p, item));
            }
            _ => topic.iter_mut().for_each(|partition| partition.push((p, item.clone()))),
        }
    }
}

/// Reads `"<ms>\t<text>"` lines: the line with its ms as event time, watermarks monotonous,
/// one every [`WATERMARK_EVERY`] records.
struct LineReader {
    out: Box<dyn Output<String>>,
    watermark: Timestamp,
    batch: Vec<Record<String>>,
    seen: u64,
}

/// Records between two watermarks of the reader: at 10 ms per line, 10 s of event time.
const WATERMARK_EVERY: u64 = 1_000;

struct Lines;

impl TopicReaderFactory for Lines {
    fn build(&self, _: &BuildContext, outputs: Vec<AnyOutput>) -> eddy_core::Result<Box<dyn TopicReader>> {
        Ok(Box::new(LineReader {
            out: combine::<String>(outputs)?,
            watermark: Timestamp::MIN,
            batch: Vec::new(),
            seen: 0,
        }))
    }
}

impl TopicReader for LineReader {
    fn record(&mut self, record: &TopicRecord<'_>) -> eddy_core::Result<()> {
        let line = std::str::from_utf8(record.payload.unwrap_or_default()).unwrap_or_default().to_string();
        let time = time_of(&line);
        self.batch.push(Record::new(line, time));
        self.out.records(&mut self.batch)?;
        self.seen += 1;
        // Periodic watermarks, as a source's strategy emits them (not one per record).
        if self.seen % WATERMARK_EVERY == 0 && time - 1 > self.watermark {
            self.watermark = time - 1;
            self.out.watermark(self.watermark)?;
        }
        Ok(())
    }
    fn tick(&mut self, now: Timestamp) -> eddy_core::Result<()> {
        self.out.tick(now)
    }
    fn barrier(&mut self, barrier: Barrier) -> eddy_core::Result<()> {
        self.out.barrier(barrier)
    }
    fn finish(&mut self) -> eddy_core::Result<()> {
        self.out.watermark(MAX_WATERMARK)?;
        self.out.finish()
    }
}

/// An output topic's writer that drops what it gets (the results are counted before it).
struct Discarding;

impl TopicWriterFactory for Discarding {
    fn build(&self, _: &BuildContext, topic: Arc<str>, outbox: Outbox) -> eddy_core::Result<AnyOutput> {
        Ok(erase::<String>(Box::new(Dropped { _topic: topic, _outbox: outbox })))
    }
}

struct Dropped {
    _topic: Arc<str>,
    _outbox: Outbox,
}

impl Output<String> for Dropped {
    fn records(&mut self, batch: &mut Vec<Record<String>>) -> eddy_core::Result<()> {
        batch.clear();
        Ok(())
    }
    fn watermark(&mut self, _: Timestamp) -> eddy_core::Result<()> {
        Ok(())
    }
    fn idle(&mut self, _: bool) -> eddy_core::Result<()> {
        Ok(())
    }
    fn tick(&mut self, _: Timestamp) -> eddy_core::Result<()> {
        Ok(())
    }
    fn barrier(&mut self, _: Barrier) -> eddy_core::Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> eddy_core::Result<()> {
        Ok(())
    }
}

/// The sink of the tasks' graph; the task builds the output topic's writer instead.
struct Discard;

impl Sink<String> for Discard {
    fn write(&mut self, _: String, _: Timestamp) -> Result<(), BoxError> {
        Ok(())
    }
}

/// `<cores> cores, <CPU model>`.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{} cores, {cpu}", std::thread::available_parallelism().map_or(1, |n| n.get()))
}
