//! The checkpoint coordinator: starts checkpoints, collects every task's ack, writes the
//! complete snapshot (metadata last, so only then does it exist), and commits transactional
//! sinks. One checkpoint at a time (Flink's max-concurrent-checkpoints = 1).
//!
//! Before every attempt (the first one and each restart) it prepares the sinks: it asks each
//! for output committed after the checkpoint the attempt restores from and lets it roll that
//! back (or refuses to start: that output would appear twice), commits the checkpoint's
//! transactions again, and lets the sink remove what earlier attempts left behind.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Sender;
use eddy_core::key::KeyGroupRange;
use eddy_core::time::now_ms;
use eddy_core::{Barrier, BarrierKind, Error, Result};
use eddy_state::checkpoint::{
    write_changelog, write_incremental, write_snapshot, CheckpointDirectory, SnapshotMetadata, SnapshotReader,
};
use eddy_state::{KeyedEntries, ListEntries, OperatorChanges, OperatorSnapshot, SnapshotHeader, SnapshotKind};

use crate::checkpoint::committer::{NewerCommits, TxnCommitter, PENDING_TRANSACTIONS};
use crate::checkpoint::config::CheckpointConfig;
use crate::checkpoint::history::{CheckpointHistory, CheckpointRecord, OperatorStateSize};
use crate::checkpoint::restored::RestoredState;
use crate::checkpoint::snapshot_port::SubtaskSnapshot;
use crate::config::JobConfig;
use crate::counter::Counter;
use crate::metrics::{names, MetricRegistry};
use crate::warnings::Warnings;

/// Where a requested savepoint's path (or why it failed) is sent.
pub type Reply = Sender<Result<PathBuf>>;

/// A savepoint the user asked for.
pub struct SavepointRequest {
    /// The directory the savepoint is written into (created; must not exist or be empty).
    pub dir: PathBuf,
    /// `Some(drain)`: stop the job once the savepoint is complete.
    pub stop: Option<bool>,
    /// Gets the outcome.
    pub reply: Reply,
}

/// The checkpoint in flight.
struct Pending {
    barrier: Barrier,
    started: Instant,
    created_ms: i64,
    waiting: BTreeSet<usize>,
    parts: Vec<SubtaskSnapshot>,
    savepoint: Option<SavepointRequest>,
    /// The longest barrier alignment a task reported.
    alignment_ms: u64,
    /// The `checkpoint` span its events are logged in (inside the attempt's).
    span: tracing::Span,
}

/// What a completed snapshot was.
pub struct Completed {
    /// Where it was written (`None`: kept in memory).
    pub path: Option<PathBuf>,
    /// Set for a stop-with-savepoint: the job now stops.
    pub stop: bool,
}

/// The newest complete checkpoint, where a restart restores from.
enum Latest {
    Disk(u64, PathBuf),
    Memory(SnapshotHeader, Vec<OperatorSnapshot>),
}

/// The coordinator's counters, readable through `JobHandle::metrics` under
/// [`names::CHECKPOINTS`].
struct Counters {
    completed: Counter,
    abandoned: Counter,
    last_ms: Counter,
    last_bytes: Counter,
    written_bytes: Counter,
    skipped: Counter,
    rolled_back: Counter,
    duplicates: Counter,
    /// The newest checkpoints, for the metrics endpoint's history.
    history: CheckpointHistory,
    /// Where each operator subtask's checkpointed state size is filed.
    registry: MetricRegistry,
}

impl Counters {
    fn new(metrics: &MetricRegistry) -> Self {
        let counter = |name| metrics.counter(names::CHECKPOINTS, 0, name);
        Counters {
            completed: counter(names::CHECKPOINTS_COMPLETED),
            abandoned: counter(names::CHECKPOINTS_ABANDONED),
            last_ms: counter(names::LAST_CHECKPOINT_MS),
            last_bytes: counter(names::LAST_CHECKPOINT_BYTES),
            written_bytes: counter(names::WRITTEN_STATE_BYTES),
            skipped: counter(names::RESTORE_SKIPPED),
            rolled_back: counter(names::ROLLED_BACK_COMMITS),
            duplicates: counter(names::DUPLICATE_COMMITS),
            history: metrics.checkpoint_history(),
            registry: metrics.clone(),
        }
    }

