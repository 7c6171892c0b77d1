//! A [`WindowedJob`]'s tasks: [`Windowed`], the [`Work`] of its source and window tasks.
//!
//! A source task owns an input partition: it runs [`WindowedJob::extract`] on each record and
//! writes each keyed value to the partition of its key group in its branch's repartition
//! topic, and, at each commit, its watermark to every partition of every repartition topic.
//! A window task owns a partition of one branch's repartition topic, the key groups in it
//! and their windows; it writes the rows of fired windows to the branch's output topic and
//! files its windows in the checkpoint store before each commit ([`crate::checkpoint`]).

use crate::checkpoint::Checkpoints;
use crate::error::{ClusterError, Result};
use crate::group_snapshot::GroupFormat;
use crate::job::{InputRecord, Keyed, WindowedJob};
use crate::repartition::{Envelope, Partitioner};
use crate::task::Context;
use crate::topology::{Role, Topology};
use crate::window_state::WindowState;
use crate::work::{Committed, Out, Received, Work};

/// A [`WindowedJob`] with its topics, run as source and window tasks.
pub(crate) struct Windowed<J> {
    pub(crate) job: J,
    pub(crate) topology: Topology,
    pub(crate) partitioner: Partitioner,
    /// The input's end offsets, in a bounded run.
    pub(crate) ends: Option<Vec<i64>>,
}

impl<J: WindowedJob> Windowed<J> {
    /// How window tasks file a key group's windows.
    fn format(&self) -> GroupFormat {
        GroupFormat { window_ms: self.job.window_ms(), max_parallelism: self.partitioner.max_parallelism() }
    }
}

/// What a source or window task keeps.
pub(crate) enum Body<J: WindowedJob> {
    Source {
        /// The newest event time read.
        newest: i64,
        /// The watermark last written to the repartition topics.
        emitted: i64,
        partitioner: Partitioner,
        keyed: Vec<Keyed<J::Key, J::Value>>,
    },
    Window {
        /// The branch whose windows these are.
        branch: usize,
        state: WindowState<J::Key, J::Accumulator>,
        /// Where its checkpoints are.
        checkpoints: Checkpoints,
        partitioner: Partitioner,
        rows: Vec<Vec<u8>>,
    },
}

impl<J: WindowedJob> Work for Windowed<J> {
    type Role = Role;
    type Body = Body<J>;

    fn subscribed(&self) -> Vec<String> {
        self.topology.subscribed().into_iter().map(str::to_string).collect()
    }

    fn role_of(&self, topic: &str) -> Role {
        self.topology.role_of(topic)
    }

    fn name(&self, role: Role) -> &str {
        self.topology.name(role)
    }

    fn skips_markers(&self, topic: &str) -> bool {
        self.topology.role_of(topic) == Role::Source
    }

    fn finishing_tasks(&self, partitions: usize) -> usize {
        partitions * self.topology.branches.len()
    }

    fn resume(cx: &Context<Self>, role: Role, partition: i32, committed: Option<&Committed>) -> Result<Body<J>> {
        let committed = committed.map(|c| c.offset);
        let partitioner = cx.work.partitioner.clone();
        Ok(match role {
            Role::Source => Body::Source { newest: i64::MIN, emitted: i64::MIN, partitioner, keyed: Vec::new() },
            Role::Window(branch) => {
                let name = &cx.work.topology.branches[branch].name;
                let format = cx.work.format();
                let (state, checkpoints) =
                    Checkpoints::restore(&cx.store, name, partition, committed, cx.partitions, &format)?;
                Body::Window { branch, state, checkpoints, partitioner, rows: Vec::new() }
            }
        })
    }

    fn process(cx: &Context<Self>, body: &mut Body<J>, record: &Received<'_>, out: &mut Out<'_>) -> Result<()> {
        let (job, topology) = (&cx.work.job, &cx.work.topology);
        let payload = record.payload.unwrap_or_default();
        match body {
            Body::Source { newest, partitioner, keyed, .. } => {
                job.extract(&InputRecord { payload, timestamp: record.timestamp }, keyed);
                for keyed in keyed.drain(..) {
                    let branches = topology.branches.len();
                    let topic = &topology.branches.get(keyed.branch).ok_or_else(|| {
                        ClusterError::Config(format!(
                            "extract gave a value for branch {}, but the job has {branches} branches",
                            keyed.branch
                        ))
                    })?;
                    *newest = (*newest).max(keyed.timestamp);
                    let group = partitioner.key_group(&keyed.key);
                    let partition = partitioner.partition_of(group);
                    let envelope = Envelope::Record { key: keyed.key, value: keyed.value, timestamp: keyed.timestamp };
                    out.send(&topic.repartition, Some(partition), &envelope.encode())?;
                }
            }
            Body::Window { branch, state, partitioner, rows, .. } => {
                match Envelope::<J::Key, J::Value>::decode(payload)? {
                    Envelope::Record { key, value, timestamp } => {
                        let group = partitioner.key_group(&key) as u32;
                        state.add(job, *branch, group, key, value, timestamp);
                    }
                    Envelope::Watermark { producer, watermark } => {
                        state.advance(job, *branch, producer, watermark, rows)?;
                        let output = &topology.branches[*branch].output;
                        for row in rows.drain(..) {
                            out.send(output, None, &row)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn prepare(
        cx: &Context<Self>,
        body: &mut Body<J>,
        partition: i32,
        next_offsets: &[(&str, i64)],
        out: &mut Out<'_>,
    ) -> Result<bool> {
        let Body::Source { newest, emitted, .. } = body else { return Ok(false) };
        let next_offset = next_offsets[0].1;
        let at_end = cx.work.ends.as_ref().is_some_and(|ends| next_offset >= ends[partition as usize]);
        let watermark = match at_end {
            true => i64::MAX,
            false => newest.saturating_sub(cx.work.job.out_of_orderness_ms()).saturating_sub(1),
        };
        if watermark <= *emitted {
            return Ok(false);
        }
        let mark = Envelope::<J::Key, J::Value>::Watermark { producer: partition as u32, watermark }.encode();
        for topic in &cx.work.topology.branches {
            for to in 0..cx.partitions as i32 {
                out.send(&topic.repartition, Some(to), &mark)?;
            }
        }
        *emitted = watermark;
        Ok(true)
    }

    /// A window task's checkpoint is named by the offset it commits with (no metadata).
    fn checkpoint(cx: &Context<Self>, body: &mut Body<J>, _: i32, offset: i64, _: &mut Out<'_>) -> Result<String> {
        if let Body::Window { state, checkpoints, .. } = body {
            checkpoints.write(&cx.store, state, &cx.work.format(), offset)?;
        }
        Ok(String::new())
    }

    fn committed(cx: &Context<Self>, body: &mut Body<J>, offset: i64) -> Result<()> {
        match body {
            Body::Window { checkpoints, .. } => checkpoints.committed(&cx.store, offset),
            Body::Source { .. } => Ok(()),
        }
    }

    fn finished(body: &Body<J>) -> bool {
        matches!(body, Body::Window { state, .. } if state.finished())
    }
}
