//! The operator that runs a [`TwoPhaseCommitSink`]: pre-commits at every barrier, keeps the
//! pre-committed transactions in the checkpoint, and lets the job's committer make them
//! visible once the checkpoint is complete. Without checkpointing it commits at the end of a
//! bounded input, so a batch job still sees its output.

use std::marker::PhantomData;
use std::sync::Arc;

use eddy_core::{Barrier, BoxError, OperatorInfo, Output, Record, Result, Timestamp};
use eddy_runtime::checkpoint::{NewerCommits, StateContext, SubtaskList, TxnCommitter, PENDING_TRANSACTIONS};
use eddy_runtime::graph::BuildContext;
use eddy_runtime::metrics::{names, Counter};
use eddy_state::Redistribution;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::two_phase::{Committer, TwoPhaseCommitSink};
use super::StreamSink;
use crate::state_codec::{decode, encode};
use crate::{Data, DataStream};

/// A sink subtask and the transactions it pre-committed that no completed checkpoint covers yet.
struct TwoPhaseOperator<S, Txn, C> {
    sink: S,
    /// `(checkpoint, transaction)`, oldest first.
    pending: Vec<(u64, Txn)>,
    committer: Arc<C>,
    state: Option<StateContext>,
    info: OperatorInfo,
    written: Counter,
}

impl<S, Txn, C> TwoPhaseOperator<S, Txn, C>
where
    Txn: Serialize + DeserializeOwned + Send + 'static,
    C: Committer<Txn>,
{
    fn user<R>(&self, result: Result<R, BoxError>) -> Result<R> {
        result.map_err(|e| self.info.error(e.to_string()))
    }

    fn pre_commit<T>(&mut self, checkpoint: u64) -> Result<()>
    where
        S: TwoPhaseCommitSink<T, Txn = Txn>,
    {
        let (sink, info) = (&mut self.sink, &self.info);
        let txn = info.guard(|| sink.pre_commit(checkpoint))?;
        if let Some(txn) = self.user(txn)? {
            self.pending.push((checkpoint, txn));
        }
        Ok(())
    }

    /// Puts every transaction not yet covered by a completed checkpoint into this one.
    fn snapshot(&mut self, state: &StateContext) -> Result<()> {
        let completed = state.completed_checkpoint();
        self.pending.retain(|(checkpoint, _)| *checkpoint > completed);
        let items = self.pending.iter().map(|entry| encode(&self.info, entry)).collect::<Result<_>>()?;
        let list = SubtaskList { name: PENDING_TRANSACTIONS.into(), redistribution: Redistribution::Split, items };
        state.snapshot(Vec::new(), vec![list]);
        Ok(())
    }
}

impl<T, S, Txn, C> Output<T> for TwoPhaseOperator<S, Txn, C>
where
    S: TwoPhaseCommitSink<T, Txn = Txn>,
    Txn: Serialize + DeserializeOwned + Send + 'static,
    C: Committer<Txn> + 'static,
{
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        self.written.add(batch.len() as u64);
        let (sink, info) = (&mut self.sink, &self.info);
        let written = info.guard(|| batch.drain(..).try_for_each(|r| sink.write(r.value, r.timestamp)))?;
        self.user(written)
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

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.pre_commit(barrier.checkpoint)?;
        if let Some(state) = self.state.clone() {
            self.snapshot(&state)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if self.state.is_some() {
            return Ok(()); // the final checkpoint commits what is left
        }
        self.pre_commit(0)?;
        for (_, txn) in std::mem::take(&mut self.pending) {
            let committed = self.committer.commit(&txn);
            self.user(committed)?;
        }
        Ok(())
    }
}

/// The operator of one transactional sink subtask.
pub(crate) fn two_phase_operator<T, S, C>(ctx: &BuildContext, sink: S, committer: Arc<C>) -> Box<dyn Output<T>>
where
    S: TwoPhaseCommitSink<T> + 'static,
    C: Committer<S::Txn> + 'static,
{
    Box::new(TwoPhaseOperator {
        sink,
        pending: Vec::new(),
        committer,
        state: ctx.state(),
        info: ctx.info.clone(),
        written: ctx.counter(names::RECORDS_WRITTEN),
    })
}

/// `committer` behind the runtime's byte-level interface.
pub(crate) fn typed_committer<C, Txn>(committer: Arc<C>) -> Arc<dyn TxnCommitter>
where
    C: Committer<Txn> + 'static,
    Txn: DeserializeOwned + Send + 'static,
{
    Arc::new(Typed { committer, _txn: PhantomData::<fn() -> Txn> })
}