    /// Counts a completed checkpoint, files each operator subtask's state size
    /// ([`names::STATE_BYTES`]), adds it to the history, and counts the `written` bytes of
    /// state it stored itself (all of it for a full one, the changed chunks for an
    /// incremental one).
    fn completed(&self, ended: Ended, sizes: &[SubtaskSize], written: u64) {
        let duration_ms = ended.started.elapsed().as_millis() as u64;
        let bytes = sizes.iter().map(|s| s.bytes).sum();
        self.completed.add(1);
        self.last_ms.set(duration_ms);
        self.last_bytes.set(bytes);
        self.written_bytes.add(written);
        let mut operators: Vec<OperatorStateSize> = Vec::new();
        for size in sizes {
            self.registry.counter(&size.name, size.subtask, names::STATE_BYTES).set(size.bytes);
            match operators.iter_mut().find(|o| o.uid == size.uid) {
                Some(operator) => operator.size_bytes += size.bytes,
                None => operators.push(OperatorStateSize {
                    operator: size.name.clone(),
                    uid: size.uid.clone(),
                    size_bytes: size.bytes,
                }),
            }
        }
        let alignment_ms = ended.alignment_ms;
        tracing::info!(parent: &ended.span, duration_ms, size_bytes = bytes, alignment_ms, "checkpoint completed");
        self.history.add(ended.record("COMPLETED", duration_ms, Some(bytes), operators, None));
    }

    /// Adds an abandoned or unwritten checkpoint to the history.
    fn failed(&self, ended: Ended, reason: &str) {
        let duration_ms = ended.started.elapsed().as_millis() as u64;
        tracing::warn!(parent: &ended.span, duration_ms, reason, "checkpoint failed");
        self.history.add(ended.record("FAILED", duration_ms, None, Vec::new(), Some(reason.to_string())));
    }
}

/// What the history needs of a checkpoint that ended.
struct Ended {
    id: u64,
    savepoint: bool,
    started: Instant,
    created_ms: i64,
    alignment_ms: u64,
    span: tracing::Span,
}

impl Ended {
    fn of(pending: &Pending) -> Self {
        Ended {
            id: pending.barrier.checkpoint,
            savepoint: pending.savepoint.is_some(),
            started: pending.started,
            created_ms: pending.created_ms,
            alignment_ms: pending.alignment_ms,
            span: pending.span.clone(),
        }
    }

    fn record(
        self,
        status: &'static str,
        duration_ms: u64,
        size_bytes: Option<u64>,
        operators: Vec<OperatorStateSize>,
        failure: Option<String>,
    ) -> CheckpointRecord {
        CheckpointRecord {
            id: self.id,
            kind: if self.savepoint { "SAVEPOINT" } else { "CHECKPOINT" },
            status,
            trigger_ms: self.created_ms,
            duration_ms,
            alignment_ms: self.alignment_ms,
            size_bytes,
            operators,
            failure,
        }
    }
}

/// The state one operator subtask put into a checkpoint.
struct SubtaskSize {
    uid: String,
    name: String,
    subtask: usize,
    bytes: u64,
    /// The key groups of a subtask that handed over only its changes: their keyed bytes are
    /// counted from the written checkpoint ([`SubtaskSize::add_keyed`]).
    changed: Option<KeyGroupRange>,
}

impl SubtaskSize {
    fn of(part: &SubtaskSnapshot, max_parallelism: usize) -> Self {
        let keyed = part.keyed.iter().flat_map(|k| &k.entries).map(|(_, k, v)| (k.len() + v.len()) as u64);
        let lists = part.lists.iter().flat_map(|l| &l.items).map(|i| i.len() as u64);
        let changed =
            part.changes.as_ref().map(|_| KeyGroupRange::of_subtask(part.subtask, max_parallelism, part.parallelism));
        let keyed = if changed.is_some() { 0 } else { keyed.sum::<u64>() };
        let bytes = keyed + lists.sum::<u64>();
        SubtaskSize { uid: part.uid.clone(), name: part.name.clone(), subtask: part.subtask, bytes, changed }
    }

