//! Marking the edges a distributed run may cut (`repartition`, `repartitioned`) and the plan
//! that cuts a job there (`distributed_plan`): the described plans of a word count and of a
//! two-branch job against hand-written descriptions, the refusals, and a one-process run
//! that ignores the marks (its output is the unmarked job's and a sequential model's).
//!
//! A distributed job reads its sources from topics: the sources here are collections marked
//! by hand as read from one (eddy-kafka's `from_kafka` marks a Kafka source, and its tests
//! plan a job of Kafka sources and sinks).

use std::collections::HashMap;
use std::time::Duration;

use eddy_core::BoxError;
use eddy_runtime::codec::{Codec, RecordCodec};
use eddy_runtime::graph::{AnyOutput, BuildContext};
use eddy_runtime::topic::{InputTopic, Outbox, OutputTopic, TopicReader, TopicReaderFactory, TopicWriterFactory};
use eddy_stream::prelude::*;
use eddy_stream::repartitioned::Bincode;
use proptest::prelude::*;

/// A topic nothing here reads or writes: these tests only plan.
struct Untouched;

impl TopicReaderFactory for Untouched {
    fn build(&self, _: &BuildContext, _: Vec<AnyOutput>) -> eddy_core::Result<Box<dyn TopicReader>> {
        Err(eddy_core::Error::InvalidJob("a planning test's topic is never read".into()))
    }
}

impl TopicWriterFactory for Untouched {
    fn build(&self, _: &BuildContext, _: std::sync::Arc<str>, _: Outbox) -> eddy_core::Result<AnyOutput> {
        Err(eddy_core::Error::InvalidJob("a planning test's topic is never written".into()))
    }
}

/// The source `stream`, marked as read from `topic`.
fn reading<T: Data>(stream: DataStream<T>, topic: &str) -> DataStream<T> {
    stream.read_from_topic(InputTopic { topic: topic.into(), reader: std::sync::Arc::new(Untouched) })
}

/// The sink `sink`, marked as writing `topic`.
fn writing(sink: StreamSink, topic: &str) -> StreamSink {
    sink.write_to_topic(OutputTopic { topic: topic.into(), writer: std::sync::Arc::new(Untouched) })
}

/// (epoch ms, text) lines: `n` of them, a few words each, a second apart.
fn lines(n: i64) -> Vec<(i64, String)> {
    const WORDS: [&str; 7] = ["to", "be", "or", "not", "that", "is", "the"];
    (0..n)
        .map(|i| {
            (i * 1_000, (0..(i % 4 + 1)).map(|j| WORDS[((i * 3 + j * 5) % 7) as usize]).collect::<Vec<_>>().join(" "))
        })
        .collect()
}

/// source → flat_map → key_by(word) → 5 s tumbling count → sink; the cuts marked or not.
fn word_count(env: &StreamEnvironment, input: Vec<(i64, String)>, marked: bool) -> Collected<(i64, String, u64)> {
    let words = reading(env.from_collection(input), "lines")
        .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |l| l.0)
        .flat_map(|(_, text)| text.split(' ').map(String::from).collect::<Vec<_>>());
    // A rebalance before the key_by, so both kinds of cut are in the job.
    let words = if marked { words.repartition(Repartitioned::named("spread")) } else { words.rebalance() };
    let words = words.map(|w| w.to_uppercase()).name("Upper").key_by(|w: &String| w.clone());
    let words = if marked { words.repartitioned(Repartitioned::named("words")) } else { words };
    words
        .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
        .aggregate_with(Count, |word, window, n| (window.end, word.clone(), n))
        .name("Count")
        .collect()
}

