//! Partition tasks: every sub-topology of a job run as tasks, one per partition, over
//! in-memory topics, in an order proptest shuffles — the output equals a sequential model
//! and a one-process run of the same job. Then failure injection: tasks are thrown away at
//! random points and rebuilt from their last snapshot, replaying their input from the
//! positions stored with it, and what they produced after it is dropped (an aborted
//! transaction): the output is still exactly the model's.
//!
//! Sources read topics of utf8 lines `"<ms>\t<text>"` through a reader written here (the
//! event time is the line's, watermarks monotonous); sinks write a topic `out` through a
//! writer written here, or are transactional sinks the tasks run as they are (`collect()`,
//! an exactly-once file sink), which the tasks' checkpoints commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use eddy_core::time::MAX_WATERMARK;
use eddy_core::{Barrier, Output, Record, Timestamp};
use eddy_runtime::fan_out::combine;
use eddy_runtime::graph::{erase, AnyOutput, BuildContext, JobGraph};
use eddy_runtime::metrics::names;
use eddy_runtime::partition_task::{PartitionTask, TaskSpec, TaskState};
use eddy_runtime::topic::{
    InputTopic, OutRecord, Outbox, Outgoing, OutputTopic, TopicReader, TopicReaderFactory, TopicRecord,
    TopicWriterFactory,
};
use eddy_runtime::JobConfig;
use eddy_stream::prelude::*;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// The test's topic reader and writer.

/// Reads lines `"<ms>\t<text>"`: the record is the line, its event time the ms; after each
/// record the watermark is one below the highest time seen (monotonous).
struct LineReader {
    out: Box<dyn Output<String>>,
    watermark: Timestamp,
}

struct Lines;

impl TopicReaderFactory for Lines {
    fn build(&self, _: &BuildContext, outputs: Vec<AnyOutput>) -> eddy_core::Result<Box<dyn TopicReader>> {
        Ok(Box::new(LineReader { out: combine::<String>(outputs)?, watermark: Timestamp::MIN }))
    }
}

fn time_of(line: &str) -> i64 {
    line.split('\t').next().and_then(|ms| ms.parse().ok()).expect("a line starts with its ms")
}

