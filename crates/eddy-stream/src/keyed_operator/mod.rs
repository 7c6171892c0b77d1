//! The keyed operator: one shell that every keyed operator runs in, and the handler trait
//! through which each supplies only what is its own.
//!
//! Windows, session windows, windows with a custom trigger, rolling aggregates and keyed
//! process functions differ in what they do with a record and when they emit. Everything
//! else they share, and the shell does it once:
//!
//! - the plumbing: records in batches, the output buffer (sent after each batch, and in
//!   pieces while a large window fires), side outputs, time signals passed on;
//! - event time and processing time: the operator's watermark, one
//!   [timer service](eddy_state::KeyedStateStore::register_timer) for both clocks, whose due
//!   timers it hands to the handler in timestamp order before a watermark goes on;
//! - where records that are too late go (counted, or to the late-data side output), and
//!   records a user function rejected (to the dead-letter output);
//! - keyed state: a [`KeyedStateStore`](eddy_state::KeyedStateStore) over the key groups this
//!   subtask owns, on the heap or in sled ([`working_state`]); every piece of a handler's
//!   state lives there, so the sled backend moves all of it to disk;
//! - queryable state: an operator with a uid registers its store with the job, and the shell
//!   answers reads of it ([`queryable_state`](crate::queryable_state)) between batches and
//!   on ticks, on the subtask's own thread;
//! - checkpoints ([`checkpointing`]): at a barrier, every key group's state and timers go
//!   into the snapshot (with incremental checkpoints on the heap backend, only the entries
//!   changed since the checkpoint they build on: a changelog), then the barrier goes on; at start, the key groups this subtask owns
//!   now are restored from whatever subtasks held them before (any parallelism).
//!
//! A handler is built once the shell has restored the store, and opens its states then
//! ([`KeyedOperator::open`]). It implements [`KeyedHandler`]: it takes one record at a time,
//! answers timers, and may fire on time itself (a window fires every key's accumulator at
//! once, which needs no timer per key):
//!
//! ```text
//!                  ┌──────────── KeyedOperator (the shell) ─────────────┐
//!  records ───────▶│ on_record ──▶ handler ──▶ emit ──▶ buffer ─────────┼──▶ records
//!  watermark ─────▶│ due timers ─▶ on_timer, on_time ───────────────────┼──▶ watermark
//!  barrier ───────▶│ store.snapshot_key_groups() ─▶ checkpoint ─────────┼──▶ barrier
//!                  │ late ─▶ counter / side output; rejected ─▶ dead letters
//!                  └────────────────────────────────────────────────────┘
//! ```

mod checkpointing;
mod shell;
mod working_state;

use eddy_core::time::now_ms;
use eddy_core::{Barrier, Output, Record, Result, Timestamp};
use eddy_runtime::checkpoint::SubtaskList;
use eddy_runtime::graph::BuildContext;
use eddy_runtime::metrics::{names, Counter};
use eddy_state::{FiredTimer, KeyedEntries, TimeDomain};

pub(crate) use self::shell::{Shell, VisitError};
use crate::dead_letter::{dead_letter_tag, DeadLetter};
use crate::side_output::OutputTag;
use crate::Data;

/// What became of a record a handler took.
pub(crate) enum Intake<T> {
    /// It is in the operator's state (or was emitted).
    Taken,
    /// It came too late for its windows: `records` records are dropped (a partial aggregate
    /// stands for several), and `value` goes to the late-data side output if there is one.
    Late {
        /// How many input records it stands for.
        records: u64,
        /// The record, for the late-data side output.
        value: Option<T>,
    },
    /// The user function failed on it: it goes to the dead-letter output with the error.
    Rejected {
        /// The record.
        value: T,
        /// The error's text.
        error: String,
    },
}

/// The part of a keyed operator that is its own: what it does with records, timers and
/// time. Everything else is the shell's (see the module docs). A handler is built once the
/// shell has restored the store, so it opens its states from it
/// ([`KeyedOperator::open`]).
pub(crate) trait KeyedHandler<T, O>: Send {
    /// Takes one record.
    fn on_record(&mut self, record: Record<T>, shell: &mut Shell<O>) -> Result<Intake<T>>;

    /// A timer registered in the store is due.
    fn on_timer(&mut self, timer: FiredTimer, shell: &mut Shell<O>) -> Result<()> {
        let _ = (timer, shell);
        Ok(())
    }

    /// Time of `domain` has reached `time` (after its due timers fired): fire what is due.
    fn on_time(&mut self, domain: TimeDomain, time: Timestamp, shell: &mut Shell<O>) -> Result<()> {
        let _ = (domain, time, shell);
        Ok(())
    }

    /// The input has ended (after the final watermark): emit what must still go out.
    fn on_finish(&mut self, shell: &mut Shell<O>) -> Result<()> {
        let _ = shell;
        Ok(())
    }

    /// State the handler keeps outside keyed state (broadcast state), for a checkpoint.
    fn lists(&self, shell: &Shell<O>) -> Result<Vec<SubtaskList>> {
        let _ = shell;
        Ok(Vec::new())
    }

