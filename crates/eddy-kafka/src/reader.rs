//! One subtask's Kafka reader: the partitions it owns (by [`crate::owner`]), their offsets,
//! discovery of new partitions and topics, bounded ends, lag, and offsets committed back to
//! the consumer group when a checkpoint completes.
//!
//! The reader assigns its partitions itself (`assign`, not a group subscription): the group
//! never moves a partition between subtasks, and a restore rewinds each partition to the
//! offset its checkpoint recorded.
//!
//! With watermark alignment the runtime names the partitions whose watermark ran too far
//! ahead of their group ([`SourceReader::pause_or_resume_splits`]); the reader pauses them in
//! the consumer (librdkafka's `pause`, which also drops what it had fetched for them ahead of
//! the reader and fetches again from the next unread offset on `resume`), so a partition with
//! a backlog of newer records waits while the others catch up, without a record lost or read
//! twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy_core::time::{now_ms, reserved, NO_TIMESTAMP};
use eddy_core::{BoxError, RawRecord, ReaderContext, SourceOutput, SourcePoll, SourceReader, SplitId};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::client::Context;
use crate::deserializer::KafkaRecord;
use crate::error::{broker, KafkaError};
use crate::source_spec::{Fallback, Spec, StartingOffsets};
use crate::split::{owner, PartitionSplit};

/// How long a poll waits for the first record before it reports `Pending`.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// How often lag is reported (librdkafka's statistics come at this rate too).
const LAG_INTERVAL: Duration = Duration::from_secs(1);
/// How many checkpoints' offsets are kept for committing back.
const PENDING_COMMITS: usize = 16;

/// One owned partition.
#[derive(Debug)]
struct Partition {
    topic: String,
    partition: i32,
    /// The offset of the next record to emit.
    next: i64,
    /// Bounded mode: the end offset seen at start.
    end: Option<i64>,
    split: Option<SplitId>,
    finished: bool,
    /// The timestamp of the last record read (for lag in milliseconds).
    last_timestamp: Option<i64>,
    /// Whether watermark alignment paused it.
    paused: bool,
}

impl Partition {
    fn name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    fn finish<T>(&mut self, out: &mut SourceOutput<T>) {
        if !self.finished {
            self.finished = true;
            if let Some(split) = self.split {
                out.finish_split(split);
            }
        }
    }
}

/// Reads the partitions one subtask owns. Made by [`crate::KafkaSource`].
pub struct KafkaReader<T> {
    spec: Arc<Spec<T>>,
    consumer: BaseConsumer<Context>,
    context: Context,
    subtask: usize,
    parallelism: usize,
    partitions: Vec<Partition>,
    /// On a restore: the offsets the checkpoint recorded for this subtask's partitions.
    restored: Option<HashMap<(String, i32), i64>>,
    last_discovery: Instant,
    last_lag: Instant,
    /// Checkpoint id → the offsets it recorded, until committed back to the group.
    pending_commits: BTreeMap<u64, Vec<(String, i32, i64)>>,
}

