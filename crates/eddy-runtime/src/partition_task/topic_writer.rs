//! The tail of a cut edge in a partition task: each record, encoded with the edge's codec,
//! goes into the task's outbox for the partition of the repartition topic whose task must
//! read it; watermarks and the end of input go to every partition.
//!
//! The partition is the one the edge's partitioner picks among `partitions` targets, exactly
//! as in one process it picks a subtask: a key_by edge by the key's key group
//! (`subtask_for_key_group`, Flink's `computeOperatorIndexForKeyGroup`), so task `p` of the
//! reading sub-topology gets the key groups `KeyGroupRange::of_subtask(p, ..)` that its keyed
//! state holds; a rebalance round robin from the writing task's index.

use std::sync::Arc;

use eddy_core::time::{MIN_TIMESTAMP, NO_TIMESTAMP};
use eddy_core::{Barrier, OperatorInfo, Output, Record, Result, Timestamp};

use crate::codec::RecordCodec;
use crate::graph::{erase, AnyOutput};
use crate::partitioner::Partitioner;
use crate::repartition::Repartition;
use crate::topic::{OutRecord, Outbox, Outgoing};

/// A cut edge's repartition topic as a partition task writes or reads it.
#[derive(Debug, Clone)]
pub struct CutTopic {
    /// The topic's name.
    pub topic: Arc<str>,
    /// The edge's mark, with the codec of its records.
    pub repartition: Repartition,
    /// The topic's partition count: the number of tasks of each sub-topology.
    pub partitions: usize,
    /// Where the writing task's output goes.
    pub outbox: Outbox,
}

impl CutTopic {
    /// The edge's codec for records of type `T`; an error if the edge carries another type.
    pub(crate) fn codec<T: 'static>(&self) -> Result<RecordCodec<T>> {
        self.repartition.codec_of::<T>().cloned().ok_or_else(|| {
            eddy_core::Error::InvalidJob(format!(
                "the codec of repartition topic '{}' encodes {}, but the edge carries {}",
                self.topic,
                self.repartition.codec.record_type(),
                std::any::type_name::<T>()
            ))
        })
    }
}

/// Writes one cut edge's records to its repartition topic (through the task's outbox).
pub(crate) struct TopicWriter<T, P> {
    topic: CutTopic,
    codec: RecordCodec<T>,
    partitioner: P,
    /// The producing operator, for errors.
    info: OperatorInfo,
    /// The last watermark sent, so a repeated one is not sent again.
    watermark: Timestamp,
}

/// The writer of `topic` for records of type `T`, partitioned by `partitioner`, erased.
pub(crate) fn topic_writer<T: Send + 'static, P: Partitioner<T>>(
    info: OperatorInfo,
    topic: &CutTopic,
    partitioner: P,
) -> Result<AnyOutput> {
    let writer =
        TopicWriter { codec: topic.codec::<T>()?, topic: topic.clone(), partitioner, info, watermark: MIN_TIMESTAMP };
    Ok(erase::<T>(Box::new(writer)))
}

impl<T: 'static, P: Partitioner<T>> TopicWriter<T, P> {
    fn out_record(&mut self, record: &Record<T>) -> Result<Outgoing> {
        let mut payload = Vec::new();
        self.codec.encode(record, &mut payload).map_err(|e| {
            self.info.error(format!("cannot write a record to repartition topic '{}': {e}", self.topic.topic))
        })?;
        let partition = self.partitioner.target(&record.value, self.topic.partitions)?;
        Ok(Outgoing::Record(OutRecord {
            topic: self.topic.topic.clone(),
            partition: Some(partition as i32),
            key: None,
            payload,
            timestamp: (record.timestamp != NO_TIMESTAMP).then_some(record.timestamp),
        }))
    }
}