#[test]
fn a_word_count_is_described_as_its_sub_topologies_and_topics() {
    let env = StreamEnvironment::new();
    let words = reading(env.from_collection(lines(3)), "lines")
        .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |l| l.0)
        .flat_map(|(_, text)| text.split(' ').map(String::from).collect::<Vec<_>>())
        .key_by(|w: &String| w.clone())
        .repartitioned(Repartitioned::named("words"));
    let counts = words
        .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
        .aggregate_with(Count, |w, _, n| (w.clone(), n));
    writing(counts.for_each(|_| {}).name("Sink: counts"), "counts");
    let plan = env.distributed_plan("wc").unwrap();
    // The window pre-aggregates before the cut, as in one process: its partial counts are
    // what crosses the topic.
    let expected = "\
application wc: 2 sub-topologies, 1 repartition topic
sub-topology 0
  Source: Collection (topic lines)
    --> Timestamps/Watermarks
  Timestamps/Watermarks
    --> FlatMap
    <-- Source: Collection
  FlatMap
    --> Window (pre-aggregate)
    <-- Timestamps/Watermarks
  Window (pre-aggregate)
    --> topic wc-words-repartition
    <-- FlatMap
sub-topology 1
  Window
    --> Sink: counts
    <-- topic wc-words-repartition
  Sink: counts (topic counts)
    <-- Window
repartition topics
  wc-words-repartition: Window (pre-aggregate) --HASH--> Window, from sub-topology 0 to 1
";
    assert_eq!(plan.to_string(), expected);
    assert!(
        plan.topics[0].record_type.contains("Partial<alloc::string::String, u64>"),
        "{}",
        plan.topics[0].record_type
    );
    let at = |t: &eddy_runtime::distributed_plan::ExternalTopic| (t.topic.clone(), t.node, t.sub_topology);
    assert_eq!(plan.input_topics.iter().map(at).collect::<Vec<_>>(), [("lines".to_string(), 0, 0)]);
    assert_eq!(plan.output_topics.iter().map(at).collect::<Vec<_>>(), [("counts".to_string(), 5, 1)]);
    // Describing changed nothing: the job still runs, in one process.
    env.execute("wc").unwrap().wait().unwrap();
}

#[test]
fn a_job_of_two_branches_is_three_sub_topologies() {
    // The taxi job's shape: parse trips, count pickups per cell, and average the airport
    // trips' durations per (cell, airport); each branch its own key_by and topic.
    let env = StreamEnvironment::new();
    let trips = reading(env.from_collection(vec![(0i64, 7u32, 3u8, 20u64)]), "trips")
        .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |t| t.0)
        .map(|t| t)
        .name("parse");
    trips
        .key_by(|t| t.1)
        .repartitioned(Repartitioned::named("hot-spots"))
        .window(TumblingEventTimeWindows::of(Duration::from_secs(3600)))
        .aggregate_with(Count, |cell, _, n| (*cell, n))
        .name("pickup count")
        .for_each(|_| {})
        .name("Sink: pickup_count");
    // A sink without a topic (a callback) runs in every task: this one is not marked.
    trips
        .filter(|t| t.2 > 0)
        .name("airport trips")
        .key_by(|t| (t.1, t.2))
        .repartitioned(Repartitioned::named("airport-trips"))
        .reduce(|a, b| (a.0, a.1, a.2, a.3 + b.3))
        .name("trip duration")
        .for_each(|_| {})
        .name("Sink: trip_duration")
        .write_to_topic(OutputTopic { topic: "trip_duration".into(), writer: std::sync::Arc::new(Untouched) });
    let expected = "\
application taxi: 3 sub-topologies, 2 repartition topics
sub-topology 0
  Source: Collection (topic trips)
    --> Timestamps/Watermarks
  Timestamps/Watermarks
    --> parse
    <-- Source: Collection
  parse
    --> pickup count (pre-aggregate)
    --> airport trips
    <-- Timestamps/Watermarks
  pickup count (pre-aggregate)
    --> topic taxi-hot-spots-repartition
    <-- parse
  airport trips
    --> topic taxi-airport-trips-repartition
    <-- parse
sub-topology 1
  pickup count
    --> Sink: pickup_count
    <-- topic taxi-hot-spots-repartition
  Sink: pickup_count
    <-- pickup count
sub-topology 2
  trip duration
    --> Sink: trip_duration
    <-- topic taxi-airport-trips-repartition
  Sink: trip_duration (topic trip_duration)
    <-- trip duration
repartition topics
  taxi-hot-spots-repartition: pickup count (pre-aggregate) --HASH--> pickup count, from sub-topology 0 to 1
  taxi-airport-trips-repartition: airport trips --HASH--> trip duration, from sub-topology 0 to 2
