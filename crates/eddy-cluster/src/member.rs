//! A member of the job's consumer group: one consumer, the tasks of the partitions the group
//! assigned to it, and the loop that feeds them.
//!
//! The member subscribes to each sub-topology's lead topic with the cooperative-sticky
//! assignor, so a rebalance moves only the partitions that must move: the others keep
//! running. The rebalance callback does the moving: on a revocation it commits the revoked
//! tasks (their last transaction and checkpoint) and drops them; on an assignment it starts
//! the new tasks (fencing the previous owner, restoring state from the checkpoint the
//! committed offset names) and tells the consumer to read each partition from that
//! committed offset.
//!
//! **Partition groups.** A sub-topology that reads several topics (a union, a join) runs
//! task `p` over partition `p` of each: Kafka Streams' co-partitioning, which its
//! `StreamsPartitionAssignor` does by assigning such a group whole. librdkafka cannot plug in
//! a custom assignor, so the group assigns the lead topic's partitions only, and owning lead
//! partition `p` is owning the task: the rebalance callback adds partition `p` of the other
//! topics (its co-read partitions) to the same consumer's assignment, beside the lead's
//! (`incremental_assign` accepts partitions outside the subscription and keeps fetching them
//! until they are unassigned: librdkafka computes revocations, and the partitions a member
//! tells the group it owns, from what the group assigned, not from the consumer's whole
//! assignment, so a co-read partition is never revoked behind its task's back, and the group
//! never hands it to anyone: nobody subscribes to it). When the lead partition is revoked
//! (or lost), the task commits and is dropped, and its co-read partitions are unassigned
//! with it. One consumer, so one poll loop, one group metadata for the transactions of every
//! partition, and no second client per member.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata};
use rdkafka::error::KafkaResult;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use crate::cluster::Process;
use crate::config::ClusterConfig;
use crate::error::{ClusterError, Result};
use crate::liveness::{Heartbeat, Watch};
use crate::purge::Purger;
use crate::task::{Context, Task};
use crate::work::{Committed, Received, Role, Work};

/// How long a call to the group coordinator may take.
const GROUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A member's tasks and what they share.
struct Tasks<W: Work> {
    cx: Context<W>,
    tasks: BTreeMap<(Role<W>, i32), Task<W>>,
    /// The first error met in a rebalance callback, reported by the loop.
    error: Option<ClusterError>,
    /// What the member did, for its summary.
    summary: Summary,
    /// Deletes the repartition records the tasks committed past.
    purger: Purger,
    /// The co-read partitions in the consumer's assignment (asking the consumer for its
    /// assignment is a request to librdkafka's group thread, which may wait during a close).
    co_assigned: std::collections::BTreeSet<(String, i32)>,
}

impl<W: Work> Tasks<W> {
    fn role_of(&self, topic: &str) -> Role<W> {
        self.cx.work.role_of(topic)
    }

    /// Starts the tasks of newly assigned partitions; returns where to read each.
    ///
    /// A start is broker round trips (fencing the previous owner, initializing a producer)
    /// and store reads (the incarnation, the state) that do not depend on other tasks: the
    /// tasks start at once, each on a thread of its own, rather than one after another; one
    /// request reads all their committed offsets, after every fencing.
    fn assign(
        &mut self,
        consumer: &BaseConsumer<Rebalancing<W>>,
        assigned: &TopicPartitionList,
    ) -> Result<TopicPartitionList> {
        let started = Instant::now();
        let cx = &self.cx;
        let wanted: Vec<(Role<W>, String, i32)> = assigned
            .elements()
            .iter()
            .map(|e| (cx.work.role_of(e.topic()), e.topic().to_string(), e.partition()))
            .collect();
        let incarnations = wanted.iter().map(|(role, _, partition)| (*role, *partition)).collect();
        let producers = in_parallel(incarnations, |(role, partition)| Task::incarnate(cx, role, partition));
        let producers = producers.into_iter().collect::<Result<Vec<_>>>()?;
        let fenced = started.elapsed();
        let mut group = TopicPartitionList::new();
        for (role, lead, partition) in &wanted {
            for topic in std::iter::once(lead).chain(cx.work.co_read(*role)) {
                group.add_partition(topic, *partition);
            }
        }
        let committed = committed_offsets(consumer, &group)?;
        let read = started.elapsed();
        let count = wanted.len();
        let starts = wanted.into_iter().zip(producers).collect();
        let tasks = in_parallel(starts, |((role, lead, partition), producer)| {
            let topics = std::iter::once(&lead).chain(cx.work.co_read(role));
            let last = topics.map(|t| (t.clone(), committed.get(&(t.clone(), partition)).cloned())).collect();
            Task::resume(cx, role, partition, producer, last).map(|task| (role, lead, partition, task))
        });
        let mut from = TopicPartitionList::new();
        for started in tasks {
            let (role, topic, partition, task) = started?;
            for (read, offset) in task.start_offsets() {
                from.add_partition_offset(read, partition, offset)
                    .map_err(ClusterError::kafka("setting a start offset"))?;
            }
            tracing::info!(topic, partition, "task started");
            self.summary.tasks_started += 1;
            self.tasks.insert((role, partition), task);
        }
        tracing::debug!(
            tasks = count,
            fenced_ms = fenced.as_millis() as u64,
            offsets_read_ms = read.as_millis() as u64,
            restored_ms = started.elapsed().as_millis() as u64,
            "assigned tasks started"
        );
        Ok(from)
    }

