//! `KinesisReader`: one subtask's reader. It owns some of the stream's shards (see
//! [`crate::owner`]), keeps at most one `GetRecords` call in flight per shard on the shared
//! runtime, and turns the answers into records, dead letters, watermarks and metrics.
//!
//! A shard goes through three phases:
//!
//! 1. **Waiting** until its parents are read to their end ([`crate::parent_first`]);
//! 2. **Reading**: registered as a split (its own watermark generator and metrics), fetched
//!    no more often than the `GetRecords` interval, backed off when throttled;
//! 3. **Done**: a closed shard read to its end is *finished* (released as a split, marked
//!    for its children, kept in checkpoints so a restore does not read it again); in a
//!    bounded run, a shard that reached the records that arrived after the start is
//!    *stopped* (its children will not start in this run).
//!
//! The position of a shard is the sequence number of the last record *emitted*, never of one
//! fetched but still buffered, so a checkpoint holds exactly what went downstream.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::Record;
use aws_sdk_kinesis::Client;
use eddy_core::time::now_ms;
use eddy_core::{BoxError, ReaderContext, SourceOutput, SourcePoll, SourceReader, SplitId, Timestamp};
use eddy_runtime::io_runtime;

use crate::assignment::owner;
use crate::calls::{self, CallError, Failure, Fetched, Start};
use crate::error::KinesisError;
use crate::parent_first::FinishedShards;
use crate::record::KinesisRecord;
use crate::settings::Settings;
use crate::shard::{compare_sequence, ShardInfo};
use crate::split_state::{Position, ShardSplit};
use crate::starting_position::StartingPosition;

/// The longest a poll waits for an answer when it has nothing to emit.
const MAX_WAIT: Duration = Duration::from_millis(50);

/// An answer from the runtime.
enum Event {
    Listed(Result<Vec<ShardInfo>, CallError>),
    Fetched { shard: String, result: Result<Fetched, CallError> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Reading,
    Finished,
    /// A bounded run has read everything that arrived before it started.
    Stopped,
}

/// One owned shard.
struct Shard {
    info: ShardInfo,
    phase: Phase,
    position: Position,
    split: Option<SplitId>,
    iterator: Option<String>,
    in_flight: bool,
    next_fetch: Instant,
    failures: u32,
    /// Fetched, not yet emitted.
    batch: VecDeque<Record>,
    /// What the last answer said comes after `batch`.
    after_batch: Option<AfterBatch>,
    seed: u64,
}

struct AfterBatch {
    next_iterator: Option<String>,
    /// The answer was empty and at the tip of the shard.
    caught_up: bool,
}

/// Reads the shards one subtask owns. Made by [`crate::KinesisSource`].
pub struct KinesisReader<T> {
    settings: Arc<Settings<T>>,
    client: Client,
    finished: Arc<FinishedShards>,
    subtask: usize,
    parallelism: usize,
    shards: BTreeMap<String, Shard>,
    /// Every shard of the latest listing.
    listed: HashSet<String>,
    events: Receiver<Event>,
    sender: Sender<Event>,
    next_discovery: Instant,
    discovering: bool,
    /// The newest checkpoint whose barrier this reader passed.
    passed: u64,
    /// Shards finished in the last poll, marked for their children in the next, once their
    /// last records went downstream.
    to_mark: Vec<(String, bool)>,
    /// In a bounded run: records that arrived at or after this time are not read.
    bound: Option<Timestamp>,
    /// Where shards found at the first listing start (shards found later start at their
    /// beginning).
    first_position: Option<Position>,
    /// Which shard emits first in the next poll, so that all get their turn.
    turn: usize,
}

impl<T: Send + 'static> KinesisReader<T> {
    pub(crate) fn open(
        settings: Arc<Settings<T>>,
        client: Client,
        finished: Arc<FinishedShards>,
        context: &ReaderContext,
    ) -> Result<Self, KinesisError> {
        let (sender, events) = channel();
        let now = now_ms();
        let first_position = match settings.starting_position {
            StartingPosition::TrimHorizon => Position::TrimHorizon,
            StartingPosition::Latest => Position::AtTimestamp(now),
            StartingPosition::AtTimestamp(t) => Position::AtTimestamp(t),
        };
        let mut reader = KinesisReader {
            client,
            finished,
            subtask: context.subtask,
            parallelism: context.parallelism,
            shards: BTreeMap::new(),
            listed: HashSet::new(),
            events,
            sender,
            next_discovery: Instant::now() + settings.discovery_interval,
            discovering: false,
            passed: 0,
            to_mark: Vec::new(),
            bound: settings.bounded.then_some(now),
            // A restored job resumes every shard it knew; the ones it did not know are new.
            first_position: context.restored.is_none().then_some(first_position),
            turn: 0,
            settings,
        };
        if let Some(restored) = &context.restored {
            reader.restore(restored)?;
        }
        let listing = io_runtime::block_on(calls::list_shards(reader.client.clone(), reader.settings.stream.clone()))?
            .map_err(|e| reader.request_error("ListShards", e))?;
        reader.on_listing(listing);
        Ok(reader)
    }