impl<T: Send + 'static> KafkaReader<T> {
    /// Connects, finds this subtask's partitions and where each starts.
    pub(crate) fn open(spec: Arc<Spec<T>>, context: &ReaderContext) -> Result<Self, KafkaError> {
        let client = Context::default();
        let bounded = if spec.bounded { "true" } else { "false" };
        let mut defaults = vec![
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("statistics.interval.ms", "1000"),
            ("enable.partition.eof", bounded),
        ];
        // librdkafka wants a group even for a consumer that assigns its own partitions;
        // without one of the user's, a private one that nothing is ever committed to.
        let private_group = format!("eddy-reader-{}-{}", std::process::id(), now_ms());
        defaults.push(("group.id", spec.group_id.as_deref().unwrap_or(&private_group)));
        let consumer: BaseConsumer<Context> = spec
            .settings
            .config(&defaults)
            .create_with_context(client.clone())
            .map_err(|e| broker("source", &spec.settings.brokers, format!("cannot create the consumer: {e}")))?;
        let restored = context.restored.as_ref().map(|splits| {
            splits
                .iter()
                .filter_map(|bytes| PartitionSplit::decode(bytes).ok())
                .filter(|s| owner(&s.topic, s.partition, context.parallelism) == context.subtask)
                .map(|s| ((s.topic, s.partition), s.next_offset))
                .collect()
        });
        let mut reader = KafkaReader {
            spec,
            consumer,
            context: client,
            subtask: context.subtask,
            parallelism: context.parallelism,
            partitions: Vec::new(),
            restored,
            last_discovery: Instant::now(),
            last_lag: Instant::now(),
            pending_commits: BTreeMap::new(),
        };
        reader.discover(true)?;
        Ok(reader)
    }

    fn error(&self, message: impl std::fmt::Display) -> KafkaError {
        let last = self.context.health.last().map(|l| format!(" (last client error: {l})")).unwrap_or_default();
        broker("source", &self.spec.settings.brokers, format!("{message}{last}"))
    }

    /// The partitions of the subscribed topics (or of the topics matching the pattern).
    fn topic_partitions(&self, initial: bool) -> Result<Vec<(String, i32)>, KafkaError> {
        let timeout = self.spec.request_timeout;
        let mut found = Vec::new();
        if let Some(pattern) = &self.spec.pattern {
            let metadata = self
                .consumer
                .fetch_metadata(None, timeout)
                .map_err(|e| self.error(format!("cannot list topics: {e}")))?;
            for topic in metadata.topics() {
                if !topic.name().starts_with("__") && pattern.is_match(topic.name()) {
                    found.extend(topic.partitions().iter().map(|p| (topic.name().to_string(), p.id())));
                }
            }
        }
        for name in &self.spec.topics {
            let metadata = self
                .consumer
                .fetch_metadata(Some(name), timeout)
                .map_err(|e| self.error(format!("cannot read the metadata of topic '{name}': {e}")))?;
            let Some(topic) = metadata.topics().iter().find(|t| t.name() == name) else { continue };
            if topic.error().is_some() || topic.partitions().is_empty() {
                if initial {
                    return Err(KafkaError::UnknownTopic {
                        brokers: self.spec.settings.brokers.clone(),
                        topic: name.clone(),
                    });
                }
                continue;
            }
            found.extend(topic.partitions().iter().map(|p| (name.clone(), p.id())));
        }
        self.context.health.up();
        Ok(found)
    }

    /// Adds the partitions this subtask owns that it does not read yet, and assigns them.
    fn discover(&mut self, initial: bool) -> Result<(), KafkaError> {
        self.last_discovery = Instant::now();
        let mut added = false;
        for (topic, partition) in self.topic_partitions(initial)? {
            let known = self.partitions.iter().any(|p| p.partition == partition && p.topic == topic);
            if known || owner(&topic, partition, self.parallelism) != self.subtask {
                continue;
            }
            // A restored partition goes on where its checkpoint stopped; one the checkpoint
            // does not know, or one found while running, is new: it starts at the beginning.
            let start = self.restored.as_ref().and_then(|r| r.get(&(topic.clone(), partition)).copied());
            let starting =
                if initial && self.restored.is_none() { self.spec.starting } else { StartingOffsets::Earliest };
            let next = match start {
                Some(offset) => offset,
                None => self.resolve(&topic, partition, starting)?,
            };
            let end = match self.spec.bounded {
                true => Some(self.watermarks(&topic, partition)?.1),
                false => None,
            };
            tracing::debug!(topic, partition, next, ?end, subtask = self.subtask, "Kafka source reads a partition");
            self.partitions.push(Partition {
                topic,
                partition,
                next,
                end,
                split: None,
                finished: false,
                last_timestamp: None,
                paused: false,
            });
            added = true;
        }
        if added {
            self.assign()?;
        }
        Ok(())
    }

    fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64), KafkaError> {
        self.consumer
            .fetch_watermarks(topic, partition, self.spec.request_timeout)
            .map_err(|e| self.error(format!("cannot read the offsets of {topic}-{partition}: {e}")))
    }

    /// The offset `starting` means for a partition.
    fn resolve(&self, topic: &str, partition: i32, starting: StartingOffsets) -> Result<i64, KafkaError> {
        let timeout = self.spec.request_timeout;
        let single = |offset: Offset| {
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(topic, partition, offset).map(|()| list)
        };
        let offset_of = |list: &TopicPartitionList| list.find_partition(topic, partition).map(|e| e.offset());
        match starting {
            StartingOffsets::Earliest => Ok(self.watermarks(topic, partition)?.0),
            StartingOffsets::Latest => Ok(self.watermarks(topic, partition)?.1),
            StartingOffsets::Committed { fallback } => {
                let list = single(Offset::Invalid).map_err(|e| self.error(e))?;
                let committed = self
                    .consumer
                    .committed_offsets(list, timeout)
                    .map_err(|e| self.error(format!("cannot read the group's committed offsets: {e}")))?;
                match offset_of(&committed) {
                    Some(Offset::Offset(offset)) => Ok(offset),
                    _ => {
                        let (low, high) = self.watermarks(topic, partition)?;
                        Ok(if fallback == Fallback::Latest { high } else { low })
                    }
                }
            }
            StartingOffsets::Timestamp(ms) => {
                let list = single(Offset::Offset(ms)).map_err(|e| self.error(e))?;
                let found = self
                    .consumer
                    .offsets_for_times(list, timeout)
                    .map_err(|e| self.error(format!("cannot find offsets for timestamp {ms}: {e}")))?;
                match offset_of(&found) {
                    Some(Offset::Offset(offset)) => Ok(offset),
                    _ => Ok(self.watermarks(topic, partition)?.1),
                }
            }
        }
    }

    /// Points the consumer at every unfinished partition's next offset; those alignment
    /// paused stay paused (a new assignment starts every partition fetching).
    fn assign(&self) -> Result<(), KafkaError> {
        let mut list = TopicPartitionList::new();
        for p in self.partitions.iter().filter(|p| !p.finished) {
            list.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.next)).map_err(|e| self.error(e))?;
        }
        self.consumer.assign(&list).map_err(|e| self.error(format!("cannot assign partitions: {e}")))?;
        self.set_paused(|p| p.paused, true)
    }

    /// Pauses (or resumes) fetching the unfinished partitions `which` selects.
    fn set_paused(&self, which: impl Fn(&Partition) -> bool, pause: bool) -> Result<(), KafkaError> {
        let mut list = TopicPartitionList::new();
        for p in self.partitions.iter().filter(|p| !p.finished && which(p)) {
            list.add_partition(&p.topic, p.partition);
        }
        if list.count() == 0 {
            return Ok(());
        }
        let done = if pause { self.consumer.pause(&list) } else { self.consumer.resume(&list) };
        let verb = if pause { "pause" } else { "resume" };
        done.map_err(|e| self.error(format!("cannot {verb} partitions for watermark alignment: {e}")))
    }

    /// Gives every partition without one a split in `out`; finishes bounded ones already done.
    fn register_splits(&mut self, out: &mut SourceOutput<T>) {
        for p in self.partitions.iter_mut().filter(|p| p.split.is_none()) {
            let split = out.add_split(p.name());
            p.split = Some(split);
            if p.end.is_some_and(|end| p.next >= end) {
                p.finish(out);
            }
        }
    }

    /// Bounded mode: whether every partition reached its end.
    fn bounded_done(&self) -> bool {
        self.spec.bounded && self.partitions.iter().all(|p| p.finished)
    }

    /// Reports records and milliseconds behind the end of each partition.
    fn report_lag(&mut self, out: &mut SourceOutput<T>) {
        self.last_lag = Instant::now();
        let ends = self.context.ends.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let now = now_ms();
        for p in self.partitions.iter().filter(|p| !p.finished) {
            let (Some(split), Some(&end)) = (p.split, ends.get(&(p.topic.clone(), p.partition))) else { continue };
            let behind = (end - p.next).max(0) as u64;
            let ms = match (behind, p.last_timestamp) {
                (0, _) => Some(0),
                (_, Some(t)) => Some((now - t).max(0) as u64),
                (_, None) => None,
            };
            out.report_lag(split, Some(behind), ms);
        }
    }
}