impl<T: Send + 'static, P: Partitioner<T>> Output<T> for TopicWriter<T, P> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let out = batch.iter().map(|r| self.out_record(r)).collect::<Result<Vec<_>>>()?;
        batch.clear();
        self.topic.outbox.extend(out);
        Ok(())
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        if watermark > self.watermark {
            self.watermark = watermark;
            self.topic.outbox.push(Outgoing::Watermark { topic: self.topic.topic.clone(), watermark });
        }
        Ok(())
    }

    /// Idleness does not cross a topic: the reading tasks hold their input's watermark at
    /// this task's last one until it sends a newer one (see the module docs of
    /// [`partition_task`](crate::partition_task)).
    fn idle(&mut self, _: bool) -> Result<()> {
        Ok(())
    }

    fn tick(&mut self, _: Timestamp) -> Result<()> {
        Ok(())
    }

    /// Nothing to snapshot: every record before the barrier is in the outbox already.
    fn barrier(&mut self, _: Barrier) -> Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.topic.outbox.push(Outgoing::End { topic: self.topic.topic.clone() });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use eddy_core::key::{key_group, KeyGroupRange, KeyHasher};
    use eddy_core::BoxError;

    use super::*;
    use crate::codec::Codec;
    use crate::graph::unerase;
    use crate::partitioner::{KeyGroups, Rebalance};

    struct Utf8;
    impl Codec<String> for Utf8 {
        fn encode(&self, value: &String, out: &mut Vec<u8>) -> Result<(), BoxError> {
            out.extend_from_slice(value.as_bytes());
            Ok(())
        }
        fn decode(&self, bytes: &[u8]) -> Result<String, BoxError> {
            Ok(std::str::from_utf8(bytes)?.to_string())
        }
    }

    fn topic(partitions: usize) -> CutTopic {
        let repartition = Repartition::new("words", RecordCodec::new(Arc::new(Utf8)));
        CutTopic { topic: "app-words-repartition".into(), repartition, partitions, outbox: Outbox::default() }
    }

    fn info() -> OperatorInfo {
        OperatorInfo { name: "FlatMap".into(), subtask: 1, parallelism: 3 }
    }

    fn partitions(out: &[Outgoing]) -> Vec<i32> {
        out.iter().filter_map(|o| if let Outgoing::Record(r) = o { r.partition } else { None }).collect()
    }

    #[test]
    fn a_keyed_record_goes_to_the_partition_whose_task_owns_its_key_group() {
        let (topic, max_parallelism) = (topic(3), 16);
        let partitioner = KeyGroups::new(|w: &String| w.clone(), max_parallelism);
        let mut writer = unerase::<String>(topic_writer::<String, _>(info(), &topic, partitioner).unwrap()).unwrap();
        let words: Vec<String> = (0..50).map(|i| format!("word{i}")).collect();
        writer.records(&mut words.iter().map(|w| Record::new(w.clone(), 7)).collect()).unwrap();
        let out = topic.outbox.take();
        for (word, partition) in words.iter().zip(partitions(&out)) {
            let group = key_group(KeyHasher::default().hash(word).unwrap(), max_parallelism);
            let owner = KeyGroupRange::of_subtask(partition as usize, max_parallelism, 3);
            assert!(owner.contains(group), "{word}: key group {group} is not in partition {partition}'s {owner:?}");
        }
        let Outgoing::Record(first) = &out[0] else { panic!("a record") };
        assert_eq!(
            topic.repartition.codec_of::<String>().unwrap().decode(&first.payload).unwrap(),
            Record::new("word0".into(), 7)
        );
        assert_eq!(first.timestamp, Some(7));
    }

    #[test]
    fn a_rebalance_goes_round_robin_and_time_goes_to_every_partition() {
        let topic = topic(3);
        let mut writer =
            unerase::<String>(topic_writer::<String, _>(info(), &topic, Rebalance::starting_at(1)).unwrap()).unwrap();
        writer.records(&mut (0..4).map(|i| Record::new(i.to_string(), i)).collect()).unwrap();
        assert_eq!(partitions(&topic.outbox.take()), [2, 0, 1, 2]);
        writer.watermark(5).unwrap();
        writer.watermark(5).unwrap();
        writer.watermark(3).unwrap();
        writer.finish().unwrap();
        let name: Arc<str> = "app-words-repartition".into();
        let expected = [Outgoing::Watermark { topic: name.clone(), watermark: 5 }, Outgoing::End { topic: name }];
        assert_eq!(topic.outbox.take(), expected, "a watermark is sent once, and never backwards");
    }

    #[test]
    fn an_edge_of_another_record_type_is_refused() {
        let error = topic_writer::<u64, _>(info(), &topic(2), Rebalance::starting_at(0)).err().unwrap().to_string();
        assert!(
            error.contains("'app-words-repartition' encodes alloc::string::String, but the edge carries u64"),
            "{error}"
        );
    }
}