    /// Adds the keyed bytes of a subtask that handed over only its changes: those of its
    /// key groups' parts in the checkpoint written.
    fn add_keyed(&mut self, written: &SnapshotMetadata) {
        let (Some(range), Some(op)) = (self.changed, written.operator(&self.uid)) else { return };
        self.bytes += op.parts.iter().filter(|p| range.contains(p.key_group.into())).map(|p| p.bytes).sum::<u64>();
    }
}

/// Reports the snapshots a restore skipped, each loudly, and counts them in `counter`
/// ([`names::RESTORE_SKIPPED`]).
pub(crate) fn report_skipped(skipped: Vec<String>, warnings: &Warnings, counter: &Counter) {
    for warning in skipped {
        counter.add(1);
        warnings.error(format!("restore: {warning}"));
    }
}

/// Bytes of keys and values an operator put into a snapshot.
fn state_bytes(operator: &OperatorSnapshot) -> u64 {
    let keyed = operator.keyed.iter().flat_map(|k| &k.entries).map(|(_, k, v)| (k.len() + v.len()) as u64);
    let lists = operator.lists.iter().flat_map(|l| l.items.iter().flatten()).map(|i| i.len() as u64);
    keyed.sum::<u64>() + lists.sum::<u64>()
}

/// Starts, tracks and completes checkpoints and savepoints of one job, across its attempts.
pub struct Coordinator {
    job: String,
    config: CheckpointConfig,
    max_parallelism: usize,
    allow_duplicate_output: bool,
    directory: Option<CheckpointDirectory>,
    committers: Vec<(String, Arc<dyn TxnCommitter>)>,
    /// The first id this run gives a snapshot: older ones in the directory are not its own.
    first_id: u64,
    next_id: u64,
    pending: Option<Pending>,
    last_start: Instant,
    last_end: Instant,
    latest: Option<Latest>,
    /// The metadata of the newest checkpoint this attempt wrote, which the next incremental
    /// checkpoint builds on (`None`: the next one is full).
    base: Option<SnapshotMetadata>,
    /// With incremental checkpoints on a directory: the id of `base`, shared with the tasks,
    /// which hand over what changed since it (0: no base, the next checkpoint is full).
    incremental_base: Option<Arc<AtomicU64>>,
    completed: Arc<AtomicU64>,
    completed_count: u64,
    counters: Counters,
    warnings: Warnings,
}

fn checkpoint_error(error: impl std::fmt::Display) -> Error {
    Error::Checkpoint(error.to_string())
}

impl Coordinator {
    /// A coordinator for `job`, which `config` says takes checkpoints; ids continue after the
    /// restored snapshot and after any checkpoint or savepoint already in the directory.
    pub fn new(
        job: &str,
        config: &JobConfig,
        committers: Vec<(String, Arc<dyn TxnCommitter>)>,
        restored: Option<&RestoredState>,
        metrics: &MetricRegistry,
        warnings: &Warnings,
    ) -> Result<Self> {
        let checkpointing = config
            .checkpoint
            .clone()
            .ok_or_else(|| Error::InvalidJob("internal: a coordinator for a job without checkpoints".into()))?;
        let directory =
            checkpointing.dir.as_deref().map(CheckpointDirectory::open).transpose().map_err(checkpoint_error)?;
        let on_disk = match &directory {
            Some(d) => d.newest_id().map_err(checkpoint_error)?,
            None => 0,
        };
        let restored_id = restored.map_or(0, |r| r.header().id);
        let now = Instant::now();
        let first_id = on_disk.max(restored_id) + 1;
        let incremental_base = (checkpointing.incremental && directory.is_some()).then(Arc::default);
        Ok(Coordinator {
            job: job.to_string(),
            config: checkpointing,
            max_parallelism: config.max_parallelism,
            allow_duplicate_output: config.allow_duplicate_output,
            directory,
            committers,
            first_id,
            next_id: first_id,
            pending: None,
            last_start: now,
            last_end: now,
            latest: None,
            base: None,
            incremental_base,
            completed: Arc::new(AtomicU64::new(restored_id)),
            completed_count: 0,
            counters: Counters::new(metrics),
            warnings: warnings.clone(),
        })
    }