    /// Takes back the shards a checkpoint recorded: this reader's own, and every finished one
    /// (their children may start, wherever they are read).
    fn restore(&mut self, restored: &[Vec<u8>]) -> Result<(), KinesisError> {
        for bytes in restored {
            let split = ShardSplit::decode(bytes)?;
            if split.stream != self.settings.stream {
                tracing::warn!(stream = %self.settings.stream, "ignoring a checkpointed shard of stream '{}'", split.stream);
                continue;
            }
            if split.position == Position::Finished {
                self.finished.mark(&split.shard, 0);
            }
            if owner(&split.shard, self.parallelism) == self.subtask {
                let info = ShardInfo { id: split.shard.clone(), parents: Vec::new(), ending_sequence: None };
                let phase = if split.position == Position::Finished { Phase::Finished } else { Phase::Waiting };
                self.shards.insert(split.shard.clone(), Shard::new(info, phase, split.position));
            }
        }
        Ok(())
    }

    fn request_error(&self, operation: &str, error: CallError) -> KinesisError {
        KinesisError::Request {
            stream: self.settings.stream.clone(),
            operation: operation.to_string(),
            hint: error.hint(),
            reason: error.message,
        }
    }

    /// Adds the owned shards of a listing, updates the known ones, and forgets finished
    /// shards that left the stream (past its retention).
    fn on_listing(&mut self, listing: Vec<ShardInfo>) {
        self.listed = listing.iter().map(|s| s.id.clone()).collect();
        let first = self.first_position.take();
        for info in listing {
            if owner(&info.id, self.parallelism) != self.subtask {
                continue;
            }
            match self.shards.get_mut(&info.id) {
                Some(shard) => shard.info = info,
                None => {
                    let position = first.clone().unwrap_or(Position::TrimHorizon);
                    self.shards.insert(info.id.clone(), Shard::new(info, Phase::Waiting, position));
                }
            }
        }
        let listed = &self.listed;
        self.shards.retain(|id, shard| {
            let keep = listed.contains(id) || !matches!(shard.phase, Phase::Finished | Phase::Waiting);
            if !keep && shard.phase == Phase::Waiting {
                tracing::warn!(shard = %id, "a checkpointed shard is no longer in the stream (past its retention)");
            }
            keep
        });
    }

    /// Starts the waiting shards whose parents are done; in a bounded run, stops those whose
    /// parents were stopped.
    fn start_ready(&mut self, out: &mut SourceOutput<T>) {
        let listed = &self.listed;
        for (id, shard) in self.shards.iter_mut().filter(|(_, s)| s.phase == Phase::Waiting) {
            let parents = &shard.info.parents;
            if self.bound.is_some() && parents.iter().any(|p| self.finished.is_stopped(p)) {
                // Its parent reached records that arrived after the start, so everything in
                // this child arrived later too.
                shard.phase = Phase::Stopped;
                self.finished.stop(id);
            } else if self.finished.may_start(parents, |p| listed.contains(p), self.passed) {
                shard.phase = Phase::Reading;
                shard.split = Some(out.add_split(id.clone()));
                shard.next_fetch = Instant::now();
            }
        }
    }

    /// Starts a `GetRecords` call on every reading shard that is due and has nothing buffered.
    fn fetch_due(&mut self) -> Result<(), KinesisError> {
        let now = Instant::now();
        for (id, shard) in self.shards.iter_mut() {
            let due =
                shard.phase == Phase::Reading && !shard.in_flight && shard.batch.is_empty() && now >= shard.next_fetch;
            if !due {
                continue;
            }
            shard.in_flight = true;
            shard.next_fetch = now + self.settings.get_records_interval;
            let start = match &shard.iterator {
                Some(iterator) => Start::Iterator(iterator.clone()),
                None => Start::Position(shard.position.clone()),
            };
            let call = calls::get_records(
                self.client.clone(),
                self.settings.stream.clone(),
                id.clone(),
                start,
                self.settings.get_records_limit,
            );
            let (sender, shard) = (self.sender.clone(), id.clone());
            io_runtime::try_spawn(async move {
                let result = call.await;
                let _ = sender.send(Event::Fetched { shard, result });
            })?;
        }
        Ok(())
    }

