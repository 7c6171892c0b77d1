//! A DataStream job graph's tasks: [`GraphWork`], the [`Work`] of its partition tasks.
//!
//! Each task is one partition of one sub-topology of the job's
//! [`DistributedPlan`], an `eddy_runtime` [`PartitionTask`] that runs the sub-topology's
//! operators as subtask `p` of `partitions`. The member hands it what its consumer reads —
//! records of partition `p` of each topic the sub-topology reads (its input topics, its
//! repartition topics: a union or a join reads several, the first by name its *lead*, by
//! which the group assigns the task), and the producing tasks' [`Control`] messages — and
//! sends what it drains
//! through the task's transactional producer: records to their partition (a cut edge's key
//! group's) or by key (an output topic), watermarks and ends of input to every partition of
//! the repartition topic, as [`Control`] messages with the task's partition as producer.
//!
//! **Checkpoints.** Before each commit the task takes a snapshot (a checkpoint barrier
//! through its operators), sends what the barrier flushed, and files the [`TaskState`] —
//! its operators' state, and the newest watermark and end of every producing task it has
//! heard (control messages before the committed offset are never read again) — as
//! `state/sub-topology-<n>/<p>/<id>.bin`, and its transaction commits its offsets (one per
//! topic it reads) with `<id>` as each offset's metadata (as Kafka Streams commits a task's
//! metadata with its offsets); a task that starts reads its lead topic's. So the committed
//! offset names a complete checkpoint, and the transaction is the
//! checkpoint's commit point. The id is the checkpoint's number and a random part: unlike a
//! window task's offset-named checkpoint, a partition task may commit twice at one offset
//! (output a tick produced: a processing-time timer, a watermark), and a zombie's file of the
//! same number must not overwrite the new owner's. A task that starts reads the state its
//! committed offset's metadata names and builds its `PartitionTask` from it; the checkpoint
//! a commit supersedes is deleted once it has committed.
//!
//! **Bounded runs.** A task that has read an input topic's partition up to the end offset
//! seen at start tells its `PartitionTask` (`end_of_topic`, for each topic on its own): its sources finish, and the end
//! travels through the repartition topics. A task is finished when every input ended
//! (`is_finished`) and that is committed; the run ends when every task of every
//! sub-topology is.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};

use eddy_runtime::config::JobConfig;
use eddy_runtime::distributed_plan::DistributedPlan;
use eddy_runtime::graph::JobGraph;
use eddy_runtime::metric_names::LATE_RECORDS_DROPPED;
use eddy_runtime::partition_task::{PartitionTask, TaskSpec, TaskState};
use eddy_runtime::topic::{Outgoing, TopicRecord};
use rdkafka::producer::BaseRecord;

use crate::control::Control;
use crate::error::{ClusterError, Result};
use crate::task::Context;
use crate::work::{Committed, Out, Received, Work};

/// A job graph cut into sub-topologies, run as partition tasks.
pub(crate) struct GraphWork {
    pub(crate) graph: JobGraph,
    pub(crate) plan: DistributedPlan,
    pub(crate) config: JobConfig,
    /// Every topic a task reads → the sub-topology that reads it.
    pub(crate) readers: BTreeMap<String, usize>,
    /// Each sub-topology's topics, by name: the first is its lead.
    pub(crate) reads: Vec<Vec<String>>,
    /// Each sub-topology's name: `sub-topology-<n>`.
    pub(crate) names: Vec<String>,
    /// The input topics' end offsets, in a bounded run.
    pub(crate) ends: Option<BTreeMap<String, Vec<i64>>>,
}

/// One partition task and what the cluster keeps beside it.
pub(crate) struct Body {
    task: PartitionTask,
    sub_topology: usize,
    partition: i32,
    /// The id of the newest committed checkpoint.
    manifest: Option<String>,
    /// The id of the checkpoint filed for the commit under way.
    filed: Option<String>,
    /// The next checkpoint's number.
    next_checkpoint: u64,
    /// The input topics whose end this task has told its `PartitionTask` about.
    ended_topics: Vec<String>,
    /// The late records its operators had dropped at the last commit.
    late: u64,
}