/// Emits one record (or its dead letter).
fn handle<T: 'static>(
    partitions: &mut [Partition],
    spec: &Spec<T>,
    message: &BorrowedMessage<'_>,
    out: &mut SourceOutput<T>,
) {
    let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
    let Some(at) = partitions.iter().position(|p| p.partition == partition && p.topic == topic) else { return };
    let p = &mut partitions[at];
    // Records before the position were emitted already (a re-assignment fetches again).
    if p.finished || offset < p.next {
        return;
    }
    if p.end.is_some_and(|end| offset >= end) {
        p.finish(out);
        return;
    }
    p.next = offset + 1;
    let split = p.split.expect("splits are registered before polling");
    let record = KafkaRecord::new(message);
    p.last_timestamp = record.timestamp().or(p.last_timestamp);
    collect(spec, &record, split, out);
    if p.end.is_some_and(|end| p.next >= end) {
        p.finish(out);
    }
}

/// Emits `record`, read from `split`, with its event time, or makes it a dead letter that
/// says why not. The one-process reader and the reader of a distributed task
/// ([`crate::topic_reader`]) both read records here.
pub(crate) fn collect<T: 'static>(spec: &Spec<T>, record: &KafkaRecord<'_>, split: SplitId, out: &mut SourceOutput<T>) {
    out.add_bytes(split, record.len() as u64);
    if let Err(reason) = emit(spec, record, split, out) {
        let raw = RawRecord {
            split: format!("{}-{}", record.topic(), record.partition()),
            position: record.offset().to_string(),
            timestamp: record.timestamp().unwrap_or(NO_TIMESTAMP),
            key: record.key().map(<[u8]>::to_vec),
            payload: record.payload().unwrap_or_default().to_vec(),
        };
        out.reject(raw, reason);
    }
}