    /// Lists the shards again when the discovery interval is up.
    fn discover(&mut self) -> Result<(), KinesisError> {
        if self.discovering || Instant::now() < self.next_discovery {
            return Ok(());
        }
        self.discovering = true;
        let call = calls::list_shards(self.client.clone(), self.settings.stream.clone());
        let sender = self.sender.clone();
        io_runtime::try_spawn(async move {
            let _ = sender.send(Event::Listed(call.await));
        })?;
        Ok(())
    }

    /// Handles the answers that arrived, waiting up to `wait` for the first.
    fn receive(&mut self, out: &mut SourceOutput<T>, wait: Duration) -> Result<(), KinesisError> {
        let mut next = match self.events.recv_timeout(wait) {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            // The reader holds a sender itself, so the channel cannot close.
            Err(RecvTimeoutError::Disconnected) => None,
        };
        while let Some(event) = next {
            self.on_event(event, out)?;
            next = self.events.try_recv().ok();
        }
        Ok(())
    }

    fn on_event(&mut self, event: Event, out: &mut SourceOutput<T>) -> Result<(), KinesisError> {
        match event {
            Event::Listed(result) => {
                self.discovering = false;
                self.next_discovery = Instant::now() + self.settings.discovery_interval;
                match result {
                    Ok(listing) => self.on_listing(listing),
                    // A failed listing only delays discovery; reading goes on.
                    Err(e) => {
                        tracing::warn!(stream = %self.settings.stream, "ListShards failed, retrying later: {}", e.message)
                    }
                }
            }
            Event::Fetched { shard: id, result } => {
                let backoff = self.settings.backoff;
                let Some(shard) = self.shards.get_mut(&id) else { return Ok(()) };
                shard.in_flight = false;
                match result {
                    Ok(fetched) => {
                        shard.failures = 0;
                        if let (Some(split), Some(behind)) = (shard.split, fetched.millis_behind_latest) {
                            out.report_lag(split, None, Some(behind.max(0) as u64));
                        }
                        let caught_up = fetched.records.is_empty() && fetched.millis_behind_latest == Some(0);
                        shard.batch = fetched.records.into();
                        shard.after_batch = Some(AfterBatch { next_iterator: fetched.next_iterator, caught_up });
                    }
                    Err(e) if e.failure == Failure::Expired => {
                        shard.iterator = None;
                        shard.next_fetch = Instant::now();
                    }
                    Err(e) if e.failure == Failure::Retry => {
                        shard.failures += 1;
                        if backoff.exhausted(shard.failures) {
                            return Err(KinesisError::RetriesExhausted {
                                stream: self.settings.stream.clone(),
                                operation: format!("GetRecords on {id}"),
                                attempts: shard.failures,
                                reason: format!("{}{}", e.message, e.hint()),
                            });
                        }
                        let delay = backoff.delay(shard.failures - 1, shard.seed);
                        tracing::debug!(shard = %id, ?delay, "GetRecords refused, backing off: {}", e.message);
                        shard.next_fetch = Instant::now() + delay;
                    }
                    Err(e) => return Err(self.request_error(&format!("GetRecords on {id}"), e)),
                }
            }
        }
        Ok(())
    }

    /// Emits up to `max` buffered records, shard by shard in turn; returns how many went out.
    fn emit(&mut self, out: &mut SourceOutput<T>, max: usize) -> usize {
        let mut emitted = 0;
        let ids: Vec<String> = self.shards.keys().cloned().collect();
        let count = ids.len();
        for i in 0..count {
            let id = &ids[(self.turn + i) % count];
            let shard = self.shards.get_mut(id).expect("listed above");
            if shard.phase != Phase::Reading {
                continue;
            }
            let Some(split) = shard.split else { continue };
            while emitted < max {
                let Some(record) = shard.batch.pop_front() else { break };
                let arrival =
                    record.approximate_arrival_timestamp().and_then(|t| t.to_millis().ok()).unwrap_or(now_ms());
                if self.bound.is_some_and(|bound| arrival >= bound) {
                    shard.batch.clear();
                    shard.after_batch = None;
                    shard.phase = Phase::Stopped;
                    self.to_mark.push((id.clone(), false));
                    break;
                }
                let view = KinesisRecord {
                    stream: &self.settings.stream,
                    shard: id,
                    sequence_number: record.sequence_number(),
                    partition_key: record.partition_key().unwrap_or_default(),
                    data: record.data().as_ref(),
                    arrival_ms: arrival,
                };
                match self.settings.deserializer.deserialize(&view) {
                    Ok(value) => {
                        let timestamp = match &self.settings.timestamps {
                            Some(extract) => extract(&value, &view),
                            None => arrival,
                        };
                        out.collect_in(split, value, timestamp);
                        emitted += 1;
                    }
                    Err(e) => out.reject(view.to_raw(), format!("cannot deserialise: {e}")),
                }
                out.add_bytes(split, view.data.len() as u64);
                shard.position = Position::After(record.sequence_number().to_string());
            }
            if shard.batch.is_empty() {
                if let Some(after) = shard.after_batch.take() {
                    self.after_batch(id, after);
                }
            }
            if emitted >= max {
                break;
            }
        }
        self.turn = self.turn.wrapping_add(1);
        emitted
    }