    /// The newest completed checkpoint id, shared with operators (sinks prune with it).
    pub fn completed_id(&self) -> Arc<AtomicU64> {
        self.completed.clone()
    }

    /// With incremental checkpoints on a directory, the id of the checkpoint the next one
    /// builds on, shared with the tasks (0: none yet, the next one is full).
    pub fn incremental_base(&self) -> Option<Arc<AtomicU64>> {
        self.incremental_base.clone()
    }

    /// Sets the checkpoint the next incremental checkpoint builds on (`None`: the next is full).
    fn set_base(&mut self, base: Option<SnapshotMetadata>) {
        if let Some(shared) = &self.incremental_base {
            shared.store(base.as_ref().map_or(0, |base| base.header.id), Ordering::Release);
        }
        self.base = base;
    }

    /// How many checkpoints and savepoints completed.
    pub fn completed_count(&self) -> u64 {
        self.completed_count
    }

    /// Whether a periodic checkpoint should start now.
    pub fn due(&self) -> bool {
        let Some(interval) = self.config.interval else { return false };
        self.pending.is_none()
            && self.last_start.elapsed() >= interval
            && self.last_end.elapsed() >= self.config.min_pause
    }

    /// Whether a checkpoint is in flight.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Starts a checkpoint (or the requested savepoint) that `tasks` tasks must ack.
    pub fn trigger(&mut self, tasks: usize, savepoint: Option<SavepointRequest>) -> Barrier {
        let kind = match &savepoint {
            None => BarrierKind::Checkpoint,
            Some(SavepointRequest { stop: None, .. }) => BarrierKind::Savepoint,
            Some(SavepointRequest { stop: Some(drain), .. }) => BarrierKind::Stop { drain: *drain },
        };
        let barrier = Barrier { checkpoint: self.next_id, kind };
        self.next_id += 1;
        self.last_start = Instant::now();
        let span = tracing::info_span!("checkpoint", id = barrier.checkpoint, kind = ?kind);
        tracing::debug!(parent: &span, tasks, "checkpoint triggered");
        self.pending = Some(Pending {
            barrier,
            started: Instant::now(),
            created_ms: now_ms(),
            waiting: (0..tasks).collect(),
            parts: Vec::new(),
            savepoint,
            alignment_ms: 0,
            span,
        });
        barrier
    }

    /// A task acked `checkpoint` after aligning its inputs' barriers for `alignment_ms`;
    /// true when every task has.
    pub fn ack(&mut self, checkpoint: u64, task: usize, parts: Vec<SubtaskSnapshot>, alignment_ms: u64) -> bool {
        let Some(pending) = self.pending.as_mut().filter(|p| p.barrier.checkpoint == checkpoint) else {
            return false; // an abandoned checkpoint's late ack
        };
        if pending.waiting.remove(&task) {
            pending.parts.extend(parts);
            pending.alignment_ms = pending.alignment_ms.max(alignment_ms);
        }
        pending.waiting.is_empty()
    }

    /// Gives up the checkpoint in flight, telling a waiting savepoint requester why.
    pub fn abort(&mut self, reason: &str) {
        if let Some(pending) = self.pending.take() {
            self.counters.abandoned.add(1);
            self.counters.failed(Ended::of(&pending), reason);
            if let Some(request) = pending.savepoint {
                let _ = request.reply.send(Err(Error::Checkpoint(format!(
                    "savepoint {} was not completed: {reason}",
                    pending.barrier.checkpoint
                ))));
            }
            self.last_end = Instant::now();
        }
    }

    /// Abandons the checkpoint in flight if it has taken longer than the timeout; true if so.
    pub fn expire(&mut self) -> bool {
        let timeout = self.config.timeout;
        let expired = self.pending.as_ref().is_some_and(|p| p.started.elapsed() > timeout);
        if expired {
            self.abort(&format!("not complete after {timeout:?} (the checkpoint timeout)"));
        }
        expired
    }

