//! A Kafka sink's topic mark: how a distributed task writes the sink's records.
//!
//! In a distributed job (`docs/scale-out.md`) a sink node does not run its own producer: the
//! task that produced a record writes it with the task's transactional producer, in the
//! transaction that also commits the task's input offsets, so the output is exactly-once
//! across task moves whatever the sink's [`DeliveryGuarantee`](crate::DeliveryGuarantee)
//! says. The writer built here turns each value into an
//! [`OutRecord`] as the one-process sink does: the sink's
//! topic, its [`key`](crate::KafkaSinkBuilder::key) and
//! [`partition`](crate::KafkaSinkBuilder::partition) functions, its serializer for the
//! value, and the event time as the record timestamp when
//! [`event_time_timestamps`](crate::KafkaSinkBuilder::event_time_timestamps) is on.
//!
//! A sink whose records the task's producer cannot carry as they are — one with a topic per
//! record ([`topic_from`](crate::KafkaSinkBuilder::topic_from)) or with
//! [`headers`](crate::KafkaSinkBuilder::headers) — gets no mark: a distributed job runs it
//! as any unmarked sink, in every task with a producer of its own, outside the task's
//! transaction (so not exactly-once across task moves).

use std::sync::Arc;

use eddy_core::{Barrier, OperatorInfo, Output, Record, Result, Timestamp};
use eddy_runtime::graph::{erase, AnyOutput, BuildContext};
use eddy_runtime::metrics::names;
use eddy_runtime::topic::{OutRecord, Outbox, Outgoing, OutputTopic, TopicWriterFactory};
use eddy_runtime::Counter;
use eddy_stream::Data;

use crate::sink_spec::SinkSpec;

/// Builds the writers of one Kafka sink of one topic.
pub(crate) struct KafkaTopicWriters<T> {
    spec: Arc<SinkSpec<T>>,
}

impl<T: Data> KafkaTopicWriters<T> {
    /// The mark of a sink with settings `spec`; `None` for a sink with a topic per record or
    /// headers (see the [module docs](self)).
    pub(crate) fn mark(spec: Arc<SinkSpec<T>>) -> Option<OutputTopic> {
        if spec.topic_of.is_some() || spec.headers.is_some() {
            return None;
        }
        let topic = spec.topic.clone()?;
        Some(OutputTopic { topic, writer: Arc::new(KafkaTopicWriters { spec }) })
    }
}

impl<T: Data> TopicWriterFactory for KafkaTopicWriters<T> {
    fn build(&self, ctx: &BuildContext, topic: Arc<str>, outbox: Outbox) -> Result<AnyOutput> {
        let writer = KafkaTopicWriter {
            spec: self.spec.clone(),
            topic,
            outbox,
            info: ctx.info.clone(),
            written: ctx.counter(names::RECORDS_WRITTEN),
        };
        Ok(erase::<T>(Box::new(writer)))
    }
}

/// One task's writer of a Kafka sink's records into the task's outbox.
struct KafkaTopicWriter<T> {
    spec: Arc<SinkSpec<T>>,
    topic: Arc<str>,
    outbox: Outbox,
    info: OperatorInfo,
    written: Counter,
}

impl<T: Data> KafkaTopicWriter<T> {
    /// The record `value` of event time `timestamp` becomes.
    fn record(&self, value: &T, timestamp: Timestamp) -> Result<Outgoing> {
        let spec = &self.spec;
        let payload = spec
            .serializer
            .serialize(value)
            .map_err(|e| self.info.error(format!("cannot serialize a record for topic '{}': {e}", self.topic)))?;
        Ok(Outgoing::Record(OutRecord {
            topic: self.topic.clone(),
            partition: spec.partition_of(value),
            key: spec.key_of(value),
            payload,
            timestamp: spec.timestamp_of(timestamp),
        }))
    }
}