    /// The co-read partitions of the tasks of `leads`: partition `p` of every other topic
    /// their sub-topologies read.
    fn co_read(&self, leads: &TopicPartitionList) -> Vec<(String, i32)> {
        let work = &self.cx.work;
        let mut co_read = Vec::new();
        for lead in leads.elements() {
            let topics = work.co_read(work.role_of(lead.topic()));
            co_read.extend(topics.iter().map(|topic| (topic.clone(), lead.partition())));
        }
        co_read
    }

    /// Commits and drops the tasks of revoked partitions.
    fn revoke(&mut self, consumer: &BaseConsumer<Rebalancing<W>>, revoked: &TopicPartitionList) -> Result<()> {
        let group = consumer.group_metadata();
        let mut handed = Vec::new();
        for element in revoked.elements() {
            let role = self.role_of(element.topic());
            if let Some(task) = self.tasks.remove(&(role, element.partition())) {
                handed.push((element.topic().to_string(), element.partition(), task));
            }
        }
        if let Some(group) = &group {
            commit(&self.cx, group, handed.iter_mut().map(|(_, _, task)| task).collect())?;
        }
        for (topic, partition, _) in handed {
            tracing::info!(topic, partition, "task handed back");
        }
        Ok(())
    }

    /// Tells every task that processing time passed.
    fn tick(&mut self) -> Result<()> {
        self.tasks.values_mut().try_for_each(|task| task.tick(&self.cx))
    }

    /// Deletes the repartition records the tasks have committed past, every purge interval.
    fn purge(&mut self) {
        if !self.purger.is_due() {
            return;
        }
        let work = &self.cx.work;
        let committed: Vec<(String, i32, i64)> = self
            .tasks
            .values()
            .flat_map(|task| task.committed_offsets())
            .filter(|(topic, _, _)| work.purges(topic))
            .map(|(topic, partition, offset)| (topic.to_string(), partition, offset))
            .collect();
        self.purger.purge(committed);
    }

    /// Commits every task.
    fn commit_all(&mut self, consumer: &BaseConsumer<Rebalancing<W>>) -> Result<()> {
        let Some(group) = consumer.group_metadata() else { return Ok(()) };
        let positions = consumer.position().unwrap_or_default();
        let work = &self.cx.work;
        for task in self.tasks.values_mut() {
            task.skip_to(&positions, |topic| work.skips_markers(topic));
        }
        commit(&self.cx, &group, self.tasks.values_mut().collect())
    }
}

/// Commits `tasks`. Each commit is a transaction of the task's own producer, a few round
/// trips to the broker that wait for nothing another task does: they run at once, so a
/// member's commit takes about as long as one task's. One after another, at ~0.1 s each,
/// 8 tasks took most of a 1 s commit interval.
fn commit<W: Work>(cx: &Context<W>, group: &ConsumerGroupMetadata, tasks: Vec<&mut Task<W>>) -> Result<()> {
    match tasks.len() {
        0 => Ok(()),
        1 => tasks.into_iter().try_for_each(|task| task.commit(cx, group)),
        _ => in_parallel(tasks, |task| task.commit(cx, group)).into_iter().collect(),
    }
}