    /// Writes the checkpoint in flight, every task having acked, and commits sinks when it
    /// is a checkpoint or a stop-with-savepoint.
    pub fn complete(&mut self) -> Result<Completed> {
        let pending = self.pending.take().ok_or_else(|| Error::Checkpoint("no checkpoint in flight".into()))?;
        self.last_end = Instant::now();
        let id = pending.barrier.checkpoint;
        let kind = if pending.savepoint.is_some() { SnapshotKind::Savepoint } else { SnapshotKind::Checkpoint };
        let header = self.header(id, kind, pending.created_ms, false);
        let ended = Ended::of(&pending);
        let mut sizes: Vec<SubtaskSize> =
            pending.parts.iter().map(|part| SubtaskSize::of(part, self.max_parallelism)).collect();
        let (operators, changes) = merge_parts(pending.parts, self.max_parallelism);
        match pending.savepoint {
            Some(request) => {
                let stop = request.stop.is_some();
                let result = write_snapshot(&request.dir, header, &operators)
                    .map(|_| self.record_savepoint(id, &request.dir))
                    .map(|_| request.dir.clone())
                    .map_err(|e| Error::Checkpoint(format!("cannot write savepoint {}: {e}", request.dir.display())));
                let outcome = match result {
                    Ok(path) if stop => self.commit(id, self.transactions(&operators)).map(|()| path),
                    other => other,
                };
                let failed = outcome.as_ref().err().map(|e| e.to_string());
                let path = outcome.as_ref().ok().cloned();
                let _ = request.reply.send(outcome);
                if let Some(problem) = failed {
                    self.counters.failed(ended, &problem);
                    return Ok(Completed { path: None, stop: false });
                }
                self.completed_count += 1;
                let written = sizes.iter().map(|s| s.bytes).sum();
                self.counters.completed(ended, &sizes, written);
                Ok(Completed { path, stop })
            }
            None => {
                let transactions = self.transactions(&operators);
                let (path, written) = self.store(header, operators, changes)?;
                if let Some(base) = &self.base {
                    sizes.iter_mut().for_each(|size| size.add_keyed(base));
                }
                self.counters.completed(ended, &sizes, written);
                self.commit(id, transactions)?;
                self.completed_count += 1;
                Ok(Completed { path, stop: false })
            }
        }
    }

    /// After every task finished: the final checkpoint, which commits what sinks still hold.
    pub fn complete_final(&mut self, parts: Vec<SubtaskSnapshot>) -> Result<()> {
        self.abort("the job finished");
        let id = self.next_id;
        self.next_id += 1;
        let header = self.header(id, SnapshotKind::Checkpoint, now_ms(), true);
        let (operators, changes) = merge_parts(parts, self.max_parallelism);
        let transactions = self.transactions(&operators);
        self.store(header, operators, changes)?;
        self.commit(id, transactions)?;
        self.completed_count += 1;
        Ok(())
    }

    fn header(&self, id: u64, kind: SnapshotKind, created_ms: i64, finished: bool) -> SnapshotHeader {
        SnapshotHeader { job: self.job.clone(), id, kind, created_ms, max_parallelism: self.max_parallelism, finished }
    }