    /// The input has ended and everything is emitted: close the user's function (its
    /// lifecycle hook, see [`RuntimeContext`](crate::RuntimeContext)).
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A keyed operator: a handler in the shell.
pub(crate) struct KeyedOperator<T, O, H> {
    handler: H,
    shell: Shell<O>,
    /// Where late records go, if anywhere.
    late: Option<OutputTag<T>>,
    dead_letter: OutputTag<DeadLetter<T>>,
    late_dropped: Counter,
    dead_letters: Counter,
}

/// How a keyed operator is set up besides its handler.
pub(crate) struct Setup<'a, T> {
    /// Where records too late for their windows go (`None`: they are only counted).
    pub(crate) late: Option<OutputTag<T>>,
    /// The states the handler's operator checkpointed before it ran in the shell, by name: a
    /// snapshot of that format hands their entries to the handler's build to convert.
    pub(crate) legacy: &'a [&'a str],
}

impl<T> Default for Setup<'_, T> {
    fn default() -> Self {
        Setup { late: None, legacy: &[] }
    }
}

impl<T: Data, O: Send, H: KeyedHandler<T, O>> KeyedOperator<T, O, H> {
    /// Builds the subtask: opens its keyed state and restores it, then builds the handler
    /// with `build`, which opens the handler's states, converts the restored entries of
    /// legacy states into them, and rebuilds what the handler keeps in memory.
    pub(crate) fn open(
        ctx: &BuildContext,
        out: Box<dyn Output<O>>,
        setup: Setup<'_, T>,
        build: impl FnOnce(&mut Shell<O>, Vec<KeyedEntries>) -> Result<H>,
    ) -> Result<Self> {
        let mut shell = Shell::open(ctx, out)?;
        let legacy = shell.restore(setup.legacy)?;
        let info = shell.info.clone();
        let handler = info.guard(|| build(&mut shell, legacy))??;
        let late = setup.late;
        Ok(KeyedOperator {
            handler,
            shell,
            late,
            dead_letter: dead_letter_tag(),
            late_dropped: ctx.counter(names::LATE_RECORDS_DROPPED),
            dead_letters: ctx.counter(names::DEAD_LETTERS),
        })
    }

    /// Hands the handler every due timer of `domain`, then the time itself.
    fn advance(&mut self, domain: TimeDomain, time: Timestamp) -> Result<()> {
        let (handler, shell) = (&mut self.handler, &mut self.shell);
        let info = shell.info.clone();
        info.guard(|| -> Result<()> {
            while let Some(timer) = shell.store.pop_due_timer(domain, time).map_err(|e| shell.state_error(e))? {
                handler.on_timer(timer, shell)?;
            }
            handler.on_time(domain, time, shell)
        })??;
        self.shell.flush()
    }
}

impl<T: Data, O: Send, H: KeyedHandler<T, O>> Output<T> for KeyedOperator<T, O, H> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        self.shell.now = now_ms();
        let (handler, shell) = (&mut self.handler, &mut self.shell);
        let (late, dead_letter) = (&self.late, &self.dead_letter);
        let info = shell.info.clone();
        let (dropped, rejected) = info.guard(|| -> Result<(u64, u64)> {
            let (mut dropped, mut rejected) = (0, 0);
            for record in batch.drain(..) {
                let timestamp = record.timestamp;
                match handler.on_record(record, shell)? {
                    Intake::Taken => {}
                    Intake::Late { records, value } => {
                        dropped += records;
                        if let (Some(tag), Some(value)) = (late, value) {
                            shell.output.out.side.emit(tag, value, timestamp);
                        }
                    }
                    Intake::Rejected { value, error } => {
                        rejected += 1;
                        shell.output.out.side.emit(dead_letter, DeadLetter { input: value, error }, timestamp);
                    }
                }
            }
            Ok((dropped, rejected))
        })??;
        if dropped > 0 {
            self.late_dropped.add(dropped);
            tracing::debug!(records = dropped, "late records dropped: their windows had fired");
        }
        if rejected > 0 {
            self.dead_letters.add(rejected);
            tracing::debug!(records = rejected, "records sent to the dead-letter output");
        }
        self.shell.flush()
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.shell.watermark = watermark;
        self.advance(TimeDomain::EventTime, watermark)?;
        self.shell.output.out.watermark(watermark)
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.shell.output.out.idle(idle)
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.shell.now = now;
        self.advance(TimeDomain::ProcessingTime, now)?;
        self.shell.output.out.tick(now)
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        let lists = self.handler.lists(&self.shell)?;
        self.shell.snapshot(lists, barrier)?;
        self.shell.output.out.barrier(barrier)
    }

    fn finish(&mut self) -> Result<()> {
        let (handler, shell) = (&mut self.handler, &mut self.shell);
        let info = shell.info.clone();
        info.guard(|| handler.on_finish(shell))??;
        self.shell.flush()?;
        self.handler.close()?;
        self.shell.output.out.finish()
    }
}