/// The committed offsets of `partitions` in the group, with their metadata, by topic and
/// partition (none for a partition without one).
fn committed_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &TopicPartitionList,
) -> Result<BTreeMap<(String, i32), Committed>> {
    let mut list = TopicPartitionList::new();
    for element in partitions.elements() {
        list.add_partition(element.topic(), element.partition());
    }
    let committed = consumer
        .committed_offsets(list, GROUP_TIMEOUT)
        .map_err(ClusterError::kafka("reading the committed offsets of the assigned partitions"))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(offset) => {
                let committed = Committed { offset, metadata: e.metadata().to_string() };
                Some(((e.topic().to_string(), e.partition()), committed))
            }
            _ => None,
        })
        .collect())
}

/// `f` of each item, each on a thread of its own, in the items' order.
fn in_parallel<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> Result<R> + Sync) -> Vec<Result<R>> {
    std::thread::scope(|scope| {
        let f = &f;
        let running: Vec<_> = items.into_iter().map(|item| scope.spawn(move || f(item))).collect();
        running
            .into_iter()
            .map(|thread| {
                thread.join().unwrap_or_else(|_| Err(ClusterError::Config("a task's thread panicked".into())))
            })
            .collect()
    })
}

/// The consumer's context: runs the rebalance callbacks on the member's tasks.
struct Rebalancing<W: Work> {
    tasks: Arc<Mutex<Tasks<W>>>,
}

impl<W: Work> Rebalancing<W> {
    fn lock(&self) -> MutexGuard<'_, Tasks<W>> {
        self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<W: Work> ClientContext for Rebalancing<W> {}

impl<W: Work> ConsumerContext for Rebalancing<W> {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, partitions: &mut TopicPartitionList) {
        let mut tasks = self.lock();
        let outcome: KafkaResult<()> = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => match tasks.assign(consumer, partitions) {
                // A co-read partition still assigned (its task dropped when the member was
                // fenced) is assigned again, from the new task's offset.
                Ok(from) => {
                    let co_read = tasks.co_read(partitions);
                    let assigned = unassign(consumer, &mut tasks.co_assigned, co_read.clone())
                        .and_then(|()| consumer.incremental_assign(&from));
                    tasks.co_assigned.extend(co_read);
                    assigned
                }
                Err(e) => {
                    tasks.error.get_or_insert(e);
                    consumer.incremental_assign(partitions)
                }
            },
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if let Err(e) = tasks.revoke(consumer, partitions) {
                    tasks.error.get_or_insert(e);
                }
                let co_read = tasks.co_read(partitions);
                let co_assigned = &mut tasks.co_assigned;
                consumer.incremental_unassign(partitions).and_then(|()| unassign(consumer, co_assigned, co_read))
            }
            other => {
                tracing::warn!(?other, "rebalance error");
                Ok(())
            }
        };
        if let Err(e) = outcome {
            tasks.error.get_or_insert(ClusterError::Kafka { what: "applying a rebalance".into(), source: e });
        }
    }
}

/// Unassigns those of the co-read `partitions` the consumer reads (`assigned`), librdkafka
/// refusing to unassign a partition it does not read, or to assign one it already does.
fn unassign<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    assigned: &mut std::collections::BTreeSet<(String, i32)>,
    partitions: Vec<(String, i32)>,
) -> KafkaResult<()> {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in partitions {
        if assigned.remove(&(topic.clone(), partition)) {
            list.add_partition(&topic, partition);
        }
    }
    match list.count() {
        0 => Ok(()),
        _ => consumer.incremental_unassign(&list),
    }
}