    /// Keeps a complete checkpoint: written to the directory, or in memory.
    /// Returns where it went and the state bytes it stored itself.
    ///
    /// Subtasks that handed over only their changes (`changes`) build on `base`; a write
    /// that fails makes the next checkpoint full.
    fn store(
        &mut self,
        header: SnapshotHeader,
        operators: Vec<OperatorSnapshot>,
        changes: Vec<OperatorChanges>,
    ) -> Result<(Option<PathBuf>, u64)> {
        let Some(directory) = &self.directory else {
            let bytes = operators.iter().map(state_bytes).sum();
            self.latest = Some(Latest::Memory(header, operators));
            return Ok((None, bytes));
        };
        let (id, path) = (header.id, directory.path_for(header.id));
        let written = match (self.base.take().filter(|_| self.config.incremental), changes.is_empty()) {
            (Some(base), true) => write_incremental(&path, header, &operators, &base),
            (Some(base), false) => write_changelog(&path, header, &operators, &changes, &base),
            (None, true) => write_snapshot(&path, header, &operators),
            (None, false) => Err(eddy_state::StateError::Checkpoint {
                path: path.clone(),
                problem: "internal: subtasks handed over changes, but there is no checkpoint to build on".into(),
            }),
        };
        let directory = directory.clone();
        let written = written.map_err(|e| {
            self.set_base(None);
            Error::Checkpoint(format!("cannot write checkpoint {}: {e}", path.display()))
        })?;
        let added = written.added_bytes();
        self.set_base(self.config.incremental.then_some(written));
        if let Err(e) = directory.retain(self.config.retain) {
            tracing::warn!("cannot remove old checkpoints: {e}");
        }
        self.latest = Some(Latest::Disk(id, path.clone()));
        Ok((Some(path), added))
    }

    /// Makes savepoint `id` known to the checkpoint directory, so that a restore from the
    /// directory resumes from it rather than from an older checkpoint. A failure is only
    /// warned about: such a restore still finds the savepoint's commits (see `prepare_attempt`).
    fn record_savepoint(&self, id: u64, path: &Path) {
        if let Some(directory) = &self.directory {
            if let Err(e) = directory.record_savepoint(id, path) {
                self.warnings.warn(format!("savepoint {id} is not recorded in the checkpoint directory: {e}"));
            }
        }
    }

    /// The transactions a snapshot holds, per sink (by index in `committers`).
    fn transactions(&self, operators: &[OperatorSnapshot]) -> Vec<Vec<Vec<u8>>> {
        self.committers.iter().map(|(uid, _)| pending_transactions(operators, uid)).collect()
    }

    /// Commits every transaction of a complete snapshot, then tells operators it is complete.
    fn commit(&self, id: u64, transactions: Vec<Vec<Vec<u8>>>) -> Result<()> {
        for ((uid, committer), txns) in self.committers.iter().zip(transactions) {
            for txn in txns {
                committer
                    .commit(&txn)
                    .map_err(|e| Error::Checkpoint(format!("sink '{uid}' cannot commit checkpoint {id}: {e}")))?;
            }
        }
        self.completed.store(id, Ordering::Release);
        Ok(())
    }

    /// The newest complete checkpoint of this run, for a restart, and whether newer ones
    /// were skipped to get it. When the newest no longer opens and verifies (its disk failed
    /// under it), the newest of this run's older checkpoints that does, with a warning for
    /// each one skipped; `None` when this run has none (the restart then starts from what
    /// the job started from).
    pub fn latest(&self) -> Result<(Option<RestoredState>, bool)> {
        let (newest_id, newest) = match &self.latest {
            None => return Ok((None, false)),
            Some(Latest::Memory(header, operators)) => {
                return Ok((Some(RestoredState::from_memory(header.clone(), operators.clone())), false))
            }
            Some(Latest::Disk(newest_id, path)) => (newest_id, path),
        };
        let error = match open_verified(newest) {
            Ok(restored) => return Ok((Some(restored), false)),
            Err(error) => error,
        };
        let Some(directory) = &self.directory else { return Err(error) };
        report_skipped(
            vec![format!("skipped checkpoint {newest_id}: {error}")],
            &self.warnings,
            &self.counters.skipped,
        );
        let (older, skipped) = directory.latest_valid_in(self.first_id..*newest_id).map_err(checkpoint_error)?;
        report_skipped(skipped, &self.warnings, &self.counters.skipped);
        Ok((older.map(RestoredState::from_disk), true))
    }

