//! A Kafka source's topic mark: how a distributed task reads the source's topic.
//!
//! In a distributed job (`docs/scale-out.md`) a source node does not run its own consumer:
//! the task of partition `p` gets the records of partition `p` from the job's consumer group
//! and hands each to the node's [`TopicReader`]. The reader built here does with each record
//! what a [`KafkaReader`](crate::KafkaReader) does with one it polled: the source's
//! deserializer makes the value, its [`timestamps`](crate::KafkaSource::timestamps) function
//! (or the Kafka record timestamp) the event time, and the watermark strategy given to
//! [`from_kafka`](crate::KafkaSourceExt::from_kafka) generates the watermarks per partition,
//! exactly as in one process (eddy-core's [`SourceOutput`] does both). A record that does not
//! deserialize, or whose event time is a marker (`i64::MIN`, `i64::MAX`), goes to the
//! source's [`dead_letters::<RawRecord>()`](eddy_stream::DataStream::dead_letters) as in one
//! process; a source whose dead letters nobody reads fails the task instead, naming the
//! record, since a distributed task cannot drop a record it is about to commit the offset of.
//!
//! What differs from one process: the consumer is the task's, so the source's brokers,
//! starting offsets, boundedness and consumer properties are the job's business (the
//! cluster's settings), not the source's; record headers are not handed over
//! ([`KafkaRecord::header`](crate::KafkaRecord::header) finds none); and a watermark
//! alignment in the strategy is not applied (each task reads one partition).

use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy_core::time::MAX_WATERMARK;
use eddy_core::{Barrier, OperatorInfo, Output, Result, SourceOutput, SourceWatermarks, SplitId, Timestamp};
use eddy_runtime::fan_out::combine;
use eddy_runtime::graph::{AnyOutput, BuildContext};
use eddy_runtime::metrics::names;
use eddy_runtime::source_dead_letters::WithDeadLetters;
use eddy_runtime::topic::{InputTopic, TopicReader, TopicReaderFactory, TopicRecord};
use eddy_runtime::Counter;
use eddy_stream::dead_letter::DEAD_LETTER_TAG;
use eddy_stream::Data;

use crate::deserializer::KafkaRecord;
use crate::reader::collect;
use crate::source_spec::Spec;

/// Builds the [`TopicReader`]s of one Kafka source of one topic.
pub(crate) struct KafkaTopicReaders<T> {
    spec: Arc<Spec<T>>,
    topic: String,
    watermarks: Option<SourceWatermarks<T>>,
}

impl<T: Data> KafkaTopicReaders<T> {
    /// The mark of a source with settings `spec` and watermarks `watermarks`; `None` when it
    /// reads several topics or a pattern (a task reads one partition of one topic).
    pub(crate) fn mark(spec: Arc<Spec<T>>, watermarks: Option<SourceWatermarks<T>>) -> Option<InputTopic> {
        let [topic] = &spec.topics[..] else { return None };
        if spec.pattern.is_some() {
            return None;
        }
        let topic = topic.clone();
        let reader = Arc::new(KafkaTopicReaders { spec, topic: topic.clone(), watermarks });
        Some(InputTopic { topic, reader })
    }
}

impl<T: Data> TopicReaderFactory for KafkaTopicReaders<T> {
    /// The reader of the task of partition `ctx.info.subtask` (of the topic's partition
    /// count, `ctx.info.parallelism`): that partition's split is registered at once, so the
    /// reader holds the watermark back until the partition's first record, as one process's
    /// reader of an assigned partition does.
    fn build(&self, ctx: &BuildContext, outputs: Vec<AnyOutput>) -> Result<Box<dyn TopicReader>> {
        let dead_letters: Vec<_> =
            ctx.take_side_outputs().into_iter().filter(|(tag, _)| tag == DEAD_LETTER_TAG).map(|(_, c)| c).collect();
        let reads_dead_letters = !dead_letters.is_empty();
        let output = WithDeadLetters::new(combine::<T>(outputs)?, dead_letters);
        let mut reader = KafkaTopicReader {
            spec: self.spec.clone(),
            topic: self.topic.clone(),
            out: SourceOutput::new(self.watermarks.clone()),
            output,
            splits: Vec::new(),
            reads_dead_letters,
            info: ctx.info.clone(),
            batch_size: ctx.config.batch_size.max(1),
            records_in: ctx.counter(names::RECORDS_IN),
            dead_letters: ctx.counter(names::DEAD_LETTERS),
            clock: None,
            last_periodic: None,
        };
        let partition = i32::try_from(ctx.info.subtask)
            .map_err(|_| ctx.info.error(format!("partition {} is beyond Kafka's", ctx.info.subtask)))?;
        reader.split(partition);
        reader.out.after_poll();
        Ok(Box::new(reader))
    }
}