/// Runs one member until `stop` is set (then hands its tasks back) or, in a bounded run,
/// until every task has read its input to the end and committed. With static membership (`instance`)
/// it keeps a liveness lease and stands in for silent members (see `liveness`); a
/// `stand_in` itself stops quietly when the member it stands in for comes back.
pub(crate) fn run<W: Work>(process: &Arc<Process<W>>, instance: Option<String>, stand_in: bool) -> Result<Summary> {
    let config = &process.config;
    let store = crate::store::CheckpointStore::open(&config.checkpoint_store, config.s3_endpoint.as_deref())?;
    let topics = process.work.subscribed();
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    let finishing = process.work.sub_topologies() * process.partitions;
    let cx = Context {
        work: process.work.clone(),
        application_id: config.application_id.clone(),
        brokers: config.brokers.clone(),
        partitions: process.partitions,
        store,
    };
    let purger = Purger::new(&config.brokers, config.purge_interval)?;
    let co_assigned = Default::default();
    let tasks = Tasks { cx, tasks: BTreeMap::new(), error: None, summary: Summary::default(), purger, co_assigned };
    let tasks = Arc::new(Mutex::new(tasks));
    let heartbeat_interval = (config.session_timeout / 6).max(Duration::from_millis(100));
    let mut settings = ClientConfig::new();
    let mut liveness = None;
    if let Some(instance) = &instance {
        // The client id names the member in the group's member list, which is how a
        // watcher tells whether a silent member is still in the group.
        settings.set("group.instance.id", instance).set("client.id", instance);
        let heartbeat =
            Heartbeat::start(&config.checkpoint_store, config.s3_endpoint.as_deref(), instance, heartbeat_interval)?;
        liveness = Some((instance.as_str(), heartbeat, Watch::default()));
    }
    let consumer: BaseConsumer<Rebalancing<W>> = settings
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.application_id)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("session.timeout.ms", config.session_timeout.as_millis().to_string())
        .set("max.poll.interval.ms", config.max_poll_interval.as_millis().to_string())
        .set("heartbeat.interval.ms", heartbeat_interval.as_millis().to_string())
        .create_with_context(Rebalancing { tasks: tasks.clone() })
        .map_err(ClusterError::kafka("creating the consumer"))?;
    consumer.subscribe(&topics).map_err(ClusterError::kafka("subscribing to the sub-topologies' lead topics"))?;
    tracing::debug!(instance, stand_in, "joining the group");
    let lock = || tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut last_commit = Instant::now();
    let mut last_watch = Instant::now();
    let outcome = loop {
        if process.stop.load(Ordering::Relaxed) {
            break lock().commit_all(&consumer);
        }
        let stepped = step(&consumer, &tasks, config, finishing, &mut last_commit).and_then(|flow| {
            // Every heartbeat interval, a look at the others' leases.
            if let (Some((own, _, watch)), true) = (&mut liveness, last_watch.elapsed() >= heartbeat_interval) {
                last_watch = Instant::now();
                let silent = {
                    let tasks = lock();
                    let (group, timeout) = (&config.application_id, config.session_timeout);
                    crate::liveness::to_stand_in(&consumer, group, &tasks.cx.store, watch, own, timeout)?
                };
                for instance in silent {
                    process.start_member(format!("stand-in {instance}"), Some(instance), true)?;
                }
            }
            Ok(flow)
        });
        match stepped {
            Ok(Flow::Running) => {}
            Ok(Flow::Finished) => break Ok(()),
            // Another member joined under this member's group.instance.id: the process it
            // stood in for is back (a stand-in stops quietly), or a survivor stood in for
            // this one while it was unresponsive for the session timeout (an error: its
            // tasks run elsewhere now, and their producers fenced this member's).
            Err(e) if instance_fenced(&consumer, &e) => {
                std::mem::take(&mut lock().tasks).into_values().for_each(Task::abandon);
                break replaced(instance.as_deref(), stand_in);
            }
            // Kafka Streams' answer to a task that migrated behind this member's back: drop
            // every task, aborting their open transactions (what they did since their last
            // commit is redone by whoever runs them next), rejoin the group and start again
            // from the committed checkpoints.
            Err(ClusterError::Fenced(why)) => {
                tracing::warn!(%why, "fenced: rejoining the group");
                let dropped = std::mem::take(&mut lock().tasks);
                dropped.into_values().for_each(Task::abandon);
                // A member resumed after a pause may learn here first that its place is taken:
                // its commit was fenced by the tasks' new owners, and rejoining is refused.
                match rejoin(&consumer, &topics) {
                    Ok(()) => {}
                    Err(e) if instance_fenced(&consumer, &e) => break replaced(instance.as_deref(), stand_in),
                    Err(e) => break Err(e),
                }
            }
            Err(e) => break Err(e),
        }
    };
    // Hand the tasks back: the revocation on close finds nothing left to commit.
    let summary = {
        let mut tasks = lock();
        tasks.tasks.clear();
        tasks.summary
    };
    drop(consumer);
    outcome.map(|()| summary)
}