    /// Before an attempt starts from `restored` (`None`: from the beginning): reconciles every
    /// sink's output with the snapshot (see [`NewerCommits`]), sets aside the snapshots newer
    /// than it, commits its transactions (again: commits are idempotent), and lets every sink
    /// remove what earlier attempts left behind. `skipped_newer` says that the restore skipped
    /// newer snapshots, so a sink that cannot tell what it committed after `restored` is warned
    /// about.
    pub fn prepare_attempt(&mut self, restored: Option<&RestoredState>, skipped_newer: bool) -> Result<()> {
        self.abort("the job restarted");
        // The first checkpoint of an attempt is full: it must not build on a history the
        // restore may have set aside or found damaged.
        self.set_base(None);
        let mut txns = Vec::with_capacity(self.committers.len());
        for (uid, _) in &self.committers {
            txns.push(match restored {
                Some(r) => r.list_all(uid, PENDING_TRANSACTIONS)?,
                None => Vec::new(),
            });
        }
        if let Some(restored) = restored {
            self.reconcile(restored, &txns, skipped_newer)?;
            if let Some(directory) = &self.directory {
                self.supersede(directory, restored)?;
            }
        }
        for ((uid, committer), txns) in self.committers.iter().zip(&txns) {
            for txn in txns {
                committer.commit(txn).map_err(|e| Error::Checkpoint(format!("sink '{uid}' cannot commit: {e}")))?;
            }
            committer.clean_up(txns).map_err(|e| Error::Checkpoint(format!("sink '{uid}' cannot clean up: {e}")))?;
        }
        Ok(())
    }