/// One task's reader of a Kafka source's topic.
struct KafkaTopicReader<T> {
    spec: Arc<Spec<T>>,
    topic: String,
    /// Records, watermarks and dead letters not yet passed on.
    out: SourceOutput<T>,
    output: WithDeadLetters<T>,
    /// The split of each partition read.
    splits: Vec<(i32, SplitId)>,
    /// Whether anyone reads the source's dead letters.
    reads_dead_letters: bool,
    info: OperatorInfo,
    batch_size: usize,
    records_in: Counter,
    dead_letters: Counter,
    /// Processing time as the task gives it, and the instant it was first given: the
    /// idleness clock runs on the task's time.
    clock: Option<(Timestamp, Instant)>,
    /// When the periodic watermarks were last asked for.
    last_periodic: Option<Timestamp>,
}

impl<T: Data> KafkaTopicReader<T> {
    /// The split of `partition`, registered the first time.
    fn split(&mut self, partition: i32) -> SplitId {
        if let Some(&(_, split)) = self.splits.iter().find(|(p, _)| *p == partition) {
            return split;
        }
        let split = self.out.add_split(format!("{}-{partition}", self.topic));
        self.splits.push((partition, split));
        split
    }

    /// Passes on the records collected, with their watermarks.
    fn drain(&mut self) -> Result<()> {
        let sent = self.out.drain_to(self.output.main())?;
        if sent > 0 {
            self.records_in.add(sent as u64);
        }
        Ok(())
    }

    /// Passes on the dead letters collected (after the records before them), or fails when
    /// nobody reads them.
    fn dead_letters(&mut self) -> Result<()> {
        let letters = self.out.take_dead_letters();
        if !self.reads_dead_letters {
            let letter = &letters[0];
            return Err(self.info.error(format!(
                "cannot read the record at offset {} of {}: {}; read the source's \
                 .dead_letters::<RawRecord>() to keep such records out of the way",
                letter.input.position, letter.input.split, letter.error
            )));
        }
        self.drain()?;
        self.dead_letters.add(letters.len() as u64);
        self.output.dead_letters(letters)
    }

    /// The instant processing time `now` is on the idleness clock.
    fn instant(&mut self, now: Timestamp) -> Instant {
        let (start, at) = *self.clock.get_or_insert((now, Instant::now()));
        at + Duration::from_millis(now.saturating_sub(start).max(0) as u64)
    }
}

impl<T: Data> TopicReader for KafkaTopicReader<T> {
    fn record(&mut self, record: &TopicRecord<'_>) -> Result<()> {
        let split = self.split(record.partition);
        let kafka = KafkaRecord::of_topic(&self.topic, record);
        let (spec, out) = (&self.spec, &mut self.out);
        self.info.guard(|| collect(spec, &kafka, split, out))?;
        if self.out.has_dead_letters() {
            self.dead_letters()?;
        }
        if self.out.len() >= self.batch_size {
            self.drain()?;
        }
        Ok(())
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        if let Some(interval) = self.out.watermark_interval() {
            let due = self.last_periodic.is_none_or(|last| now.saturating_sub(last) >= interval.as_millis() as i64);
            if due {
                self.last_periodic = Some(now);
                let at = self.instant(now);
                let out = &mut self.out;
                self.info.guard(|| out.on_periodic(at))?;
            }
        }
        self.drain()?;
        self.output.tick(now)
    }