";
    assert_eq!(env.distributed_plan("taxi").unwrap().to_string(), expected);
}

#[test]
fn a_one_process_run_ignores_the_marks() {
    let input = lines(400);
    let run = |marked: bool| {
        let env = StreamEnvironment::new();
        env.set_parallelism(3);
        let counts = word_count(&env, input.clone(), marked);
        env.execute("wc").unwrap().wait().unwrap();
        let mut counts = counts.take();
        counts.sort();
        counts
    };
    // The model: each word's count per 5 s window, counted here in one loop.
    let mut model: HashMap<(i64, String), u64> = HashMap::new();
    for (time, text) in &input {
        for word in text.split(' ') {
            *model.entry((time - time % 5_000 + 5_000, word.to_uppercase())).or_default() += 1;
        }
    }
    let mut model: Vec<(i64, String, u64)> = model.into_iter().map(|((end, w), n)| (end, w, n)).collect();
    model.sort();
    let marked = run(true);
    assert_eq!(marked, model);
    assert_eq!(run(false), marked);

    // And the marked job plans two cuts where the unmarked one is refused.
    let env = StreamEnvironment::new();
    word_count(&env, input.clone(), true);
    let plan = env.distributed_plan("wc").unwrap();
    let topics: Vec<&str> = plan.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(topics, ["wc-spread-repartition", "wc-words-repartition"]);
    assert_eq!(plan.sub_topologies.len(), 3, "{plan}");
    let env = StreamEnvironment::new();
    word_count(&env, input, false);
    let refused = env.distributed_plan("wc").unwrap_err().to_string();
    assert!(refused.contains("the rebalance edge from 'FlatMap' to 'Upper' is not marked"), "{refused}");
}

fn refusal(env: &StreamEnvironment) -> String {
    env.distributed_plan("app").map(|p| p.to_string()).unwrap_err().to_string()
}

#[test]
fn an_unmarked_key_by_or_rebalance_is_refused_saying_which_call_marks_it() {
    let env = StreamEnvironment::new();
    env.from_collection(vec![(1u64, 2u64)]).key_by(|e| e.0).sum(|e| &mut e.1).name("sums").for_each(|_| {});
    let message = refusal(&env);
    assert!(message.contains("the key_by from 'Source: Collection' to 'sums' is not marked"), "{message}");
    assert!(message.contains(".repartitioned(Repartitioned::named(\"<name>\"))"), "{message}");

    let env = StreamEnvironment::new();
    env.from_collection(vec![1u64]).shuffle().map(|x| x + 1).name("inc").print();
    let message = refusal(&env);
    assert!(message.contains("the shuffle edge from 'Source: Collection' to 'inc' is not marked"), "{message}");
    assert!(message.contains(".repartition(Repartitioned::named(\"<name>\"))"), "{message}");

    // repartition() after shuffle() keeps the shuffle, now marked.
    let env = StreamEnvironment::new();
    let numbers = reading(env.from_collection(vec![1u64]), "numbers");
    numbers.shuffle().repartition(Repartitioned::named("spread")).map(|x| x + 1).print();
    let plan = env.distributed_plan("app").unwrap();
    assert_eq!(plan.topics[0].strategy, eddy_runtime::ShipStrategy::Shuffle);

    // A mark on an edge that is then made forward names a topic that would never exist.
    let env = StreamEnvironment::new();
    env.from_collection(vec![1u64]).repartition(Repartitioned::named("spread")).forward().map(|x| x + 1).print();
    let message = refusal(&env);
    assert!(message.contains("is marked for repartition 'spread' but never leaves its task"), "{message}");
}