    /// Asks every sink for output committed after `restored` (each sink's transactions in it
    /// are `txns`): refuses the restore if a sink cannot take its back and duplicates are not
    /// allowed — before any sink changed anything — then lets the others roll theirs back.
    fn reconcile(&self, restored: &RestoredState, txns: &[Vec<Vec<u8>>], skipped_newer: bool) -> Result<()> {
        let (id, snapshot) = (restored.header().id, restored.describe());
        let mut found = Vec::with_capacity(self.committers.len());
        for ((uid, committer), txns) in self.committers.iter().zip(txns) {
            let newer = committer.newer_commits(id, txns).map_err(|e| {
                Error::Checkpoint(format!("sink '{uid}' cannot check its output against {snapshot}: {e}"))
            })?;
            if let NewerCommits::Irrevocable { description, .. } = &newer {
                if !self.allow_duplicate_output {
                    return Err(Error::Checkpoint(format!(
                        "refusing to restore {snapshot}: sink '{uid}' already committed output of later \
                         checkpoints that it cannot take back ({description}), and the restored job would \
                         produce it again; restore from a newer snapshot, remove that output, or accept the \
                         duplicates with allow_duplicate_output()"
                    )));
                }
            }
            found.push(newer);
        }
        for (((uid, committer), txns), newer) in self.committers.iter().zip(txns).zip(found) {
            match newer {
                NewerCommits::Nothing => {}
                NewerCommits::Untracked if skipped_newer => self.warnings.error(format!(
                    "restore: sink '{uid}' does not record what it committed, so output it committed after \
                     {snapshot} may now appear twice"
                )),
                NewerCommits::Untracked => {}
                NewerCommits::Revocable { commits, .. } => {
                    let done = committer.roll_back(id, txns).map_err(|e| {
                        Error::Checkpoint(format!("sink '{uid}' cannot roll back its output after {snapshot}: {e}"))
                    })?;
                    self.counters.rolled_back.add(commits as u64);
                    self.warnings.warn(format!(
                        "restore: sink '{uid}' rolled back output committed after {snapshot}, which the job \
                         produces again: {done}"
                    ));
                }
                NewerCommits::Irrevocable { commits, description } => {
                    self.counters.duplicates.add(commits as u64);
                    self.warnings.error(format!(
                        "restore: sink '{uid}' keeps output committed after {snapshot} visible, and the job \
                         produces it again (duplicates allowed by allow_duplicate_output): {description}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Sets aside the snapshots in the checkpoint directory newer than `restored`: they belong
    /// to the history this restore abandoned (its sinks just rolled back their output), and a
    /// later restore from the directory must not go back to them.
    fn supersede(&self, directory: &CheckpointDirectory, restored: &RestoredState) -> Result<()> {
        let id = restored.header().id;
        let moved = directory.supersede_after(id).map_err(checkpoint_error)?;
        if !moved.is_empty() {
            let paths: Vec<String> = moved.iter().map(|p| p.display().to_string()).collect();
            self.warnings.warn(format!(
                "restore: set aside the snapshots newer than {} (moved into {}, or deleted if incomplete): {}",
                restored.describe(),
                directory.path().join(eddy_state::checkpoint::SUPERSEDED_DIR).display(),
                paths.join(", ")
            ));
        }
        Ok(())
    }
}

/// Opens and verifies a snapshot on disk.
pub fn open_verified(path: &Path) -> Result<RestoredState> {
    let reader = SnapshotReader::open(path).map_err(checkpoint_error)?;
    reader.verify().map_err(checkpoint_error)?;
    Ok(RestoredState::from_disk(reader))
}

pub(crate) fn pending_transactions(operators: &[OperatorSnapshot], uid: &str) -> Vec<Vec<u8>> {
    operators
        .iter()
        .filter(|o| o.uid == uid)
        .flat_map(|o| &o.lists)
        .filter(|l| l.name == PENDING_TRANSACTIONS)
        .flat_map(|l| l.items.iter().flatten().cloned())
        .collect()
}

/// Joins the subtasks' parts into one snapshot per operator.
///
/// Subtasks that handed over their changes make an [`OperatorChanges`] of their operator,
/// in which the other subtasks of the operator (those that handed over all their state)
/// replace their key groups.
pub(crate) fn merge_parts(
    parts: Vec<SubtaskSnapshot>,
    max_parallelism: usize,
) -> (Vec<OperatorSnapshot>, Vec<OperatorChanges>) {
    let mut operators: Vec<OperatorSnapshot> = Vec::new();
    let changed: HashSet<String> = parts.iter().filter(|p| p.changes.is_some()).map(|p| p.uid.clone()).collect();
    let mut changes: Vec<OperatorChanges> =
        changed.iter().map(|uid| OperatorChanges { uid: uid.clone(), ..Default::default() }).collect();
    for part in parts {
        if let Some(operator) = changes.iter_mut().find(|c| c.uid == part.uid) {
            add_changes(operator, &part, max_parallelism);
        }
        let at = match operators.iter().position(|o| o.uid == part.uid) {
            Some(at) => at,
            None => {
                let name = part.name.clone();
                operators.push(OperatorSnapshot {
                    uid: part.uid.clone(),
                    name,
                    parallelism: part.parallelism,
                    ..Default::default()
                });
                operators.len() - 1
            }
        };
        let operator = &mut operators[at];
        for keyed in part.keyed {
            match operator.keyed.iter_mut().find(|k| k.state == keyed.state) {
                Some(existing) => existing.entries.extend(keyed.entries),
                None => operator.keyed.push(KeyedEntries { state: keyed.state, entries: keyed.entries }),
            }
        }
        for list in part.lists {
            let at = match operator.lists.iter().position(|l| l.name == list.name) {
                Some(at) => at,
                None => {
                    operator.lists.push(ListEntries {
                        name: list.name.clone(),
                        redistribution: list.redistribution,
                        items: vec![Vec::new(); part.parallelism],
                    });
                    operator.lists.len() - 1
                }
            };
            let items = &mut operator.lists[at].items;
            if items.len() <= part.subtask {
                items.resize(part.subtask + 1, Vec::new());
            }
            items[part.subtask] = list.items;
        }
    }
    (operators, changes)
}

/// Adds what one subtask handed over to its operator's changes: its changes and the states
/// it gives in full, or, if it handed over all its state, its key groups as replaced.
fn add_changes(operator: &mut OperatorChanges, part: &SubtaskSnapshot, max_parallelism: usize) {
    let Some(changes) = &part.changes else {
        operator.replaced_key_groups.push(KeyGroupRange::of_subtask(part.subtask, max_parallelism, part.parallelism));
        return;
    };
    for state in &changes.replaced_states {
        if !operator.replaced_states.contains(state) {
            operator.replaced_states.push(state.clone());
        }
    }
    for state in &changes.changes {
        match operator.changes.iter_mut().find(|s| s.state == state.state) {
            Some(existing) => existing.changes.extend(state.changes.iter().cloned()),
            None => operator.changes.push(state.clone()),
        }
    }
}