    /// Asks for the periodic watermarks first, so the watermark of every record before the
    /// barrier goes out before it: a task restored from this checkpoint never reads those
    /// records again, and a watermark still due for them (the newest record's, when no more
    /// come) would otherwise be lost for good, holding back every task that reads this one.
    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        if self.out.watermark_interval().is_some() {
            let out = &mut self.out;
            self.info.guard(|| out.on_periodic(Instant::now()))?;
        }
        self.drain()?;
        self.output.barrier(barrier)
    }

    /// Ends every partition's split and event time, as one process's reader does when its
    /// bounded input is done.
    fn finish(&mut self) -> Result<()> {
        for &(_, split) in &self.splits {
            self.out.finish_split(split);
        }
        self.drain()?;
        self.output.watermark(MAX_WATERMARK)?;
        self.output.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use eddy_core::time::NO_TIMESTAMP;
    use eddy_core::{BarrierKind, BoxError, DeadLetter, RawRecord, Record};
    use eddy_runtime::graph::erase;
    use eddy_runtime::side_channel::TypedSideChannel;
    use eddy_runtime::{DetachedBuild, JobConfig};
    use eddy_stream::WatermarkStrategy;

    use super::*;
    use crate::{KafkaRecord, KafkaSource};

    /// What reached an output, in order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Seen<T> {
        Records(Vec<(T, Timestamp)>),
        Watermark(Timestamp),
        Idle(bool),
        Barrier(u64),
        Finish,
    }

    /// An output that writes down what reaches it.
    struct Recorder<T>(Arc<Mutex<Vec<Seen<T>>>>);

    impl<T: Send> Output<T> for Recorder<T> {
        fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
            let records = batch.drain(..).map(|r| (r.value, r.timestamp)).collect();
            self.0.lock().unwrap().push(Seen::Records(records));
            Ok(())
        }
        fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
            self.0.lock().unwrap().push(Seen::Watermark(watermark));
            Ok(())
        }
        fn idle(&mut self, idle: bool) -> Result<()> {
            self.0.lock().unwrap().push(Seen::Idle(idle));
            Ok(())
        }
        fn tick(&mut self, _: Timestamp) -> Result<()> {
            Ok(())
        }
        fn barrier(&mut self, barrier: Barrier) -> Result<()> {
            self.0.lock().unwrap().push(Seen::Barrier(barrier.checkpoint));
            Ok(())
        }
        fn finish(&mut self) -> Result<()> {
            self.0.lock().unwrap().push(Seen::Finish);
            Ok(())
        }
    }

    type Log<T> = Arc<Mutex<Vec<Seen<T>>>>;

    /// Records of UTF-8 text (`"<event time ms>,<word>"`); other bytes do not deserialize.
    fn words() -> KafkaSource<String> {
        let parse = |record: &KafkaRecord<'_>| -> std::result::Result<String, BoxError> {
            let text = std::str::from_utf8(record.payload().ok_or("a tombstone")?)?;
            Ok(text.to_string())
        };
        KafkaSource::builder().brokers("127.0.0.1:1").topics(["words"]).deserializer(parse).build().unwrap()
    }

    fn event_time(line: &str) -> Timestamp {
        line.split(',').next().and_then(|t| t.parse().ok()).unwrap_or(i64::MIN)
    }

    /// The reader of partition `partition` of 2 of `source` under `strategy`, its output's
    /// log and, if `dead_letters`, its dead letters' log.
    fn reader<G: eddy_stream::WatermarkGenerator<String>>(
        source: KafkaSource<String>,
        strategy: WatermarkStrategy<G>,
        partition: usize,
        dead_letters: bool,
    ) -> (Box<dyn TopicReader>, Log<String>, Log<DeadLetter<RawRecord>>) {
        let mark = KafkaTopicReaders::mark(source.spec, strategy.per_split()).expect("one topic is marked");
        assert_eq!(mark.topic, "words");
        let (seen, letters) = (Log::default(), Log::default());
        let build = DetachedBuild::new(JobConfig::default());
        let ctx = build.context(OperatorInfo { name: "Source: words".into(), subtask: partition, parallelism: 2 });
        if dead_letters {
            let channel = TypedSideChannel::new(Box::new(Recorder(letters.clone())) as Box<dyn Output<_>>);
            ctx.side_outputs.borrow_mut().push((DEAD_LETTER_TAG.to_string(), Box::new(channel)));
        }
        let outputs = vec![erase::<String>(Box::new(Recorder(seen.clone())))];
        (mark.reader.build(&ctx, outputs).unwrap(), seen, letters)
    }

    fn record<'a>(partition: i32, offset: i64, payload: &'a [u8], timestamp: Option<i64>) -> TopicRecord<'a> {
        TopicRecord { partition, offset, key: Some(b"k"), payload: Some(payload), timestamp }
    }

    fn taken<T: Clone>(log: &Log<T>) -> Vec<Seen<T>> {
        std::mem::take(&mut *log.lock().unwrap())
    }

    fn records(items: &[(&str, Timestamp)]) -> Seen<String> {
        Seen::Records(items.iter().map(|(v, t)| (v.to_string(), *t)).collect())
    }

    #[test]
    fn records_decode_with_their_event_time_and_watermarks_follow_per_partition() {
        let source = words().timestamps(|l: &String| event_time(l)).unwrap();
        let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(100));
        let (mut reader, seen, _) = reader(source, strategy, 0, false);
        // Partition 1 far ahead: partition 0, the task's own, has no record yet and holds
        // the watermark back.
        reader.record(&record(1, 7, b"5000,far", Some(1))).unwrap();
        reader.tick(0).unwrap();
        assert_eq!(taken(&seen), vec![records(&[("5000,far", 5_000)])]);
        reader.record(&record(0, 0, b"1000,a", Some(2))).unwrap();
        reader.record(&record(0, 1, b"1500,b", Some(3))).unwrap();
        reader.tick(200).unwrap();
        // min(1500, 5000) − 100 − 1
        assert_eq!(taken(&seen), vec![records(&[("1000,a", 1_000), ("1500,b", 1_500)]), Seen::Watermark(1_399)]);
        reader.record(&record(0, 2, b"9000,c", Some(4))).unwrap();
        // The barrier takes the watermark of every record before it along, first: a task
        // restored from this checkpoint never reads them again to make it.
        reader.barrier(Barrier { checkpoint: 3, kind: BarrierKind::Checkpoint }).unwrap();
        let before = vec![records(&[("9000,c", 9_000)]), Seen::Watermark(4_899), Seen::Barrier(3)];
        assert_eq!(taken(&seen), before, "partition 1 holds it now");
        reader.tick(400).unwrap();
        assert_eq!(taken(&seen), vec![], "sent already");
        reader.finish().unwrap();
        assert_eq!(taken(&seen), vec![Seen::Watermark(MAX_WATERMARK), Seen::Finish]);
    }

    #[test]
    fn without_an_extractor_event_time_is_the_record_timestamp() {
        let (mut reader, seen, _) = reader(words(), WatermarkStrategy::monotonous(), 1, false);
        reader.record(&record(1, 0, b"x", Some(42_000))).unwrap();
        reader.tick(0).unwrap();
        assert_eq!(taken(&seen), vec![records(&[("x", 42_000)]), Seen::Watermark(41_999)]);
    }

    #[test]
    fn the_watermark_interval_and_idleness_run_on_the_tasks_clock() {
        let strategy = WatermarkStrategy::monotonous()
            .with_interval(Duration::from_millis(100))
            .with_idleness(Duration::from_millis(1_000));
        let (mut reader, seen, _) = reader(words(), strategy, 0, false);
        reader.record(&record(0, 0, b"x", Some(10_000))).unwrap();
        reader.tick(5_000).unwrap();
        assert_eq!(taken(&seen), vec![records(&[("x", 10_000)]), Seen::Watermark(9_999)]);
        reader.record(&record(0, 1, b"y", Some(11_000))).unwrap();
        reader.tick(5_050).unwrap();
        assert_eq!(taken(&seen), vec![records(&[("y", 11_000)])], "the interval is not up");
        reader.tick(5_100).unwrap();
        assert_eq!(taken(&seen), vec![Seen::Watermark(10_999)]);
        reader.tick(6_000).unwrap();
        assert_eq!(taken(&seen), vec![], "no record for 900 ms");
        reader.tick(6_100).unwrap();
        assert_eq!(taken(&seen), vec![Seen::Idle(true)], "no record for the idleness timeout");
        reader.record(&record(0, 2, b"z", Some(12_000))).unwrap();
        reader.tick(6_200).unwrap();
        assert_eq!(taken(&seen), vec![Seen::Idle(false), records(&[("z", 12_000)]), Seen::Watermark(11_999)]);
    }

    #[test]
    fn records_that_do_not_read_go_to_the_dead_letters_after_the_records_before_them() {
        let source = words().timestamps(|l: &String| event_time(l)).unwrap();
        let (mut reader, seen, letters) = reader(source, WatermarkStrategy::no_watermarks(), 0, true);
        reader.record(&record(0, 4, b"100,ok", Some(7))).unwrap();
        reader.record(&record(0, 5, b"\xff\xfe", Some(8))).unwrap();
        reader.record(&record(0, 6, b"late,marker", None)).unwrap();
        reader.barrier(Barrier { checkpoint: 1, kind: BarrierKind::Checkpoint }).unwrap();
        assert_eq!(taken(&seen), vec![records(&[("100,ok", 100)]), Seen::Barrier(1)]);
        let letters: Vec<_> = taken(&letters)
            .into_iter()
            .filter_map(|s| match s {
                Seen::Records(r) => Some(r),
                _ => None,
            })
            .flatten()
            .collect();
        let raw = |position: &str, timestamp, payload: &[u8]| RawRecord {
            split: "words-0".into(),
            position: position.into(),
            timestamp,
            key: Some(b"k".to_vec()),
            payload: payload.to_vec(),
        };
        assert_eq!(letters.len(), 2, "{letters:?}");
        assert_eq!(letters[0].0.input, raw("5", 8, b"\xff\xfe"));
        assert!(letters[0].0.error.contains("invalid utf-8"), "{}", letters[0].0.error);
        assert_eq!(letters[0].1, 8, "a dead letter carries the record's own timestamp");
        assert_eq!(letters[1].0.input, raw("6", NO_TIMESTAMP, b"late,marker"));
        assert_eq!(letters[1].0.error, eddy_core::time::reserved(i64::MIN).unwrap());
    }

    #[test]
    fn bad_bytes_fail_the_task_when_nobody_reads_the_dead_letters() {
        let (mut reader, _, _) = reader(words(), WatermarkStrategy::monotonous(), 0, false);
        let error = reader.record(&record(0, 12, b"\xc3", Some(1))).unwrap_err().to_string();
        assert!(error.contains("'Source: words'"), "{error}");
        assert!(error.contains("offset 12 of words-0"), "{error}");
        assert!(error.contains("dead_letters::<RawRecord>()"), "{error}");
    }

    proptest::proptest! {
        /// Records of the task's partition (0) and of another (1), with ticks between: every
        /// record comes out, in order, and after each tick the watermark is the model's — the
        /// minimum over the partitions read of (highest event time − 100 − 1), once each has
        /// a record, never going back. The task's own partition is read from the start; the
        /// other from its first record on.
        #[test]
        fn watermarks_are_the_minimum_over_partitions(
            steps in proptest::collection::vec((0i32..3, 0i64..10_000), 0..60),
        ) {
            let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(100));
            let (mut reader, seen, _) = reader(words(), strategy, 0, false);
            let (mut highest, mut model, mut now) = ([i64::MIN; 2], i64::MIN, 0);
            let mut sent = Vec::new();
            for (offset, &(step, time)) in steps.iter().enumerate() {
                if step == 2 {
                    now += 200;
                    reader.tick(now).unwrap();
                    // Partition 1 is read once it has a record: only then it counts.
                    let read = if highest[1] == i64::MIN { &highest[..1] } else { &highest[..] };
                    let before = model;
                    if read.iter().all(|&h| h != i64::MIN) {
                        model = model.max(read.iter().min().unwrap() - 101);
                    }
                    let watermarks: Vec<_> = taken(&seen).into_iter().filter_map(|s| match s {
                        Seen::Records(r) => { sent.extend(r); None }
                        Seen::Watermark(w) => Some(w),
                        other => panic!("{other:?}"),
                    }).collect();
                    // One tick asks each partition in turn, so the watermark may step up more
                    // than once on its way to the model's.
                    proptest::prop_assert_eq!(watermarks.last().copied(), (model > before).then_some(model));
                    proptest::prop_assert!(watermarks.windows(2).all(|w| w[0] < w[1]), "{:?}", watermarks);
                    continue;
                }
                let payload = time.to_string();
                reader.record(&record(step, offset as i64, payload.as_bytes(), Some(time))).unwrap();
                highest[step as usize] = highest[step as usize].max(time);
            }
            reader.barrier(Barrier { checkpoint: 1, kind: BarrierKind::Checkpoint }).unwrap();
            for s in taken(&seen) {
                if let Seen::Records(r) = s {
                    sent.extend(r);
                }
            }
            let want: Vec<_> = steps.iter().filter(|s| s.0 != 2).map(|&(_, t)| (t.to_string(), t)).collect();
            proptest::prop_assert_eq!(sent, want);
        }
    }

    #[test]
    fn a_source_of_several_topics_or_a_pattern_is_not_marked() {
        let build = |b: crate::KafkaSourceBuilder<crate::Utf8>| b.brokers("127.0.0.1:1").build::<String>().unwrap();
        let several = build(KafkaSource::builder().topics(["a", "b"]));
        let pattern = build(KafkaSource::builder().topic_pattern("a.*"));
        let none = WatermarkStrategy::monotonous().per_split::<String>();
        assert!(KafkaTopicReaders::mark(several.spec, none.clone()).is_none());
        assert!(KafkaTopicReaders::mark(pattern.spec, none).is_none());
    }
}