impl TopicReader for LineReader {
    fn record(&mut self, record: &TopicRecord<'_>) -> eddy_core::Result<()> {
        let line = std::str::from_utf8(record.payload.expect("a line")).expect("utf8").to_string();
        let time = time_of(&line);
        self.out.records(&mut vec![Record::new(line, time)])?;
        if time - 1 > self.watermark {
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

/// Writes each string as a record of its topic.
struct StringWriter {
    topic: Arc<str>,
    outbox: Outbox,
}

struct Strings;

impl TopicWriterFactory for Strings {
    fn build(&self, _: &BuildContext, topic: Arc<str>, outbox: Outbox) -> eddy_core::Result<AnyOutput> {
        Ok(erase::<String>(Box::new(StringWriter { topic, outbox })))
    }
}

impl Output<String> for StringWriter {
    fn records(&mut self, batch: &mut Vec<Record<String>>) -> eddy_core::Result<()> {
        let topic = &self.topic;
        self.outbox.extend(batch.drain(..).map(|r| {
            Outgoing::Record(OutRecord {
                topic: topic.clone(),
                partition: None,
                key: None,
                payload: r.value.into_bytes(),
                timestamp: Some(r.timestamp),
            })
        }));
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

// ---------------------------------------------------------------------------------------
// The jobs, each built for a distributed run (sources read topics, the sink writes `out`)
// or for one process (sources are collections with an assigner, the sink collects).

/// Where a job's lines come from, and where its results go.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Sources read topics, the sink writes topic `out`.
    Distributed,
    /// Sources read topics, the sink is an unmarked `collect()`: a transactional sink the
    /// tasks run as they are.
    DistributedCollect,
    OneProcess,
}

/// A source of `lines`, read from topic `topic` in a distributed run.
fn source(env: &StreamEnvironment, mode: Mode, topic: &str, lines: &[String]) -> DataStream<String> {
    match mode {
        Mode::Distributed | Mode::DistributedCollect => env
            .from_collection(Vec::<String>::new())
            .read_from_topic(InputTopic { topic: topic.to_string(), reader: Arc::new(Lines) }),
        Mode::OneProcess => env
            .from_collection(lines.to_vec())
            .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |l: &String| time_of(l)),
    }
}

/// The results: to topic `out`, or collected.
fn sink(results: DataStream<String>, mode: Mode) -> Option<Collected<String>> {
    match mode {
        Mode::Distributed => {
            results
                .add_sink("Out", |_, _| Ok(Discard))
                .write_to_topic(OutputTopic { topic: "out".into(), writer: Arc::new(Strings) });
            None
        }
        Mode::OneProcess | Mode::DistributedCollect => Some(results.collect()),
    }
}

/// A sink for the distributed jobs' graphs; the task builds the writer of `out` instead.
struct Discard;

impl Sink<String> for Discard {
    fn write(&mut self, _: String, _: Timestamp) -> Result<(), BoxError> {
        Ok(())
    }
}

fn words(line: &str) -> Vec<String> {
    line.split('\t').nth(1).unwrap_or_default().split(' ').filter(|w| !w.is_empty()).map(String::from).collect()
}

/// A word count in 5 s tumbling event-time windows over a marked key_by.
fn word_count(env: &StreamEnvironment, mode: Mode, lines: &[String]) -> Option<Collected<String>> {
    let counts = source(env, mode, "lines", lines)
        .flat_map(|l| words(&l))
        .key_by(|w: &String| w.clone())
        .repartitioned(Repartitioned::named("words"))
        .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
        .aggregate_with(Count, |word, window, n| format!("{}\t{word}\t{n}", window.end))
        .uid("count");
    sink(counts, mode)
}

/// The word count's results, computed sequentially.
fn word_count_model(lines: &[String]) -> Vec<String> {
    let mut counts: BTreeMap<(i64, String), u64> = BTreeMap::new();
    for line in lines {
        let end = (time_of(line).div_euclid(5_000) + 1) * 5_000;
        for word in words(line) {
            *counts.entry((end, word)).or_default() += 1;
        }
    }
    sorted(counts.into_iter().map(|((end, word), n)| format!("{end}\t{word}\t{n}")).collect())
}

/// map → filter: one sub-topology, no state.
fn stateless(env: &StreamEnvironment, mode: Mode, lines: &[String]) -> Option<Collected<String>> {
    let out = source(env, mode, "lines", lines).map(|l| l.to_uppercase()).filter(|l| words(l).len() % 2 == 1);
    sink(out, mode)
}

fn stateless_model(lines: &[String]) -> Vec<String> {
    sorted(lines.iter().map(|l| l.to_uppercase()).filter(|l| words(l).len() % 2 == 1).collect())
}

/// Two sources unioned, then counted per 5 s window: the window sees the minimum of both
/// sources' watermarks through a cut.
fn union(env: &StreamEnvironment, mode: Mode, lines: &[String]) -> Option<Collected<String>> {
    let (a, b): (Vec<String>, Vec<String>) = lines.iter().cloned().partition(|l| words(l).len() % 2 == 0);
    let a = source(env, mode, "a", &a);
    let b = source(env, mode, "b", &b);
    let counts = a
        .union(&[b])
        .map(|l| format!("{}\t{}", time_of(&l), words(&l).len()))
        .key_by(|l: &String| l.split('\t').nth(1).unwrap_or_default().to_string())
        .repartitioned(Repartitioned::named("lengths"))
        .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
        .aggregate_with(Count, |len, window, n| format!("{}\t{len}\t{n}", window.end))
        .uid("lengths");
    sink(counts, mode)
}

fn union_model(lines: &[String]) -> Vec<String> {
    let mut counts: BTreeMap<(i64, usize), u64> = BTreeMap::new();
    for line in lines {
        let end = (time_of(line).div_euclid(5_000) + 1) * 5_000;
        *counts.entry((end, words(line).len())).or_default() += 1;
    }
    sorted(counts.into_iter().map(|((end, len), n)| format!("{end}\t{len}\t{n}")).collect())
}

/// key_by → window → a marked rebalance → map: three sub-topologies, two cuts in a row.
fn two_cuts(env: &StreamEnvironment, mode: Mode, lines: &[String]) -> Option<Collected<String>> {
    let counts = source(env, mode, "lines", lines)
        .flat_map(|l| words(&l))
        .key_by(|w: &String| w.clone())
        .repartitioned(Repartitioned::named("words"))
        .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
        .aggregate_with(Count, |word, window, n| (window.end, word.clone(), n))
        .uid("count")
        .repartition(Repartitioned::named("spread"))
        .map(|(end, word, n)| format!("{end}\t{word}\t{n}"));
    sink(counts, mode)
}

/// Sends lines of an odd number of words to a side output.
#[derive(Clone)]
struct SplitOdd(OutputTag<String>);

impl ProcessFunction<String, String> for SplitOdd {
    fn process_element(&mut self, line: String, ctx: &mut ProcessContext<'_, String>) {
        if words(&line).len() % 2 == 0 {
            ctx.collect(line);
        } else {
            ctx.output(&self.0, line);
        }
    }
}

/// A side output cut by a key_by and unioned back with the main output: the sub-topology
/// writes the side output's topic and reads it back, and the union merges an input of its
/// own task with a cut input.
fn side_output(env: &StreamEnvironment, mode: Mode, lines: &[String]) -> Option<Collected<String>> {
    let odd = OutputTag::<String>::new("odd");
    let split = source(env, mode, "lines", lines).process(SplitOdd(odd.clone()));
    let counts = split
        .side_output(&odd)
        .key_by(|l: &String| words(l).len())
        .repartitioned(Repartitioned::named("odd"))
        .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
        .aggregate_with(Count, |len, window, n| format!("{}\t{len}\t{n}", window.end))
        .uid("odd");
    let out = split.map(|l| format!("main\t{l}")).union(&[counts]);
    sink(out, mode)
}

fn side_output_model(lines: &[String]) -> Vec<String> {
    let (even, odd): (Vec<String>, Vec<String>) = lines.iter().cloned().partition(|l| words(l).len() % 2 == 0);
    let mut out = union_model(&odd);
    out.extend(even.iter().map(|l| format!("main\t{l}")));
    sorted(out)
}

fn sorted(mut values: Vec<String>) -> Vec<String> {
    values.sort();
    values
}

type Job = fn(&StreamEnvironment, Mode, &[String]) -> Option<Collected<String>>;

/// The job's output in one process.
fn one_process(job: Job, lines: &[String]) -> Vec<String> {
    let env = StreamEnvironment::new();
    env.set_parallelism(2);
    let collected = job(&env, Mode::OneProcess, lines).expect("collected");
    env.execute("one process").unwrap().wait().unwrap();
    sorted(collected.take())
}

/// The job's graph and plan for a distributed run.
fn distributed(job: Job, lines: &[String]) -> (JobGraph, eddy_runtime::distributed_plan::DistributedPlan, JobConfig) {
    let (graph, plan, config, _) = distributed_in(job, Mode::Distributed, lines);
    (graph, plan, config)
}

/// The job's graph, plan and `collect()` sink for a distributed run in `mode`.
fn distributed_in(
    job: Job,
    mode: Mode,
    lines: &[String],
) -> (JobGraph, eddy_runtime::distributed_plan::DistributedPlan, JobConfig, Option<Collected<String>>) {
    let env = StreamEnvironment::new();
    env.set_max_parallelism(16);
    let collected = job(&env, mode, lines);
    let plan = env.distributed_plan("app").unwrap();
    let (graph, config) = env.take_job().unwrap();
    (graph, plan, config, collected)
}

// ---------------------------------------------------------------------------------------
// In-memory topics and the tasks that run over them.

/// What a topic partition holds.
#[derive(Debug, Clone)]
enum Message {
    Record {
        payload: Vec<u8>,
        timestamp: Option<i64>,
    },
    /// A producing task's watermark.
    Watermark {
        producer: usize,
        watermark: Timestamp,
    },
    /// A producing task's end of input.
    End {
        producer: usize,
    },
    /// A bounded input topic's end (the end offset the run started with).
    EndOfTopic,
}

/// Splitmix64: the harness's choices, from proptest's seed.
struct Choices(u64);

impl Choices {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }

    /// True `percent` times in 100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// One task with its read positions, what it produced since its last commit, and its last
/// committed checkpoint: the state and the positions it was taken at.
struct Slot {
    sub_topology: usize,
    partition: usize,
    task: PartitionTask,
    positions: HashMap<String, usize>,
    pending: Vec<Outgoing>,
    /// Whether it read something since its last commit.
    dirty: bool,
    checkpoint: Option<(Vec<u8>, HashMap<String, usize>)>,
}

/// Every task of a job over in-memory topics, driven in an order `choices` picks.
struct Run<'a> {
    graph: &'a JobGraph,
    plan: &'a eddy_runtime::distributed_plan::DistributedPlan,
    config: &'a JobConfig,
    partitions: usize,
    topics: HashMap<String, Vec<Vec<Message>>>,
    slots: Vec<Slot>,
    next_checkpoint: u64,
    /// Tasks thrown away and rebuilt.
    failures: usize,
    /// Processing time, ms.
    now: i64,
}

impl<'a> Run<'a> {
    fn new(
        graph: &'a JobGraph,
        plan: &'a eddy_runtime::distributed_plan::DistributedPlan,
        config: &'a JobConfig,
        partitions: usize,
        inputs: &[(&str, Vec<String>)],
    ) -> Self {
        let mut run = Run {
            graph,
            plan,
            config,
            partitions,
            topics: HashMap::new(),
            slots: Vec::new(),
            next_checkpoint: 1,
            failures: 0,
            now: 1_000_000,
        };
        for (topic, lines) in inputs {
            let mut parts = vec![Vec::new(); partitions];
            for (i, line) in lines.iter().enumerate() {
                let payload = line.clone().into_bytes();
                parts[i % partitions].push(Message::Record { payload, timestamp: Some(time_of(line)) });
            }
            parts.iter_mut().for_each(|p| p.push(Message::EndOfTopic));
            run.topics.insert(topic.to_string(), parts);
        }
        for sub_topology in 0..plan.sub_topologies.len() {
            for partition in 0..partitions {
                let task = run.build(sub_topology, partition, None);
                for topic in task.input_topics() {
                    run.topics.entry(topic).or_insert_with(|| vec![Vec::new(); partitions]);
                }
                let slot = Slot {
                    sub_topology,
                    partition,
                    task,
                    positions: HashMap::new(),
                    pending: Vec::new(),
                    dirty: false,
                    checkpoint: None,
                };
                run.slots.push(slot);
            }
        }
        run
    }

    fn build(&self, sub_topology: usize, partition: usize, restored: Option<TaskState>) -> PartitionTask {
        let spec = TaskSpec {
            graph: self.graph,
            plan: self.plan,
            sub_topology,
            partition,
            partitions: self.partitions,
            config: self.config,
            restored,
        };
        PartitionTask::build(spec).unwrap()
    }

    /// What slot `s` can read next: (topic, offset) pairs with a message waiting.
    fn readable(&self, s: usize) -> Vec<String> {
        let slot = &self.slots[s];
        let mut topics: Vec<String> = slot
            .task
            .input_topics()
            .into_iter()
            .filter(|t| slot.positions.get(t).copied().unwrap_or(0) < self.topics[t][slot.partition].len())
            .collect();
        topics.sort();
        topics
    }

    /// Hands slot `s` the next message of `topic`.
    fn deliver(&mut self, s: usize, topic: &str) {
        let slot = &mut self.slots[s];
        let offset = slot.positions.get(topic).copied().unwrap_or(0);
        let message = self.topics[topic][slot.partition][offset].clone();
        slot.positions.insert(topic.to_string(), offset + 1);
        match message {
            Message::Record { payload, timestamp } => {
                let record = TopicRecord {
                    partition: slot.partition as i32,
                    offset: offset as i64,
                    key: None,
                    payload: Some(&payload),
                    timestamp,
                };
                slot.task.record(topic, &record).unwrap();
            }
            Message::Watermark { producer, watermark } => slot.task.watermark(topic, producer, watermark).unwrap(),
            Message::End { producer } => slot.task.end(topic, producer).unwrap(),
            Message::EndOfTopic => slot.task.end_of_topic(topic).unwrap(),
        }
        let produced = slot.task.drain();
        slot.pending.extend(produced);
        slot.dirty = true;
    }

    /// Snapshots slot `s` and commits it: what it produced goes into the topics, its state
    /// and positions are kept.
    fn commit(&mut self, s: usize) {
        self.commit_or_crash(s, false);
    }

    /// Commits slot `s`; with `crash`, its process dies right after the transaction
    /// committed, before the task hears of it (its transactional sinks have not committed
    /// theirs): the task is rebuilt from the state just committed.
    fn commit_or_crash(&mut self, s: usize, crash: bool) {
        let checkpoint = self.next_checkpoint;
        self.next_checkpoint += 1;
        let slot = &mut self.slots[s];
        let state = slot.task.snapshot(checkpoint).unwrap();
        let produced = slot.task.drain();
        slot.pending.extend(produced);
        slot.checkpoint = Some((state.to_bytes(), slot.positions.clone()));
        if !crash {
            slot.task.committed(checkpoint);
        }
        slot.dirty = false;
        let (producer, pending) = (slot.partition, std::mem::take(&mut slot.pending));
        for out in pending {
            self.route(producer, out);
        }
        if crash {
            self.fail(s);
        }
    }

    /// Throws slot `s`'s task away with what it produced since its last commit, and builds
    /// it again from that commit's state, to read on from that commit's positions.
    fn fail(&mut self, s: usize) {
        self.failures += 1;
        let (sub_topology, partition) = (self.slots[s].sub_topology, self.slots[s].partition);
        let (state, positions) = match &self.slots[s].checkpoint {
            Some((bytes, positions)) => (Some(TaskState::from_bytes(bytes).unwrap()), positions.clone()),
            None => (None, HashMap::new()),
        };
        let task = self.build(sub_topology, partition, state);
        let slot = &mut self.slots[s];
        slot.task = task;
        slot.positions = positions;
        slot.pending.clear();
        slot.dirty = true;
    }

    fn route(&mut self, producer: usize, out: Outgoing) {
        let partitions = self.partitions;
        match out {
            Outgoing::Record(r) => {
                let topic = self.topics.entry(r.topic.to_string()).or_insert_with(|| vec![Vec::new(); partitions]);
                let partition = r.partition.unwrap_or(0) as usize;
                topic[partition].push(Message::Record { payload: r.payload, timestamp: r.timestamp });
            }
            Outgoing::Watermark { topic, watermark } => {
                let topic = self.topics.entry(topic.to_string()).or_insert_with(|| vec![Vec::new(); partitions]);
                topic.iter_mut().for_each(|p| p.push(Message::Watermark { producer, watermark }));
            }
            Outgoing::End { topic } => {
                let topic = self.topics.entry(topic.to_string()).or_insert_with(|| vec![Vec::new(); partitions]);
                topic.iter_mut().for_each(|p| p.push(Message::End { producer }));
            }
        }
    }

    /// Runs every task to its end: each step hands one waiting message to a task `choices`
    /// picks; after a step, that task commits `commit_percent` times in 100 (and dies right
    /// after the commit `fail_percent` times in 100 of those) and fails `fail_percent` times
    /// in 100 (at most `max_failures` failures in all). When nothing is
    /// waiting, every task that read something since its last commit commits (as a caller
    /// commits at every interval).
    fn run(&mut self, choices: &mut Choices, commit_percent: usize, fail_percent: usize, max_failures: usize) {
        loop {
            let ready: Vec<(usize, String)> =
                (0..self.slots.len()).flat_map(|s| self.readable(s).into_iter().map(move |t| (s, t))).collect();
            if ready.is_empty() {
                let holding: Vec<usize> = (0..self.slots.len())
                    .filter(|&s| self.slots[s].dirty || !self.slots[s].pending.is_empty())
                    .collect();
                if holding.is_empty() {
                    break;
                }
                holding.into_iter().for_each(|s| self.commit(s));
                continue;
            }
            let (s, topic) = ready[choices.below(ready.len())].clone();
            self.deliver(s, &topic);
            // Processing time passes now and then; the jobs are in event time, so it must
            // change nothing.
            if choices.chance(10) {
                self.now += 1_000;
                let now = self.now;
                let slot = &mut self.slots[s];
                slot.task.tick(now).unwrap();
                let produced = slot.task.drain();
                slot.pending.extend(produced);
            }
            if choices.chance(commit_percent) {
                let crash = self.failures < max_failures && choices.chance(fail_percent);
                self.commit_or_crash(s, crash);
            }
            if self.failures < max_failures && choices.chance(fail_percent) {
                self.fail(s);
            }
        }
        for slot in &self.slots {
            assert!(
                slot.task.is_finished(),
                "task {} of sub-topology {} is not finished",
                slot.partition,
                slot.sub_topology
            );
        }
    }

    /// The records of topic `out`, as strings, sorted.
    fn output(&self) -> Vec<String> {
        let Some(out) = self.topics.get("out") else { return Vec::new() };
        let records = out.iter().flatten().filter_map(|m| match m {
            Message::Record { payload, .. } => Some(String::from_utf8(payload.clone()).unwrap()),
            _ => None,
        });
        sorted(records.collect())
    }
}

/// `n` lines, a few words each, in time order, some sharing a millisecond.
fn lines(n: usize, seed: u64) -> Vec<String> {
    const WORDS: [&str; 7] = ["to", "be", "or", "not", "that", "is", "the"];
    let mut choices = Choices(seed);
    let mut time = 0i64;
    (0..n)
        .map(|_| {
            time += [0, 300, 1_000, 2_500][choices.below(4)];
            let words: Vec<&str> = (0..=choices.below(4)).map(|_| WORDS[choices.below(WORDS.len())]).collect();
            format!("{time}\t{}", words.join(" "))
        })
        .collect()
}

/// Runs `job` distributed over `partitions` partitions.
fn run_distributed(
    job: Job,
    inputs: &[(&str, Vec<String>)],
    partitions: usize,
    seed: u64,
    commit_percent: usize,
    fail_percent: usize,
) -> (Vec<String>, usize) {
    run_distributed_in(Mode::Distributed, job, inputs, partitions, seed, commit_percent, fail_percent)
}

/// Runs `job` distributed, its sink as `mode` says.
fn run_distributed_in(
    mode: Mode,
    job: Job,
    inputs: &[(&str, Vec<String>)],
    partitions: usize,
    seed: u64,
    commit_percent: usize,
    fail_percent: usize,
) -> (Vec<String>, usize) {
    let all: Vec<String> = inputs.iter().flat_map(|(_, l)| l.clone()).collect();
    let (graph, plan, config, collected) = distributed_in(job, mode, &all);
    let mut run = Run::new(&graph, &plan, &config, partitions, inputs);
    run.run(&mut Choices(seed), commit_percent, fail_percent, 5);
    let mut output = run.output();
    output.extend(collected.map(|c| c.take()).unwrap_or_default());
    (sorted(output), run.failures)
}

fn union_inputs(lines: &[String]) -> Vec<(&'static str, Vec<String>)> {
    let (a, b): (Vec<String>, Vec<String>) = lines.iter().cloned().partition(|l| words(l).len() % 2 == 0);
    vec![("a", a), ("b", b)]
}

/// One job shape over some lines: the job, its model's output and its input topics.
struct Case {
    name: &'static str,
    job: Job,
    model: Vec<String>,
    inputs: Vec<(&'static str, Vec<String>)>,
}

/// Shape `shape` (0..5) over `input`.
fn case(shape: usize, input: &[String]) -> Case {
    let lines = || vec![("lines", input.to_vec())];
    match shape {
        0 => Case { name: "stateless", job: stateless, model: stateless_model(input), inputs: lines() },
        1 => Case { name: "word count", job: word_count, model: word_count_model(input), inputs: lines() },
        2 => Case { name: "union", job: union, model: union_model(input), inputs: union_inputs(input) },
        3 => Case { name: "side output", job: side_output, model: side_output_model(input), inputs: lines() },
        _ => Case { name: "two cuts", job: two_cuts, model: word_count_model(input), inputs: lines() },
    }
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn a_word_count_runs_as_partition_tasks_and_equals_one_process() {
    let input = lines(60, 7);
    let model = word_count_model(&input);
    assert_eq!(one_process(word_count, &input), model);
    let (output, _) = run_distributed(word_count, &[("lines", input.clone())], 3, 11, 10, 0);
    assert_eq!(output, model);
}

#[test]
fn each_job_shape_equals_its_model() {
    let input = lines(40, 3);
    for shape in 0..5 {
        let Case { name, job, model, inputs } = case(shape, &input);
        assert_eq!(one_process(job, &input), model, "{name} in one process");
        let (output, _) = run_distributed(job, &inputs, 2, 5, 0, 0);
        assert_eq!(output, model, "{name} distributed");
        let (output, _) = run_distributed_in(Mode::DistributedCollect, job, &inputs, 2, 5, 0, 0);
        assert_eq!(output, model, "{name} distributed into a collect() sink");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever order the tasks read their partitions in, and however many partitions.
    #[test]
    fn any_order_gives_the_model(seed in any::<u64>(), partitions in 1usize..5, n in 0usize..50, shape in 0usize..5) {
        let input = lines(n, seed ^ 0x5eed);
        let Case { job, model, inputs, .. } = case(shape, &input);
        let (output, _) = run_distributed(job, &inputs, partitions, seed, 5, 0);
        prop_assert_eq!(output, model);
    }

    /// Tasks fail at random points and restart from their last committed snapshot: the
    /// output is still exactly the model's (nothing lost, nothing twice), written to a topic
    /// or collected by a transactional sink that the tasks commit.
    #[test]
    fn failures_between_snapshots_lose_and_repeat_nothing(
        seed in any::<u64>(), partitions in 1usize..4, n in 1usize..50, shape in 0usize..5,
        commit_percent in 1usize..30, fail_percent in 1usize..20, collect in any::<bool>(),
    ) {
        let input = lines(n, seed ^ 0xfa11);
        let Case { job, model, inputs, .. } = case(shape, &input);
        let mode = if collect { Mode::DistributedCollect } else { Mode::Distributed };
        let (output, _) = run_distributed_in(mode, job, &inputs, partitions, seed, commit_percent, fail_percent);
        prop_assert_eq!(output, model);
    }
}

#[test]
fn tasks_restored_many_times_still_give_the_model() {
    // The property test's failures fall where its seeds put them; here every shape fails
    // often, and the test checks that it did.
    let mut failures = 0;
    for seed in 0..15u64 {
        let input = lines(30, seed);
        let Case { name, job, model, inputs } = case(seed as usize % 5, &input);
        let mode = if seed % 2 == 0 { Mode::Distributed } else { Mode::DistributedCollect };
        let (output, failed) = run_distributed_in(mode, job, &inputs, 3, seed, 15, 10);
        assert_eq!(output, model, "{name}, seed {seed}");
        failures += failed;
    }
    assert!(failures >= 30, "only {failures} failures injected");
}

/// The word count's tasks, built fresh.
fn word_count_task(sub_topology: usize, restored: Option<TaskState>) -> eddy_core::Result<PartitionTask> {
    let (graph, plan, config) = distributed(word_count, &[]);
    PartitionTask::build(TaskSpec {
        graph: &graph,
        plan: &plan,
        sub_topology,
        partition: 0,
        partitions: 2,
        config: &config,
        restored,
    })
}

#[test]
fn damaged_task_state_bytes_are_an_error() {
    let mut task = word_count_task(1, None).unwrap();
    let bytes = task.snapshot(1).unwrap().to_bytes();
    assert!(TaskState::from_bytes(&bytes).is_ok());
    for damaged in [&bytes[..bytes.len() - 1], &bytes[..3], b"not a task state at all".as_slice(), &[]] {
        let error = TaskState::from_bytes(damaged).unwrap_err().to_string();
        assert!(error.contains("task state does not decode"), "{error}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(TaskState::from_bytes(&longer).unwrap_err().to_string().contains("left over"));
    // Every single-byte corruption is an error or another state, never a panic.
    for at in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0xff;
        let _ = TaskState::from_bytes(&flipped);
    }
}

#[test]
fn a_state_of_another_task_is_refused() {
    let mut task = word_count_task(1, None).unwrap();
    let state = task.snapshot(1).unwrap();
    let other = TaskState { partition: 1, ..state };
    let error = word_count_task(1, Some(other)).err().expect("refused").to_string();
    assert!(
        error.contains("holds the state of task 1 of 2 of sub-topology 1 (16 key groups), not of task 0 of 2"),
        "{error}"
    );
}

#[test]
fn bad_repartition_bytes_are_an_error_naming_the_topic() {
    let mut task = word_count_task(1, None).unwrap();
    assert_eq!(task.input_topics(), ["app-words-repartition"]);
    let record = |payload| TopicRecord { partition: 0, offset: 42, key: None, payload, timestamp: None };
    let error = task.record("app-words-repartition", &record(Some(b"\x01\x02"))).unwrap_err().to_string();
    assert!(error.contains("repartition topic 'app-words-repartition' (partition 0, offset 42)"), "{error}");
    // A failed task refuses to go on; a fresh one reports a null value by topic too.
    assert!(task.record("app-words-repartition", &record(None)).unwrap_err().to_string().contains("failed before"));
    let mut task = word_count_task(1, None).unwrap();
    let error = task.record("app-words-repartition", &record(None)).unwrap_err().to_string();
    assert!(error.contains("'app-words-repartition'") && error.contains("null value"), "{error}");
    let mut task = word_count_task(1, None).unwrap();
    let error = task.record("elsewhere", &record(Some(b""))).unwrap_err().to_string();
    assert!(error.contains("does not read topic 'elsewhere'"), "{error}");
    let mut task = word_count_task(1, None).unwrap();
    let error = task.watermark("app-words-repartition", 2, 0).unwrap_err().to_string();
    assert!(error.contains("producing task 2"), "{error}");
}

#[test]
fn a_source_without_an_input_topic_is_refused() {
    let env = StreamEnvironment::new();
    env.from_collection(vec!["0\ta".to_string()])
        .read_from_topic(InputTopic { topic: "lines".into(), reader: Arc::new(Lines) })
        .map(|l| l.to_uppercase())
        .add_sink("Out", |_, _| Ok(Discard))
        .write_to_topic(OutputTopic { topic: "out".into(), writer: Arc::new(Strings) });
    // The plan refuses an unmarked source itself; a task checks again, for a plan made from
    // another graph than the one it is given.
    let plan = env.distributed_plan("app").unwrap();
    let (mut graph, config) = env.take_job().unwrap();
    graph.nodes[0].input_topic = None;
    let spec = TaskSpec {
        graph: &graph,
        plan: &plan,
        sub_topology: 0,
        partition: 0,
        partitions: 1,
        config: &config,
        restored: None,
    };
    let error = PartitionTask::build(spec).err().expect("refused").to_string();
    assert!(error.contains("source 'Source: Collection' does not read a topic"), "{error}");
}

#[test]
fn a_cut_input_waits_for_the_slowest_producer_and_ends_with_the_last() {
    let (graph, plan, config) = distributed(two_cuts, &[]);
    // Sub-topology 1 holds the windows: it reads 'words' and writes 'spread', passing its
    // input's watermark on.
    let spec = TaskSpec {
        graph: &graph,
        plan: &plan,
        sub_topology: 1,
        partition: 0,
        partitions: 2,
        config: &config,
        restored: None,
    };
    let mut task = PartitionTask::build(spec).unwrap();
    let words = "app-words-repartition";
    let sent = |task: &mut PartitionTask| -> Vec<Outgoing> { task.drain() };
    let watermark = |w| Outgoing::Watermark { topic: "app-spread-repartition".into(), watermark: w };
    task.watermark(words, 0, 10_000).unwrap();
    assert_eq!(sent(&mut task), [], "producer 1 has sent nothing yet");
    task.watermark(words, 1, 5_000).unwrap();
    assert_eq!(sent(&mut task), [watermark(5_000)]);
    task.watermark(words, 1, 20_000).unwrap();
    assert_eq!(sent(&mut task), [watermark(10_000)]);
    task.end(words, 0).unwrap();
    assert_eq!(sent(&mut task), [watermark(20_000)], "an ended producer holds nothing back");
    assert!(!task.is_finished(), "one of two producers ended");
    task.end(words, 1).unwrap();
    let end = Outgoing::End { topic: "app-spread-repartition".into() };
    assert_eq!(sent(&mut task), [watermark(MAX_WATERMARK), end]);
    assert!(task.is_finished());
}

#[test]
fn the_side_output_job_is_one_sub_topology_that_reads_its_own_topic() {
    let (_, plan, _) = distributed(side_output, &[]);
    assert_eq!(plan.sub_topologies.len(), 1, "{plan}");
    assert_eq!(plan.sub_topologies[0].inputs, plan.sub_topologies[0].outputs, "{plan}");
}

#[test]
fn a_task_counts_what_its_operators_count() {
    let input = lines(30, 9);
    let (graph, plan, config, collected) = distributed_in(stateless, Mode::DistributedCollect, &input);
    let mut run = Run::new(&graph, &plan, &config, 2, &[("lines", input.clone())]);
    run.run(&mut Choices(1), 0, 0, 0);
    let written = |s: &Slot| s.task.metrics().counter("Sink: Collect", s.partition, names::RECORDS_WRITTEN).get();
    let written: u64 = run.slots.iter().map(written).sum();
    assert_eq!(written as usize, stateless_model(&input).len());
    assert_eq!(collected.unwrap().take().len(), stateless_model(&input).len());
}

#[test]
fn an_exactly_once_file_sink_in_failing_tasks_writes_every_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = 0;
    for seed in 0..6u64 {
        let input = lines(40, seed);
        let out = dir.path().join(seed.to_string());
        let env = StreamEnvironment::new();
        source(&env, Mode::Distributed, "lines", &input)
            .map(|l| l.to_uppercase())
            .write_exactly_once(&out)
            .uid("files");
        let plan = env.distributed_plan("app").unwrap();
        let (graph, config) = env.take_job().unwrap();
        let mut run = Run::new(&graph, &plan, &config, 2, &[("lines", input.clone())]);
        run.run(&mut Choices(seed), 20, 15, 5);
        failures += run.failures;
        // What a reader sees: the files whose names start with neither '.' nor '_'.
        let mut visible = Vec::new();
        for entry in std::fs::read_dir(&out).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if entry.file_type().unwrap().is_file() && !name.starts_with(['.', '_']) {
                visible.extend(std::fs::read_to_string(entry.path()).unwrap().lines().map(String::from));
            }
        }
        let model = sorted(input.iter().map(|l| l.to_uppercase()).collect());
        assert_eq!(sorted(visible), model, "seed {seed}");
    }
    assert!(failures >= 10, "only {failures} failures injected");
}

#[test]
fn state_no_operator_of_the_task_claims_is_refused_unless_allowed() {
    let mut task = word_count_task(1, None).unwrap();
    let mut state = task.snapshot(1).unwrap();
    assert_eq!(state.operators.iter().map(|o| o.uid.as_str()).collect::<Vec<_>>(), ["count"]);
    state.operators[0].uid = "renamed".into();
    let error = word_count_task(1, Some(state.clone())).err().expect("refused").to_string();
    assert!(error.contains("no operator of its sub-topology claims (uids: renamed)"), "{error}");
    let (graph, plan, mut config) = distributed(word_count, &[]);
    config.allow_non_restored_state = true;
    let spec = TaskSpec {
        graph: &graph,
        plan: &plan,
        sub_topology: 1,
        partition: 0,
        partitions: 2,
        config: &config,
        restored: Some(state),
    };
    assert!(PartitionTask::build(spec).is_ok());
}

#[test]
fn checkpoint_ids_must_increase_across_restores() {
    let mut task = word_count_task(1, None).unwrap();
    let state = task.snapshot(7).unwrap();
    let error = task.snapshot(7).unwrap_err().to_string();
    assert!(
        error.contains("checkpoint 7 of task 0 of 2 of sub-topology 1 (16 key groups) comes after checkpoint 7"),
        "{error}"
    );
    task.snapshot(8).expect("a refused id does not fail the task");
    let mut restored = word_count_task(1, Some(state)).unwrap();
    assert!(restored.snapshot(3).is_err());
    restored.snapshot(9).unwrap();
}