#[test]
fn a_source_not_read_from_a_topic_is_refused_naming_it_and_what_reads_one() {
    let env = StreamEnvironment::new();
    let marked = reading(env.from_collection(vec![1u64]), "numbers");
    let unmarked = env.from_collection(vec![2u64]).name("Source: more numbers");
    marked.union(&[unmarked]).map(|x| x + 1).print();
    let message = refusal(&env);
    assert!(message.contains("'Source: more numbers' is not read from a topic"), "{message}");
    assert!(message.contains("a distributed job reads its input from Kafka topics"), "{message}");
    assert!(message.contains("env.from_kafka(source, strategy, name)"), "{message}");

    let env = StreamEnvironment::new();
    reading(env.from_collection(vec![1u64]), "numbers?").print();
    let message = refusal(&env);
    assert!(message.contains("the input topic of 'Source: Collection' 'numbers?' cannot be part"), "{message}");
}

#[test]
fn broadcasts_and_two_input_keyed_operators_are_refused_with_the_reason() {
    let env = StreamEnvironment::new();
    env.from_collection(vec![1u64]).broadcast().map(|x| x + 1).name("everywhere").print();
    let message = refusal(&env);
    assert!(
        message.contains("the broadcast edge from 'Source: Collection' to 'everywhere' cannot be cut"),
        "{message}"
    );
    assert!(message.contains("Kafka Streams has no broadcast repartition"), "{message}");

    let env = StreamEnvironment::new();
    let left = env.from_collection(vec![(1u64, 1i64)]).key_by(|e| e.0).repartitioned(Repartitioned::named("left"));
    let right = env.from_collection(vec![(1u64, 2i64)]).key_by(|e| e.0);
    left.interval_join(&right).between(-5, 5).process(|a, b| (a.0, a.1, b.1)).for_each(|_| {});
    let message = refusal(&env);
    assert!(message.contains("to 'IntervalJoin' is the key_by of an operator with two inputs"), "{message}");
    assert!(message.contains("co-partitioned repartition topics"), "{message}");
}

#[test]
fn a_union_of_repartitioned_streams_reads_both_topics_in_one_sub_topology() {
    let env = StreamEnvironment::new();
    let a = reading(env.from_collection(vec![1u64]), "a").repartition(Repartitioned::named("a"));
    let b = reading(env.from_collection(vec![2u64]), "b").repartition(Repartitioned::named("b"));
    a.union(&[b]).map(|x| x * 2).name("double").print();
    let plan = env.distributed_plan("u").unwrap();
    let [first, second, union] = &plan.sub_topologies[..] else { panic!("{plan}") };
    assert_eq!((first.outputs.len(), second.outputs.len()), (1, 1));
    assert_eq!(union.inputs.len(), 2, "{plan}");
    let topics: Vec<(&str, usize, usize)> = plan.topics.iter().map(|t| (t.name.as_str(), t.writer, t.reader)).collect();
    assert_eq!(topics, [("u-a-repartition", 0, 2), ("u-b-repartition", 1, 2)]);
}

/// Celsius readings as two bytes of tenths, for a type with no serde at all.
#[derive(Debug, Clone, PartialEq)]
struct Reading(i16);

struct Tenths;

impl Codec<Reading> for Tenths {
    fn encode(&self, value: &Reading, out: &mut Vec<u8>) -> Result<(), BoxError> {
        out.extend_from_slice(&value.0.to_be_bytes());
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Reading, BoxError> {
        Ok(Reading(i16::from_be_bytes(bytes.try_into()?)))
    }
}

#[test]
fn a_type_without_serde_is_marked_with_a_codec_of_its_own() {
    let env = StreamEnvironment::new();
    let readings = reading(env.from_collection(vec![Reading(215), Reading(-40)]), "readings");
    let out = readings.repartition(Repartitioned::with_codec("readings", Tenths)).map(|r| r.0).collect();
    let plan = env.distributed_plan("sensors").unwrap();
    assert_eq!(plan.topics[0].name, "sensors-readings-repartition");
    assert!(plan.topics[0].record_type.ends_with("Reading"), "{}", plan.topics[0].record_type);
    env.execute("sensors").unwrap().wait().unwrap();
    let mut out = out.take();
    out.sort();
    assert_eq!(out, vec![-40, 215]);
}

fn bincode_records<T: serde::Serialize + serde::de::DeserializeOwned + 'static>() -> RecordCodec<T> {
    RecordCodec::new(std::sync::Arc::new(Bincode::<T>::default()))
}