/// The end of a member whose `group.instance.id` another member took: a stand-in stops
/// quietly (the member it stood in for is back); any other member fails, saying why.
fn replaced(instance: Option<&str>, stand_in: bool) -> Result<()> {
    if stand_in {
        tracing::warn!(instance, "the member stood in for is back: the stand-in stops");
        return Ok(());
    }
    Err(ClusterError::Fenced(format!(
        "another member joined the group as {}: a process started under the same --instance-id, or a survivor standing in for this one after it was unresponsive for the session timeout",
        instance.unwrap_or_default()
    )))
}

/// Whether `error`, or the consumer's fatal error, says that another member joined under
/// this member's `group.instance.id`.
fn instance_fenced<C: ConsumerContext>(consumer: &BaseConsumer<C>, error: &ClusterError) -> bool {
    let code = match error {
        ClusterError::Kafka { source, .. } => source.rdkafka_error_code(),
        _ => None,
    };
    let fatal = consumer.client().fatal_error().map(|(code, _)| code);
    code.into_iter().chain(fatal).any(|code| code == RDKafkaErrorCode::FencedInstanceId)
}

/// Whether a member goes on.
enum Flow {
    Running,
    /// A bounded run's every task finished and is committed.
    Finished,
}

/// Polls one record and processes it; commits every task when the commit interval is up. A
/// bounded run is finished when `finishing` tasks are done (every task of every
/// sub-topology).
fn step<W: Work>(
    consumer: &BaseConsumer<Rebalancing<W>>,
    tasks: &Mutex<Tasks<W>>,
    config: &ClusterConfig,
    finishing: usize,
    last_commit: &mut Instant,
) -> Result<Flow> {
    // Polled without the lock: the rebalance callbacks, run inside `poll`, take it.
    let message = consumer.poll(Duration::from_millis(50));
    let mut guard = tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let tasks = &mut *guard;
    if let Some(e) = tasks.error.take() {
        return Err(e);
    }
    match message {
        Some(Ok(message)) => {
            let role = tasks.role_of(message.topic());
            // A record of a partition revoked since it was fetched has no task: skipped.
            if let Some(task) = tasks.tasks.get_mut(&(role, message.partition())) {
                let control = message.headers().and_then(|headers| {
                    headers.iter().find(|h| h.key == crate::control::CONTROL_HEADER).and_then(|h| h.value)
                });
                let record = Received {
                    topic: message.topic(),
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key(),
                    payload: message.payload(),
                    timestamp: message.timestamp().to_millis(),
                    control,
                };
                task.process(&tasks.cx, &record)?;
                tasks.summary.records += 1;
            }
        }
        // librdkafka retries by itself (a broker restarting, say); what it cannot fix
        // surfaces as a failed commit.
        Some(Err(e)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::FencedInstanceId) => {
            return Err(ClusterError::kafka("polling the group")(e));
        }
        Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
        // Idle: processing time still passes.
        None => tasks.tick()?,
    }
    if last_commit.elapsed() < config.commit_interval {
        return Ok(Flow::Running);
    }
    *last_commit = Instant::now();
    tasks.tick()?;
    tasks.commit_all(consumer)?;
    tasks.purge();
    match config.bounded && tasks.cx.store.done_count()? >= finishing {
        true => Ok(Flow::Finished),
        false => Ok(Flow::Running),
    }
}

/// Leaves the group and joins it again, as a fresh member.
fn rejoin<C: ConsumerContext>(consumer: &BaseConsumer<C>, topics: &[&str]) -> Result<()> {
    consumer.unsubscribe();
    consumer.subscribe(topics).map_err(ClusterError::kafka("subscribing again after being fenced"))
}

/// What a member (or a process: the sum of its members) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Tasks started here: assigned at start, or moved here from another process.
    pub tasks_started: u64,
    /// Input and repartition records processed (a record read again after a task moved
    /// counts again).
    pub records: u64,
}