impl Work for GraphWork {
    type Role = usize;
    type Body = Body;

    fn subscribed(&self) -> Vec<String> {
        self.reads.iter().filter_map(|topics| topics.first().cloned()).collect()
    }

    fn co_read(&self, role: usize) -> &[String] {
        self.reads[role].get(1..).unwrap_or_default()
    }

    fn role_of(&self, topic: &str) -> usize {
        // The member reads these topics only: a record of another cannot come.
        self.readers.get(topic).copied().unwrap_or_default()
    }

    fn name(&self, role: usize) -> &str {
        &self.names[role]
    }

    /// Only in an input topic: its bounded end is an offset, which transaction markers may
    /// stand at. A repartition topic's end is its producers' end records, so its tasks
    /// commit the offset after the last record they processed — never a position they did
    /// not read up to themselves.
    fn skips_markers(&self, topic: &str) -> bool {
        self.plan.input_topics.iter().any(|input| input.topic == topic)
    }

    fn purges(&self, topic: &str) -> bool {
        self.plan.topics.iter().any(|t| t.name == topic)
    }

    fn sub_topologies(&self) -> usize {
        self.plan.sub_topologies.len()
    }

    fn resume(cx: &Context<Self>, role: usize, partition: i32, committed: Option<&Committed>) -> Result<Body> {
        let work = &cx.work;
        let name = work.name(role);
        let restored = match committed {
            None => None,
            Some(Committed { offset, metadata }) => {
                if metadata.is_empty() {
                    return Err(ClusterError::Checkpoint(format!(
                        "the committed offset {offset} of task {name}/{partition} names no checkpoint: was it committed by another program under this application id? Use a new --application-id"
                    )));
                }
                let path = crate::store::CheckpointStore::checkpoint_path(name, partition, metadata);
                let bytes = cx.store.get_checkpoint(name, partition, metadata)?.ok_or_else(|| {
                    ClusterError::Checkpoint(format!(
                        "{path}, which the committed offset {offset} of task {name}/{partition} names, is missing from the checkpoint store: was it emptied? Start over with a new --application-id"
                    ))
                })?;
                Some(TaskState::from_bytes(&bytes).map_err(|e| {
                    ClusterError::Checkpoint(format!(
                        "{path} does not decode ({e}): was it written by another build? Use a new --application-id"
                    ))
                })?)
            }
        };
        let next_checkpoint = restored.as_ref().map_or(1, |state| state.checkpoint + 1);
        let spec = TaskSpec {
            graph: &work.graph,
            plan: &work.plan,
            sub_topology: role,
            partition: partition as usize,
            partitions: cx.partitions,
            config: &work.config,
            restored,
        };
        let task = PartitionTask::build(spec).map_err(|e| runtime_error(name, partition, e))?;
        let manifest = committed.map(|c| c.metadata.clone());
        Ok(Body {
            task,
            sub_topology: role,
            partition,
            manifest,
            filed: None,
            next_checkpoint,
            ended_topics: Vec::new(),
            late: 0,
        })
    }

    fn process(cx: &Context<Self>, body: &mut Body, received: &Received<'_>, out: &mut Out<'_>) -> Result<()> {
        let name = cx.work.name(body.sub_topology);
        match received.control {
            Some(bytes) => body.control(name, received.topic, Control::decode(bytes)?)?,
            None => {
                let record = TopicRecord {
                    partition: received.partition,
                    offset: received.offset,
                    key: received.key,
                    payload: received.payload,
                    timestamp: received.timestamp,
                };
                let topic = received.topic;
                body.task.record(topic, &record).map_err(|e| runtime_error(name, body.partition, e))?
            }
        }
        body.send(cx, out)
    }

