//! A job of Kafka sources and sinks planned for a distributed run (no broker: planning reads
//! only the marks `from_kafka` and `sink_to_kafka` put on the nodes): the described plan
//! against a hand-written one, and the sources and sinks the marks cannot cover.

use std::time::Duration;

use eddy_kafka::{JsonValue, KafkaSink, KafkaSinkExt, KafkaSource, KafkaSourceExt};
use eddy_stream::prelude::*;

const BROKERS: &str = "127.0.0.1:9092";

fn lines(topics: &[&str]) -> KafkaSource<String> {
    KafkaSource::builder().brokers(BROKERS).topics(topics.iter().copied()).build().unwrap()
}

/// Kafka → words → 5 s tumbling count per word → Kafka, the key_by marked `words`.
fn word_count(env: &StreamEnvironment, source: KafkaSource<String>, sink: KafkaSink<(String, u64)>) {
    env.from_kafka(source, WatermarkStrategy::monotonous(), "lines")
        .flat_map(|line: String| line.split(' ').map(String::from).collect::<Vec<_>>())
        .key_by(|w: &String| w.clone())
        .repartitioned(Repartitioned::named("words"))
        .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
        .aggregate_with(Count, |w, _, n| (w.clone(), n))
        .name("Count")
        .sink_to_kafka(sink);
}

fn counts() -> eddy_kafka::KafkaSinkBuilder<(String, u64), JsonValue> {
    KafkaSink::builder().brokers(BROKERS).topic("counts").serializer(JsonValue)
}

#[test]
fn a_kafka_word_count_reads_and_writes_its_topics_in_the_plan() {
    let env = StreamEnvironment::new();
    word_count(&env, lines(&["lines"]), counts().key(|c| Some(c.0.clone().into_bytes())).build().unwrap());
    let plan = env.distributed_plan("wc").unwrap();
    let expected = "\
application wc: 2 sub-topologies, 1 repartition topic
sub-topology 0
  Source: lines (topic lines)
    --> FlatMap
  FlatMap
    --> Count (pre-aggregate)
    <-- Source: lines
  Count (pre-aggregate)
    --> topic wc-words-repartition
    <-- FlatMap
sub-topology 1
  Count
    --> Sink: Kafka
    <-- topic wc-words-repartition
  Sink: Kafka (topic counts)
    <-- Count
repartition topics
  wc-words-repartition: Count (pre-aggregate) --HASH--> Count, from sub-topology 0 to 1
";
    assert_eq!(plan.to_string(), expected);
    let at = |t: &eddy_runtime::distributed_plan::ExternalTopic| (t.topic.clone(), t.node, t.sub_topology);
    assert_eq!(plan.input_topics.iter().map(at).collect::<Vec<_>>(), [("lines".to_string(), 0, 0)]);
    assert_eq!(plan.output_topics.iter().map(at).collect::<Vec<_>>(), [("counts".to_string(), 4, 1)]);
}

#[test]
fn a_source_of_several_topics_or_a_pattern_is_refused() {
    for source in [
        lines(&["lines", "more-lines"]),
        KafkaSource::builder().brokers(BROKERS).topic_pattern("lines-.*").build().unwrap(),
    ] {
        let env = StreamEnvironment::new();
        word_count(&env, source, counts().build().unwrap());
        let refused = env.distributed_plan("wc").unwrap_err().to_string();
        assert!(refused.contains("'Source: lines' is not read from a topic"), "{refused}");
        assert!(
            refused.contains("a source of several topics or of a pattern cannot be cut per partition"),
            "{refused}"
        );
    }
}

#[test]
fn a_sink_with_a_topic_per_record_is_left_to_run_in_every_task() {
    let env = StreamEnvironment::new();
    let sink = counts().topic_from(|c| format!("counts-{}", c.0.len())).build().unwrap();
    word_count(&env, lines(&["lines"]), sink);
    let plan = env.distributed_plan("wc").unwrap();
    assert!(plan.output_topics.is_empty());
    assert!(plan.to_string().contains("\n  Sink: Kafka\n    <-- Count\n"), "{plan}");
}