/// Deserialises `record` and emits it with its event time, or says why it cannot.
fn emit<T: 'static>(
    spec: &Spec<T>,
    record: &KafkaRecord<'_>,
    split: SplitId,
    out: &mut SourceOutput<T>,
) -> Result<(), String> {
    let value = spec.deserializer.deserialize(record).map_err(|e| e.to_string())?;
    let event_time = match &spec.timestamps {
        Some(extract) => extract(&value),
        None => record.timestamp().unwrap_or(NO_TIMESTAMP),
    };
    // Checked here rather than left to `collect_in`, so that the dead letter keeps the bytes.
    if let Some(reason) = reserved(event_time) {
        return Err(reason.to_string());
    }
    out.collect_in(split, value, event_time);
    Ok(())
}

/// The consumer reached the end of partition number `partition` (bounded mode only): the
/// partition is done (its end offset was seen at start, so everything before it has been
/// read; control records of transactions may sit at the very end and are never emitted).
fn end_of_partition<T>(
    partitions: &mut [Partition],
    consumer: &BaseConsumer<Context>,
    partition: i32,
    out: &mut SourceOutput<T>,
) {
    let open: Vec<usize> =
        (0..partitions.len()).filter(|&at| partitions[at].partition == partition && !partitions[at].finished).collect();
    if let [only] = open[..] {
        partitions[only].finish(out);
        return;
    }
    // Several topics have a partition with this number: ask for positions.
    let Ok(positions) = consumer.position() else { return };
    for at in open {
        let p = &mut partitions[at];
        let position = positions.find_partition(&p.topic, p.partition).map(|e| e.offset());
        if let (Some(Offset::Offset(position)), Some(end)) = (position, p.end) {
            if position >= end {
                p.finish(out);
            }
        }
    }
}