    fn tick(cx: &Context<Self>, body: &mut Body, out: &mut Out<'_>) -> Result<()> {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let name = cx.work.name(body.sub_topology);
        body.task.tick(now).map_err(|e| runtime_error(name, body.partition, e))?;
        body.send(cx, out)
    }

    fn prepare(
        cx: &Context<Self>,
        body: &mut Body,
        partition: i32,
        next_offsets: &[(&str, i64)],
        out: &mut Out<'_>,
    ) -> Result<bool> {
        let Some(ends) = &cx.work.ends else { return Ok(false) };
        let mut ended = false;
        for (topic, ends) in ends {
            let Some(&(_, next_offset)) = next_offsets.iter().find(|(read, _)| read == topic) else { continue };
            if body.ended_topics.contains(topic) {
                continue;
            }
            if next_offset >= ends[partition as usize] {
                let name = cx.work.name(body.sub_topology);
                body.task.end_of_topic(topic).map_err(|e| runtime_error(name, partition, e))?;
                body.ended_topics.push(topic.clone());
                ended = true;
            }
        }
        body.send(cx, out)?;
        Ok(ended)
    }

    /// Files the state as checkpoint `<number>-<random>`: a name no other commit uses, not
    /// even one at the same offset (output sent by a tick) or a zombie's of the same number.
    fn checkpoint(cx: &Context<Self>, body: &mut Body, partition: i32, _: i64, out: &mut Out<'_>) -> Result<String> {
        let name = cx.work.name(body.sub_topology);
        let state = body.task.snapshot(body.next_checkpoint).map_err(|e| runtime_error(name, partition, e))?;
        body.send(cx, out)?;
        let id = format!("{:020}-{:016x}", body.next_checkpoint, RandomState::new().build_hasher().finish());
        cx.store.put_checkpoint(name, partition, &id, state.to_bytes())?;
        body.filed = Some(id.clone());
        Ok(id)
    }

    fn committed(cx: &Context<Self>, body: &mut Body, _: i64) -> Result<()> {
        body.task.committed(body.next_checkpoint);
        body.next_checkpoint += 1;
        body.warn_of_late_records(cx.work.name(body.sub_topology));
        // The checkpoint this one supersedes is never read again.
        let filed = body.filed.take();
        if let Some(previous) = std::mem::replace(&mut body.manifest, filed) {
            cx.store.delete_checkpoint(cx.work.name(body.sub_topology), body.partition, &previous)?;
        }
        Ok(())
    }

    fn finished(body: &Body) -> bool {
        body.task.is_finished()
    }
}

impl Body {
    /// Logs the late records the task's operators dropped since the last commit: no error
    /// (Flink drops them too, counting them), but a run whose output misses records should
    /// say where they went.
    fn warn_of_late_records(&mut self, name: &str) {
        let late = self.task.metrics().snapshot().total_all(LATE_RECORDS_DROPPED);
        if late > self.late {
            let dropped = late - self.late;
            tracing::warn!(task = name, partition = self.partition, dropped, "late records dropped");
            self.late = late;
        }
    }

    /// Hands a producing task's control message on `topic` to the task.
    fn control(&mut self, name: &str, topic: &str, control: Control) -> Result<()> {
        let (producer, outcome) = match control {
            Control::Watermark { producer, watermark } => {
                (producer, self.task.watermark(topic, producer as usize, watermark))
            }
            Control::End { producer } => (producer, self.task.end(topic, producer as usize)),
        };
        outcome.map_err(|e| {
            ClusterError::Runtime(format!(
                "task {name}/{}: a control message of producing task {producer} on {topic}: {e}",
                self.partition
            ))
        })
    }