impl<T: Data> Output<T> for KafkaTopicWriter<T> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let records = self
            .info
            .guard(|| batch.iter().map(|r| self.record(&r.value, r.timestamp)).collect::<Result<Vec<_>>>())??;
        self.written.add(batch.len() as u64);
        batch.clear();
        self.outbox.extend(records);
        Ok(())
    }

    fn watermark(&mut self, _: Timestamp) -> Result<()> {
        Ok(())
    }

    fn idle(&mut self, _: bool) -> Result<()> {
        Ok(())
    }

    fn tick(&mut self, _: Timestamp) -> Result<()> {
        Ok(())
    }

    /// The task commits what its outbox holds with its offsets: nothing to do here.
    fn barrier(&mut self, _: Barrier) -> Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use eddy_core::time::NO_TIMESTAMP;
    use eddy_core::BoxError;
    use eddy_runtime::graph::unerase;
    use eddy_runtime::{DetachedBuild, JobConfig};

    use super::*;
    use crate::{JsonValue, KafkaSink, KafkaSinkBuilder};

    /// Sums per customer: (customer, cents).
    type Total = (u32, i64);

    fn builder() -> KafkaSinkBuilder<Total, crate::Text> {
        KafkaSink::builder().brokers("127.0.0.1:1").topic("totals")
    }

    /// The writer of `sink`'s mark, as task 0 of 1 builds it, and its outbox.
    fn writer(sink: KafkaSink<Total>) -> (Box<dyn Output<Total>>, Outbox) {
        let mark = KafkaTopicWriters::mark(sink.spec).expect("a sink of one topic is marked");
        assert_eq!(mark.topic, "totals");
        let build = DetachedBuild::new(JobConfig::default());
        let ctx = build.context(OperatorInfo { name: "Sink: Kafka".into(), subtask: 0, parallelism: 1 });
        let outbox = Outbox::default();
        let output = mark.writer.build(&ctx, Arc::from("totals"), outbox.clone()).unwrap();
        (unerase::<Total>(output).unwrap(), outbox)
    }

    fn record(
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: &[u8],
        timestamp: Option<i64>,
    ) -> Outgoing {
        Outgoing::Record(OutRecord {
            topic: Arc::from(topic),
            partition,
            key: key.map(<[u8]>::to_vec),
            payload: payload.to_vec(),
            timestamp,
        })
    }

    #[test]
    fn each_value_becomes_a_record_with_the_sinks_key_partition_payload_and_timestamp() {
        let sink = builder()
            .serializer(JsonValue)
            .key(|t: &Total| Some(t.0.to_be_bytes().to_vec()))
            .partition(|t: &Total| (t.1 < 0).then_some(3))
            .event_time_timestamps(true)
            .build()
            .unwrap();
        let (mut writer, outbox) = writer(sink);
        let mut batch = vec![Record::new((7, 250), 1_000), Record::new((9, -5), NO_TIMESTAMP)];
        writer.records(&mut batch).unwrap();
        assert!(batch.is_empty());
        writer.barrier(Barrier::FINAL).unwrap();
        assert_eq!(
            outbox.take(),
            vec![
                record("totals", None, Some(&[0, 0, 0, 7]), b"[7,250]", Some(1_000)),
                record("totals", Some(3), Some(&[0, 0, 0, 9]), b"[9,-5]", None),
            ]
        );
        assert_eq!(outbox.take(), vec![], "taken once");
    }

    #[test]
    fn without_event_time_timestamps_or_a_key_the_producer_decides() {
        let debug = |t: &Total| -> std::result::Result<Vec<u8>, BoxError> { Ok(format!("{t:?}").into_bytes()) };
        let (mut writer, outbox) = writer(builder().serializer(debug).build().unwrap());
        writer.records(&mut vec![Record::new((1, 2), 5_000)]).unwrap();
        assert_eq!(outbox.take(), vec![record("totals", None, None, b"(1, 2)", None)]);
    }

    #[test]
    fn a_value_the_serializer_refuses_fails_the_sink_naming_the_topic() {
        let refuse = |_: &Total| -> std::result::Result<Vec<u8>, BoxError> { Err("no cents below zero".into()) };
        let (mut writer, outbox) = writer(builder().serializer(refuse).build().unwrap());
        let error = writer.records(&mut vec![Record::new((1, -1), 0)]).unwrap_err().to_string();
        assert!(error.contains("'Sink: Kafka'"), "{error}");
        assert!(error.contains("topic 'totals': no cents below zero"), "{error}");
        assert_eq!(outbox.take(), vec![]);
    }

    #[test]
    fn a_topic_per_record_or_headers_leave_the_sink_unmarked() {
        let per_record = builder().serializer(JsonValue).topic_from(|t: &Total| format!("totals-{}", t.0));
        let headers = builder().serializer(JsonValue).headers(|_: &Total| vec![("v".into(), b"1".to_vec())]);
        let (per_record, headers) = (per_record.build().unwrap(), headers.build().unwrap());
        assert!(KafkaTopicWriters::mark(per_record.spec).is_none());
        assert!(KafkaTopicWriters::mark(headers.spec).is_none());
    }
}