impl<T: Send + 'static> SourceReader<T> for KafkaReader<T> {
    fn poll(&mut self, out: &mut SourceOutput<T>, max: usize) -> Result<SourcePoll, BoxError> {
        if let Some(problem) = self.context.health.failure(self.spec.broker_timeout) {
            return Err(self.error(problem).into());
        }
        if self.spec.discovery_interval.is_some_and(|every| self.last_discovery.elapsed() >= every) {
            if let Err(e) = self.discover(false) {
                tracing::warn!("Kafka source: partition discovery failed, will retry: {e}");
            }
        }
        self.register_splits(out);
        if self.bounded_done() {
            return Ok(SourcePoll::Done);
        }
        let mut polled = 0;
        let mut wait = POLL_WAIT;
        while polled < max {
            match self.consumer.poll(wait) {
                None => break,
                Some(Ok(message)) => {
                    polled += 1;
                    handle(&mut self.partitions, &self.spec, &message, out);
                }
                Some(Err(RdError::PartitionEOF(partition))) => {
                    end_of_partition(&mut self.partitions, &self.consumer, partition, out)
                }
                Some(Err(error)) => {
                    tracing::warn!("Kafka source: {error}");
                    break;
                }
            }
            wait = Duration::ZERO;
        }
        if polled > 0 {
            self.context.health.up();
        }
        if self.last_lag.elapsed() >= LAG_INTERVAL {
            self.report_lag(out);
        }
        Ok(match (self.bounded_done(), polled) {
            (true, _) => SourcePoll::Done,
            (false, 0) => SourcePoll::Pending,
            _ => SourcePoll::Ready,
        })
    }

    fn snapshot_splits(&mut self, checkpoint: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        let splits = self.partitions.iter().map(|p| PartitionSplit {
            topic: p.topic.clone(),
            partition: p.partition,
            next_offset: p.next,
        });
        let splits: Vec<PartitionSplit> = splits.collect();
        if self.spec.commit_offsets {
            let offsets = splits.iter().map(|s| (s.topic.clone(), s.partition, s.next_offset)).collect();
            self.pending_commits.insert(checkpoint, offsets);
            while self.pending_commits.len() > PENDING_COMMITS {
                self.pending_commits.pop_first();
            }
        }
        Ok(Some(splits.iter().map(PartitionSplit::encode).collect()))
    }

    /// Pauses the partitions whose watermark ran too far ahead of the alignment group, and
    /// resumes those back within it. The consumer stays assigned to both, so a checkpoint
    /// records a paused partition's offset as any other's.
    fn pause_or_resume_splits(&mut self, pause: &[SplitId], resume: &[SplitId]) -> Result<(), BoxError> {
        tracing::debug!(subtask = self.subtask, ?pause, ?resume, "Kafka source: watermark alignment");
        for (splits, paused) in [(pause, true), (resume, false)] {
            let named = |p: &Partition| p.split.is_some_and(|s| splits.contains(&s));
            for p in self.partitions.iter_mut().filter(|p| named(p)) {
                p.paused = paused;
            }
            self.set_paused(named, paused)?;
        }
        Ok(())
    }

    /// Commits the completed checkpoint's offsets to the consumer group (asynchronously; a
    /// failure is only logged: the group's offsets are for tooling, not for recovery).
    fn checkpoint_complete(&mut self, checkpoint: u64) -> Result<(), BoxError> {
        let Some((&id, _)) = self.pending_commits.range(..=checkpoint).next_back() else { return Ok(()) };
        let offsets = self.pending_commits.remove(&id).unwrap_or_default();
        self.pending_commits.retain(|&other, _| other > checkpoint);
        let mut list = TopicPartitionList::new();
        for (topic, partition, next) in offsets {
            list.add_partition_offset(&topic, partition, Offset::Offset(next))?;
        }
        if list.count() > 0 {
            if let Err(e) = self.consumer.commit(&list, CommitMode::Async) {
                tracing::warn!("Kafka source: cannot commit the offsets of checkpoint {checkpoint}: {e}");
            }
        }
        Ok(())
    }
}