proptest! {
    #[test]
    fn bincode_records_round_trip(word in ".*", n in any::<u64>(), timestamp in -1_000_000i64..1_000_000) {
        let codec = bincode_records::<(String, u64)>();
        let record = Record::new((word, n), timestamp);
        let mut bytes = Vec::new();
        codec.encode(&record, &mut bytes).unwrap();
        prop_assert_eq!(codec.decode(&bytes).unwrap(), record);
        // One byte more or less is not the record any more: an error, not a panic.
        bytes.push(0);
        prop_assert!(codec.decode(&bytes).is_err());
        bytes.truncate(bytes.len() - 2);
        prop_assert!(codec.decode(&bytes).is_err());
    }

    #[test]
    fn bytes_that_are_not_a_record_are_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
        let codec = bincode_records::<(String, u64)>();
        if let Ok(record) = codec.decode(&bytes) {
            // Then they are exactly its encoding.
            let mut again = Vec::new();
            codec.encode(&record, &mut again).unwrap();
            prop_assert_eq!(again, bytes);
        }
    }
}

#[test]
fn a_length_from_damaged_bytes_is_an_error_not_an_allocation() {
    // A string whose length prefix says 2^62 bytes: without a limit, bincode allocates it
    // (and the process aborts); the proptest above found such bytes.
    let codec = bincode_records::<(String, u64)>();
    let mut bytes = 1i64.to_le_bytes().to_vec();
    bytes.push(0xfd); // bincode's varint: a u64 follows
    bytes.extend_from_slice(&(1u64 << 62).to_le_bytes());
    bytes.extend_from_slice(b"abc");
    let message = codec.decode(&bytes).unwrap_err().to_string();
    assert!(message.contains("do not decode as a (alloc::string::String, u64)"), "{message}");
    // A value just under the limit still decodes.
    let codec = bincode_records::<Vec<u8>>();
    let big = Record::new(vec![7u8; 1 << 20], 3);
    let mut bytes = Vec::new();
    codec.encode(&big, &mut bytes).unwrap();
    assert_eq!(codec.decode(&bytes).unwrap(), big);
}

#[test]
fn bincode_leftovers_are_named() {
    let codec = bincode_records::<u8>();
    let mut bytes = 1i64.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[7, 7]);
    let message = codec.decode(&bytes).unwrap_err().to_string();
    assert!(message.contains("do not decode as a u8: 1 bytes left over after the value"), "{message}");
}

/// Even numbers on, odd ones to the side output `odd`.
#[derive(Clone)]
struct SplitOdd(OutputTag<u64>);

impl ProcessFunction<u64, u64> for SplitOdd {
    fn process_element(&mut self, value: u64, ctx: &mut ProcessContext<'_, u64>) {
        if value % 2 == 0 {
            ctx.collect(value);
        } else {
            ctx.output(&self.0, value);
        }
    }
}

#[test]
fn a_side_output_stays_in_its_producer_unless_its_edge_is_cut() {
    let env = StreamEnvironment::new();
    let odd = OutputTag::<u64>::new("odd");
    let split = reading(env.from_collection(vec![1u64, 2, 3]), "numbers").process(SplitOdd(odd.clone())).name("split");
    split.map(|x| x * 10).name("evens").for_each(|_| {});
    let odds = split.side_output(&odd);
    odds.map(|x| x + 1).name("odds kept").for_each(|_| {});
    odds.key_by(|x| x % 3)
        .repartitioned(Repartitioned::named("odds"))
        .reduce(|a, b| a + b)
        .name("odd sums")
        .for_each(|_| {});
    let plan = env.distributed_plan("side").unwrap();
    assert_eq!(plan.sub_topologies.len(), 2, "{plan}");
    let text = plan.to_string();
    assert!(text.contains("  split\n    --> evens\n    --> odds kept (side output 'odd')\n    --> topic side-odds-repartition (side output 'odd')\n"), "{text}");
    assert!(text.contains("sub-topology 1\n  odd sums\n"), "{text}");
    assert!(text.contains("  side-odds-repartition: split --HASH--> odd sums, from sub-topology 0 to 1\n"), "{text}");
}