    /// A shard's batch is emitted: move its iterator on, and see whether it is done.
    fn after_batch(&mut self, id: &str, after: AfterBatch) {
        let bounded = self.bound.is_some();
        let shard = self.shards.get_mut(id).expect("the caller holds the id");
        let at_end = match (&shard.info.ending_sequence, &shard.position) {
            (Some(end), Position::After(last)) => compare_sequence(last, end).is_ge(),
            _ => false,
        };
        // Kinesis ends a closed shard with no next iterator; emulations may only say so
        // through ListShards' ending sequence number, or by an empty answer at the tip.
        let finished = after.next_iterator.is_none() || at_end || (shard.info.is_closed() && after.caught_up);
        shard.iterator = after.next_iterator;
        if finished {
            shard.phase = Phase::Finished;
            shard.position = Position::Finished;
            self.to_mark.push((id.to_string(), true));
        } else if bounded && after.caught_up {
            shard.phase = Phase::Stopped;
            self.to_mark.push((id.to_string(), false));
        }
    }

    /// Marks the shards finished or stopped in the last poll, now that their records are
    /// downstream, and releases their splits.
    fn mark_done(&mut self, out: &mut SourceOutput<T>) {
        for (id, finished) in std::mem::take(&mut self.to_mark) {
            if finished {
                self.finished.mark(&id, self.passed);
            } else {
                self.finished.stop(&id);
            }
            if let Some(split) = self.shards.get(&id).and_then(|s| s.split) {
                out.release_split(split);
            }
        }
    }

    /// How long until the next shard is due, at most [`MAX_WAIT`].
    fn wait_time(&self) -> Duration {
        let now = Instant::now();
        self.shards
            .values()
            .filter(|s| s.phase == Phase::Reading && !s.in_flight && s.batch.is_empty())
            .map(|s| s.next_fetch.saturating_duration_since(now))
            .min()
            .unwrap_or(MAX_WAIT)
            .min(MAX_WAIT)
    }

    /// A bounded run is over when every owned shard is finished or stopped.
    fn bounded_done(&self) -> bool {
        self.bound.is_some()
            && self.to_mark.is_empty()
            && self.shards.values().all(|s| matches!(s.phase, Phase::Finished | Phase::Stopped))
    }

    fn poll_inner(&mut self, out: &mut SourceOutput<T>, max: usize) -> Result<SourcePoll, KinesisError> {
        self.mark_done(out);
        if self.bounded_done() {
            return Ok(SourcePoll::Done);
        }
        self.discover()?;
        self.receive(out, Duration::ZERO)?;
        self.start_ready(out);
        let mut emitted = self.emit(out, max);
        self.fetch_due()?;
        if emitted == 0 && self.to_mark.is_empty() {
            let wait = self.wait_time();
            self.receive(out, wait)?;
            self.start_ready(out);
            emitted = self.emit(out, max);
            self.fetch_due()?;
        }
        let buffered = self.shards.values().any(|s| !s.batch.is_empty());
        Ok(if emitted > 0 || buffered || !self.to_mark.is_empty() { SourcePoll::Ready } else { SourcePoll::Pending })
    }
}

impl Shard {
    fn new(info: ShardInfo, phase: Phase, position: Position) -> Self {
        let seed = xxhash_rust::xxh3::xxh3_64(info.id.as_bytes());
        Shard {
            info,
            phase,
            position,
            split: None,
            iterator: None,
            in_flight: false,
            next_fetch: Instant::now(),
            failures: 0,
            batch: VecDeque::new(),
            after_batch: None,
            seed,
        }
    }
}

impl<T: Send + 'static> SourceReader<T> for KinesisReader<T> {
    fn poll(&mut self, out: &mut SourceOutput<T>, max: usize) -> Result<SourcePoll, BoxError> {
        Ok(self.poll_inner(out, max.max(1))?)
    }

    fn snapshot_splits(&mut self, checkpoint: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        if checkpoint != u64::MAX {
            self.passed = self.passed.max(checkpoint);
        }
        let stream = &self.settings.stream;
        let splits = self.shards.iter().map(|(id, shard)| {
            ShardSplit { stream: stream.clone(), shard: id.clone(), position: shard.position.clone() }.encode()
        });
        Ok(Some(splits.collect()))
    }
}