    /// Sends what the task produced: records to their partition (or by key), watermarks and
    /// ends to every partition of their repartition topic.
    fn send(&mut self, cx: &Context<GraphWork>, out: &mut Out<'_>) -> Result<()> {
        let producer = self.partition as u32;
        for outgoing in self.task.drain() {
            match outgoing {
                Outgoing::Record(record) => {
                    let mut base = BaseRecord::<[u8], [u8]>::to(&record.topic).payload(&record.payload[..]);
                    if let Some(key) = &record.key {
                        base = base.key(&key[..]);
                    }
                    if let Some(timestamp) = record.timestamp {
                        base = base.timestamp(timestamp);
                    }
                    out.send_record(base, record.partition)?;
                }
                Outgoing::Watermark { topic, watermark } => {
                    let control = Control::Watermark { producer, watermark }.encode();
                    (0..cx.partitions as i32).try_for_each(|to| out.send_control(&topic, to, &control))?;
                }
                Outgoing::End { topic } => {
                    let control = Control::End { producer }.encode();
                    (0..cx.partitions as i32).try_for_each(|to| out.send_control(&topic, to, &control))?;
                }
            }
        }
        Ok(())
    }
}

/// An error of task `name`/`partition`'s operators, saying whose.
fn runtime_error(name: &str, partition: i32, error: eddy_core::Error) -> ClusterError {
    ClusterError::Runtime(format!("task {name}/{partition}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_graph::{context, WORDS};

    /// A task reads its producers' control messages once: those before its committed offset
    /// come back from its checkpoint. Here every producer ended before the checkpoint, so the
    /// restored task has finished (without them it would wait for ends that never come).
    #[test]
    fn a_restored_task_knows_what_its_producers_said_before_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (cx, _) = context(&format!("file://{}", dir.path().display()), "127.0.0.1:1", 2);
        let topic = WORDS;
        assert_eq!(cx.work.readers.get(topic), Some(&1));
        let mut body = GraphWork::resume(&cx, 1, 0, None).unwrap();
        body.control("window", topic, Control::Watermark { producer: 0, watermark: 7 }).unwrap();
        assert!(!GraphWork::finished(&body));
        for producer in 0..2 {
            body.control("window", topic, Control::End { producer }).unwrap();
        }
        assert!(GraphWork::finished(&body));
        let state = body.task.snapshot(1).unwrap();
        cx.store.put_checkpoint("sub-topology-1", 0, "c1", state.to_bytes()).unwrap();

        let committed = |metadata: &str| Committed { offset: 42, metadata: metadata.into() };
        let restored = GraphWork::resume(&cx, 1, 0, Some(&committed("c1"))).unwrap();
        assert!(GraphWork::finished(&restored), "the restored task waits for ends it read before");
        assert_eq!(restored.next_checkpoint, 2);
        // A checkpoint its committed offset names but the store lacks is a clear error.
        let missing = GraphWork::resume(&cx, 1, 0, Some(&committed("c2"))).err().unwrap().to_string();
        assert!(missing.contains("is missing from the checkpoint store"), "{missing}");
        let unnamed = GraphWork::resume(&cx, 1, 0, Some(&committed(""))).err().unwrap().to_string();
        assert!(unnamed.contains("names no checkpoint"), "{unnamed}");
    }

    /// The window task (sub-topology 1) goes through real checkpoints in a store (a
    /// directory), committed every `every` records and restored from the one committed at
    /// `cut`, while the source task (sub-topology 0) feeds it what it sends; after the end
    /// of input, the rows its checkpoints committed are the sequential model's (a count per
    /// line and 5 s window), and the store holds one checkpoint for the task, the committed
    /// one.
    #[test]
    fn a_task_state_round_trips_through_the_store() {
        use eddy_runtime::topic::TopicRecord;
        use rdkafka::producer::BaseProducer;

        let words = ["a", "b", "a", "c", "b", "a", "d", "a", "c", "b", "a", "e"];
        // Non-decreasing times (monotonous watermarks: nothing late), over three windows.
        let lines: Vec<(&str, i64)> = words.iter().enumerate().map(|(i, w)| (*w, 1_000 * i as i64 + 300)).collect();
        let mut model = BTreeMap::<(i64, &str), u64>::new();
        for (word, time) in &lines {
            *model.entry((time - time % 5_000, *word)).or_default() += 1;
        }
        let mut expected: Vec<String> = model.iter().map(|((start, w), n)| format!("{start},{w},{n}")).collect();
        expected.sort();
        // Nothing here sends through the producer: the window task's sink is in memory.
        let producer: BaseProducer = rdkafka::ClientConfig::new().create().unwrap();
        let checkpoints = |dir: &std::path::Path| {
            std::fs::read_dir(dir.join("state/sub-topology-1/0")).map_or(0, |files| files.count())
        };
        for every in [1, 3, 5] {
            for cut in 0..=lines.len() {
                let dir = tempfile::tempdir().unwrap();
                let (cx, rows) = context(&format!("file://{}", dir.path().display()), "127.0.0.1:1", 1);
                let mut source = GraphWork::resume(&cx, 0, 0, None).unwrap();
                let mut window = GraphWork::resume(&cx, 1, 0, None).unwrap();
                let mut in_transaction = false;
                let mut out = Out { producer: &producer, in_transaction: &mut in_transaction };
                let mut read = 0i64;
                // What the source task sent goes to the window task, as the topic would carry it.
                let mut forward = |source: &mut Body, window: &mut Body, out: &mut Out<'_>| {
                    for outgoing in source.task.drain() {
                        let control = match &outgoing {
                            Outgoing::Record(_) => None,
                            Outgoing::Watermark { watermark, .. } => {
                                Some(Control::Watermark { producer: 0, watermark: *watermark }.encode())
                            }
                            Outgoing::End { .. } => Some(Control::End { producer: 0 }.encode()),
                        };
                        let record = match &outgoing {
                            Outgoing::Record(record) => Some(record),
                            _ => None,
                        };
                        let received = Received {
                            topic: WORDS,
                            partition: 0,
                            offset: read,
                            key: record.and_then(|r| r.key.as_deref()),
                            payload: record.map(|r| &r.payload[..]),
                            timestamp: record.and_then(|r| r.timestamp),
                            control: control.as_deref(),
                        };
                        GraphWork::process(&cx, window, &received, out).unwrap();
                        read += 1;
                    }
                };
                let commit = |window: &mut Body, out: &mut Out<'_>, offset: i64| {
                    let id = GraphWork::checkpoint(&cx, window, 0, offset, out).unwrap();
                    GraphWork::committed(&cx, window, offset).unwrap();
                    assert_eq!(checkpoints(dir.path()), 1, "superseded checkpoints are deleted");
                    Committed { offset, metadata: id }
                };
                for (i, (word, time)) in lines.iter().enumerate() {
                    let record = TopicRecord {
                        partition: 0,
                        offset: i as i64,
                        key: None,
                        payload: Some(word.as_bytes()),
                        timestamp: Some(*time),
                    };
                    source.task.record("lines", &record).unwrap();
                    source.task.tick(*time).unwrap();
                    forward(&mut source, &mut window, &mut out);
                    if i == cut {
                        let committed = commit(&mut window, &mut out, i as i64);
                        window = GraphWork::resume(&cx, 1, 0, Some(&committed)).unwrap();
                    } else if i % every == 0 {
                        commit(&mut window, &mut out, i as i64);
                    }
                }
                source.task.end_of_topic("lines").unwrap();
                source.task.tick(i64::MAX).unwrap();
                forward(&mut source, &mut window, &mut out);
                assert!(GraphWork::finished(&window), "the window task heard its producer's end");
                commit(&mut window, &mut out, lines.len() as i64);
                assert!(!in_transaction, "the window task sent something through the producer");
                let mut rows = rows.take();
                rows.sort();
                assert_eq!(rows, expected, "every {every}, restored at {cut}");
            }
        }
    }
}