/// A typed committer behind the runtime's byte-level interface.
struct Typed<C, Txn> {
    committer: Arc<C>,
    _txn: PhantomData<fn() -> Txn>,
}

impl<C: Committer<Txn>, Txn: DeserializeOwned + Send + 'static> Typed<C, Txn> {
    fn decode(&self, bytes: &[u8]) -> Result<Txn, BoxError> {
        let (_, txn): (u64, Txn) = decode(bytes)?;
        Ok(txn)
    }

    fn decode_all(&self, txns: &[Vec<u8>]) -> Result<Vec<Txn>, BoxError> {
        txns.iter().map(|bytes| self.decode(bytes)).collect()
    }
}

impl<C: Committer<Txn>, Txn: DeserializeOwned + Send + 'static> TxnCommitter for Typed<C, Txn> {
    fn commit(&self, txn: &[u8]) -> Result<(), BoxError> {
        self.committer.commit(&self.decode(txn)?)
    }

    fn abort(&self, txn: &[u8]) -> Result<(), BoxError> {
        self.committer.abort(&self.decode(txn)?)
    }

    fn clean_up(&self, restored: &[Vec<u8>]) -> Result<(), BoxError> {
        self.committer.clean_up(&self.decode_all(restored)?)
    }

    fn newer_commits(&self, checkpoint: u64, restored: &[Vec<u8>]) -> Result<NewerCommits, BoxError> {
        self.committer.newer_commits(checkpoint, &self.decode_all(restored)?)
    }

    fn roll_back(&self, checkpoint: u64, restored: &[Vec<u8>]) -> Result<String, BoxError> {
        self.committer.roll_back(checkpoint, &self.decode_all(restored)?)
    }
}

impl<T: Data> DataStream<T> {
    /// Sends every record to a transactional sink: `create(subtask, parallelism)` opens each
    /// subtask's [`TwoPhaseCommitSink`]; `committer` commits what completed checkpoints hold.
    /// Output is exactly-once: visible only when its checkpoint completes, never twice after
    /// a restart. A checkpointed job needs the sink's `uid`.
    pub fn add_two_phase_sink<S, C, M>(&self, name: &str, create: C, committer: M) -> StreamSink
    where
        S: TwoPhaseCommitSink<T> + 'static,
        C: Fn(usize, usize) -> Result<S, BoxError> + Send + Sync + 'static,
        M: Committer<S::Txn> + 'static,
    {
        self.two_phase_sink(name, move |ctx| create(ctx.info.subtask, ctx.info.parallelism), committer)
    }

    /// [`add_two_phase_sink`](Self::add_two_phase_sink) with each subtask's sink opened from
    /// its whole build context (which knows the attempt number, say).
    fn two_phase_sink<S, C, M>(&self, name: &str, open: C, committer: M) -> StreamSink
    where
        S: TwoPhaseCommitSink<T> + 'static,
        C: Fn(&BuildContext) -> Result<S, BoxError> + Send + Sync + 'static,
        M: Committer<S::Txn> + 'static,
    {
        let committer = Arc::new(committer);
        let shared = committer.clone();
        let stream = self.transform(&format!("Sink: {name}"), move |ctx, _| {
            let info = &ctx.info;
            let sink = info.guard(|| open(ctx))?.map_err(|e| info.error(format!("cannot open sink: {e}")))?;
            Ok(two_phase_operator(ctx, sink, shared.clone()))
        });
        StreamSink { stream: stream.mark_transactional(typed_committer(committer)) }
    }

    /// Writes every record as a line (its `Display` form) into part files under `dir` that
    /// become visible only when their checkpoint completes (see [`super::ExactlyOnceFileSink`]):
    /// a reader that skips names starting with `.` or `_` sees every result exactly once.
    ///
    /// A restore from a checkpoint older than output already in `dir` moves that output
    /// aside into `dir/_rolled_back/` (the restored job writes it again); see
    /// [`super::FileCommitter`].
    pub fn write_exactly_once(&self, dir: impl Into<std::path::PathBuf>) -> StreamSink
    where
        T: std::fmt::Display,
    {
        let dir = dir.into();
        let committer = super::FileCommitter::new(&dir);
        let run = run_token();
        self.two_phase_sink(
            "ExactlyOnceFile",
            // Named by attempt too: a restarted attempt never meets a failed one's files.
            move |ctx| super::ExactlyOnceFileSink::open(&dir, ctx.info.subtask, &format!("{run}-{}", ctx.attempt)),
            committer,
        )
    }
}

/// A token that tells this run's part files from those of earlier runs (processes).
fn run_token() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:x}-{:x}", nanos, std::process::id())
}
