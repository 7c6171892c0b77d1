//! Where a [`crate::SourceReader`] puts what it read: records with their timestamps, per
//! split, plus dead letters and per-split metrics; and where the subtask's watermark comes
//! from when the source generates watermarks itself.
//!
//! **Per-split watermarks** (Flink's split-local watermark generation): each split a reader
//! registers with [`SourceOutput::add_split`] gets its own watermark generator, fed with that
//! split's records only. The subtask emits the minimum over its active splits, so a partition
//! that is far ahead (or read in big bursts) cannot push event time past the records another
//! partition still holds. With an idleness timeout, a split that produced no record for that
//! long stops holding the watermark back until it produces again; a subtask without any
//! split is idle once its reader was polled (before that it has not registered the splits
//! it owns, and downstream must wait for it). A finished split no longer holds the
//! watermark back; a subtask whose splits have all finished keeps its watermark (neither
//! idle nor at the end of event time) until the reader says its input is over
//! ([`crate::SourcePoll::Done`]): a reader restored with a finished split and an unfinished
//! one must not let the first push event time past the second's records, and a subtask
//! about to end must not, by turning idle, let downstream run ahead of the others' records.
//!
//! **Watermark alignment** (see [`crate::watermark_alignment`]): with
//! [`SourceWatermarks::alignment`] set, the runtime publishes the subtask's watermark to its
//! group and hands the group's bound to [`SourceOutput::align_splits`], which says which
//! splits went above it (to pause) and which came back under it (to resume); the runtime
//! passes that on to [`crate::SourceReader::pause_or_resume_splits`]. While a split is paused,
//! or the whole subtask is, its idleness clock stands still: it sends nothing because it was
//! told to wait, not because its input is idle.
//!
//! **Event time and dead letters.** A record's event time lies in
//! [`MIN_TIMESTAMP`](crate::time::MIN_TIMESTAMP)`..=`[`MAX_TIMESTAMP`](crate::time::MAX_TIMESTAMP):
//! `i64::MIN` and `i64::MAX` are markers (see [`crate::time`]). A record collected with a
//! marker as its timestamp is not passed on: it becomes a dead letter with the reason
//! `assign_timestamps_and_watermarks` gives for the same record, so every event time that
//! enters a job obeys one rule wherever it is assigned. Records a reader cannot read at all
//! it rejects itself, with [`SourceOutput::reject`] and the bytes it read as a [`RawRecord`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use eddy_core::source::{SourceOutput, SourceWatermarks, SplitWatermarkGenerator};
//!
//! /// Watermark = highest timestamp seen (monotonous timestamps).
//! struct Highest(i64);
//! impl SplitWatermarkGenerator<&'static str> for Highest {
//!     fn on_event(&mut self, _: &&'static str, t: i64) -> Option<i64> { self.0 = self.0.max(t); None }
//!     fn on_periodic_emit(&mut self) -> Option<i64> { Some(self.0) }
//! }
//!
//! let watermarks = SourceWatermarks::new(|| Box::new(Highest(i64::MIN)), Duration::from_millis(200), None);
//! let mut out = SourceOutput::new(Some(watermarks));
//! let (p0, p1) = (out.add_split("orders-0"), out.add_split("orders-1"));
//! out.collect_in(p0, "a", 5_000);
//! out.collect_in(p1, "b", 1_000);
//! out.on_periodic(Instant::now());
//! assert_eq!(out.watermark(), 1_000); // the slower partition decides
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dead_letter::{DeadLetter, RawRecord};
use crate::output::Output;
use crate::record::Record;
use crate::time::{reserved, Timestamp, MAX_WATERMARK, MIN_WATERMARK, NO_TIMESTAMP};
use crate::watermark::{ValveUpdate, WatermarkValve};
use crate::watermark_alignment::WatermarkAlignment;
use crate::Result;

/// One split's watermark generator, object-safe so a source can hold one per split (the
/// DataStream API adapts its `WatermarkGenerator`s to it).
pub trait SplitWatermarkGenerator<T>: Send {
    /// Sees every record of its split; a returned watermark follows that record.
    fn on_event(&mut self, value: &T, timestamp: Timestamp) -> Option<Timestamp>;
    /// Asked every interval of processing time; a returned watermark is emitted.
    fn on_periodic_emit(&mut self) -> Option<Timestamp>;
}

/// How a source generates watermarks: a fresh generator per split, how often the periodic
/// watermark is asked for, an optional idleness timeout, and optional watermark alignment.
pub struct SourceWatermarks<T> {
    new_generator: Arc<dyn Fn() -> Box<dyn SplitWatermarkGenerator<T>> + Send + Sync>,
    /// How often [`SplitWatermarkGenerator::on_periodic_emit`] is called.
    pub interval: Duration,
    /// A split without records for this long stops holding back the watermark.
    pub idleness: Option<Duration>,
    /// The alignment group the subtask's watermark is published to; splits that run too far
    /// ahead of it are paused ([`crate::watermark_alignment`]).
    pub alignment: Option<WatermarkAlignment>,
}

impl<T> Clone for SourceWatermarks<T> {
    fn clone(&self) -> Self {
        SourceWatermarks {
            new_generator: self.new_generator.clone(),
            interval: self.interval,
            idleness: self.idleness,
            alignment: self.alignment.clone(),
        }
    }
}

impl<T> SourceWatermarks<T> {
    /// Watermarks from `new_generator()` per split, asked for every `interval`.
    pub fn new(
        new_generator: impl Fn() -> Box<dyn SplitWatermarkGenerator<T>> + Send + Sync + 'static,
        interval: Duration,
        idleness: Option<Duration>,
    ) -> Self {
        SourceWatermarks { new_generator: Arc::new(new_generator), interval, idleness, alignment: None }
    }

    /// The same, aligned as `alignment` says.
    pub fn with_alignment(self, alignment: WatermarkAlignment) -> Self {
        SourceWatermarks { alignment: Some(alignment), ..self }
    }
}

/// A split registered with a [`SourceOutput`]: the handle its records are collected under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SplitId(usize);

impl SplitId {
    /// Its index in registration order.
    pub fn index(self) -> usize {
        self.0
    }
}

/// What a split did since its metrics were last taken (records and bytes), and its lag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SplitMetrics {
    /// Records emitted since the last report.
    pub records: u64,
    /// Bytes read since the last report.
    pub bytes: u64,
    /// Records between the reader's position and the newest record of the split.
    pub lag_records: Option<u64>,
    /// Milliseconds between the newest record read and the newest record of the split
    /// (Kinesis' and the managed Flink service's `millisBehindLatest`).
    pub lag_ms: Option<u64>,
}

struct Split<T> {
    name: String,
    generator: Option<Box<dyn SplitWatermarkGenerator<T>>>,
    /// Its input of the valve.
    input: usize,
    /// Whether a record came since the last periodic check.
    active: bool,
    last_active: Instant,
    idle: bool,
    finished: bool,
    /// Its own watermark (what it last gave the valve).
    watermark: Timestamp,
    /// Whether alignment paused it.
    paused: bool,
    metrics: SplitMetrics,
}

/// A control signal between records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Watermark(Timestamp),
    Idle(bool),
}

/// What one subtask's source produced since the runtime last drained it. See the
/// [module docs](self).
pub struct SourceOutput<T> {
    /// Plain values of a [`crate::Source`], without event time.
    values: Vec<T>,
    records: Vec<Record<T>>,
    /// Signals to send after the first `n` records: `(n, signal)`.
    marks: Vec<(usize, Mark)>,
    dead: Vec<DeadLetter<RawRecord>>,
    splits: Vec<Split<T>>,
    watermarks: Option<SourceWatermarks<T>>,
    valve: WatermarkValve,
    valve_idle: bool,
    idle_sent: bool,
    /// Whether the reader was polled yet: before its first poll it has had no chance to
    /// register the splits it owns, so having none does not make it idle.
    polled: bool,
    default_split: Option<SplitId>,
    /// The alignment group's bound as last given to [`SourceOutput::align_splits`].
    max_allowed: Timestamp,
}

impl<T> SourceOutput<T> {
    /// An empty output; with `watermarks`, the splits' watermarks make the subtask's.
    pub fn new(watermarks: Option<SourceWatermarks<T>>) -> Self {
        SourceOutput {
            values: Vec::new(),
            records: Vec::new(),
            marks: Vec::new(),
            dead: Vec::new(),
            splits: Vec::new(),
            watermarks,
            valve: WatermarkValve::open_ended(),
            valve_idle: false,
            idle_sent: false,
            polled: false,
            default_split: None,
            max_allowed: MAX_WATERMARK,
        }
    }

    /// Where a plain [`crate::Source`] puts its values.
    pub(crate) fn values(&mut self) -> &mut Vec<T> {
        &mut self.values
    }

    /// Whether the source generates watermarks.
    pub fn has_watermarks(&self) -> bool {
        self.watermarks.is_some()
    }

    /// How often the runtime should call [`SourceOutput::on_periodic`] (`None`: never).
    pub fn watermark_interval(&self) -> Option<Duration> {
        self.watermarks.as_ref().map(|w| w.interval)
    }

    /// The subtask's watermark as emitted so far.
    pub fn watermark(&self) -> Timestamp {
        self.valve.current()
    }

    /// Whether the subtask is idle as sent downstream: all its open splits are, or it has none.
    pub fn is_idle(&self) -> bool {
        self.idle_sent
    }

    /// The watermark alignment the source's strategy asks for, if any.
    pub fn alignment(&self) -> Option<&WatermarkAlignment> {
        self.watermarks.as_ref().and_then(|w| w.alignment.as_ref())
    }

    /// Records (and values) waiting to be drained.
    pub fn len(&self) -> usize {
        self.records.len() + self.values.len()
    }

    /// Whether nothing waits to be drained.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a split the reader now reads (a partition assigned, a shard discovered);
    /// `name` labels its metrics (`orders-3`). It starts active, at the minimum watermark.
    pub fn add_split(&mut self, name: impl Into<String>) -> SplitId {
        let generator = self.watermarks.as_ref().map(|w| (w.new_generator)());
        let (input, update) = self.valve.add_input();
        let split = Split {
            name: name.into(),
            generator,
            input,
            active: false,
            last_active: Instant::now(),
            idle: false,
            finished: false,
            watermark: MIN_WATERMARK,
            paused: false,
            metrics: SplitMetrics::default(),
        };
        self.splits.push(split);
        self.apply(update);
        SplitId(self.splits.len() - 1)
    }

    /// A split has ended (a bounded partition reached its end offset): it no longer holds
    /// back the watermark. When every split has ended the subtask keeps its watermark until
    /// another split is registered or the reader reports [`crate::SourcePoll::Done`] (the end
    /// of event time). Register a split's successors
    /// before finishing it, or the watermark may move past their records; when they may be
    /// read by another subtask, use [`SourceOutput::release_split`].
    pub fn finish_split(&mut self, split: SplitId) {
        let s = &mut self.splits[split.0];
        if !s.finished {
            s.finished = true;
            let update = self.valve.end(s.input);
            self.apply(update);
        }
    }

    /// A split is done but the input goes on (a Kinesis shard read to its end, whose children
    /// another subtask may read): it stops holding back the watermark without declaring the
    /// end of event time. Unlike [`SourceOutput::finish_split`], a subtask whose open splits
    /// are all released is idle, not at the maximum watermark, so a successor registered
    /// later, here or on another subtask, finds event time where the released split left it.
    pub fn release_split(&mut self, split: SplitId) {
        let s = &mut self.splits[split.0];
        if !s.finished {
            s.finished = true;
            s.idle = true;
            let update = self.valve.idle(s.input, true);
            self.apply(update);
            self.refresh_idle();
        }
    }

    /// Emits `value` without an event time (as a plain [`crate::Source`] does).
    #[inline]
    pub fn collect(&mut self, value: T) {
        self.records.push(Record::new(value, NO_TIMESTAMP));
    }

    /// Emits `value` with event time `timestamp`, for a reader without splits of its own:
    /// the whole subtask counts as one split named `default`. A timestamp that is a marker
    /// makes a dead letter, as for [`SourceOutput::collect_in`].
    pub fn collect_at(&mut self, value: T, timestamp: Timestamp) {
        let split = match self.default_split {
            Some(split) => split,
            None => {
                let split = self.add_split("default");
                self.default_split = Some(split);
                split
            }
        };
        self.collect_in(split, value, timestamp);
    }

    /// Emits `value` read from `split`, with event time `timestamp`; the split's watermark
    /// generator sees it.
    ///
    /// A `timestamp` of `i64::MIN` or `i64::MAX` is a marker, not an event time: the value is
    /// dropped and a dead letter names its split and timestamp, with the reason
    /// [`crate::time::reserved`] gives (the one `assign_timestamps_and_watermarks` gives). The
    /// output never saw the record's bytes, so its payload is empty; a reader that wants them
    /// in the dead letter checks [`crate::time::reserved`] first and rejects the record itself.
    #[inline]
    pub fn collect_in(&mut self, split: SplitId, value: T, timestamp: Timestamp) {
        if let Some(reason) = reserved(timestamp) {
            return self.reject_marker(split, timestamp, reason);
        }
        let s = &mut self.splits[split.0];
        s.metrics.records += 1;
        s.active = true;
        let mut punctuated = None;
        let mut woke = false;
        if let Some(generator) = s.generator.as_mut() {
            woke = std::mem::replace(&mut s.idle, false);
            punctuated = generator.on_event(&value, timestamp);
        }
        let input = s.input;
        if woke {
            let update = self.valve.idle(input, false);
            self.apply(update);
        }
        self.records.push(Record::new(value, timestamp));
        if let Some(watermark) = punctuated {
            self.split_watermark(split, watermark);
        }
    }

    /// Sends a record that could not be read or deserialised to the dead-letter output, with
    /// why; `record` says where it was read and holds its bytes.
    pub fn reject(&mut self, record: RawRecord, reason: impl Into<String>) {
        self.dead.push(DeadLetter { input: record, error: reason.into() });
    }

    /// The dead letter of a record collected with a marker for its timestamp.
    #[cold]
    fn reject_marker(&mut self, split: SplitId, timestamp: Timestamp, reason: &str) {
        let split = self.splits[split.0].name.clone();
        self.reject(RawRecord { split, timestamp, ..RawRecord::default() }, reason);
    }

    /// Counts `bytes` read from `split` (for its `bytes_in` metric).
    #[inline]
    pub fn add_bytes(&mut self, split: SplitId, bytes: u64) {
        self.splits[split.0].metrics.bytes += bytes;
    }

    /// Reports how far `split`'s reader is behind the newest record of the split, in records
    /// and in milliseconds, each where the system knows it (Kafka knows offsets, Kinesis
    /// reports `millisBehindLatest`); `None` keeps the last reported value.
    pub fn report_lag(&mut self, split: SplitId, records_behind: Option<u64>, ms_behind: Option<u64>) {
        let metrics = &mut self.splits[split.0].metrics;
        metrics.lag_records = records_behind.or(metrics.lag_records);
        metrics.lag_ms = ms_behind.or(metrics.lag_ms);
    }

    /// The runtime's periodic call (every [`SourceOutput::watermark_interval`]): asks each
    /// split's generator for its periodic watermark and marks splits idle that have had no
    /// record for the idleness timeout.
    pub fn on_periodic(&mut self, now: Instant) {
        let Some(settings) = &self.watermarks else { return };
        let idleness = settings.idleness;
        let subtask_paused = self.valve.current() > self.max_allowed;
        for at in 0..self.splits.len() {
            let split = &mut self.splits[at];
            if split.finished || split.idle {
                continue;
            }
            if std::mem::replace(&mut split.active, false) {
                split.last_active = now;
            }
            // Waiting for alignment is not idleness: the clock stands still meanwhile.
            if split.paused || subtask_paused {
                split.last_active = now;
            }
            let timed_out = idleness.is_some_and(|t| now.saturating_duration_since(split.last_active) >= t);
            let input = split.input;
            // The last watermark goes out before the split turns idle: one sent after it
            // would mark it active again.
            if let Some(watermark) = split.generator.as_mut().and_then(|g| g.on_periodic_emit()) {
                self.split_watermark(SplitId(at), watermark);
            }
            if timed_out {
                self.splits[at].idle = true;
                let update = self.valve.idle(input, true);
                self.apply(update);
            }
        }
        self.refresh_idle();
    }

    /// `split`'s generator produced `watermark`.
    fn split_watermark(&mut self, split: SplitId, watermark: Timestamp) {
        let s = &mut self.splits[split.0];
        s.watermark = s.watermark.max(watermark);
        let update = self.valve.watermark(s.input, watermark);
        self.apply(update);
    }

    /// Watermark alignment: the group now lets a watermark reach `max_allowed`. Returns the
    /// open splits whose watermark went above it since the last call (to pause) and the
    /// paused ones that are back within it (to resume), as Flink's `SourceOperator` decides
    /// its `pauseOrResumeSplits`. A finished split is neither: there is nothing left to read.
    pub fn align_splits(&mut self, max_allowed: Timestamp) -> (Vec<SplitId>, Vec<SplitId>) {
        self.max_allowed = max_allowed;
        let (mut pause, mut resume) = (Vec::new(), Vec::new());
        for (at, split) in self.splits.iter_mut().enumerate() {
            if split.finished {
                split.paused = false;
                continue;
            }
            let above = split.watermark > max_allowed;
            if above != split.paused {
                split.paused = above;
                if above { &mut pause } else { &mut resume }.push(SplitId(at));
            }
        }
        (pause, resume)
    }

    /// The runtime's call after each poll of the reader. From the first poll on, a subtask
    /// without splits is idle (it owns nothing to read, e.g. more subtasks than partitions);
    /// before it, a periodic watermark call must not mark it idle, or the other subtasks'
    /// watermarks would run ahead of records it is about to read.
    pub fn after_poll(&mut self) {
        if !self.polled {
            self.polled = true;
            self.refresh_idle();
        }
    }

    /// Turns a valve change into signals after the records collected so far.
    fn apply(&mut self, update: ValveUpdate) {
        if let Some(idle) = update.idle {
            self.valve_idle = idle;
        }
        if self.watermarks.is_none() {
            return;
        }
        if let Some(watermark) = update.watermark {
            self.marks.push((self.records.len(), Mark::Watermark(watermark)));
        }
        self.refresh_idle();
    }

    /// A subtask is idle when all its open splits are idle, or when it has no split at all.
    fn refresh_idle(&mut self) {
        if self.watermarks.is_none() {
            return;
        }
        let idle = (self.polled && self.splits.is_empty()) || self.valve_idle;
        if idle != self.idle_sent {
            self.idle_sent = idle;
            let at = self.records.len();
            // Idle and back with no record between (the last split finished, the next one
            // registered at once) is no change: downstream must not see a moment in which
            // this subtask holds nothing back.
            if self.marks.last() == Some(&(at, Mark::Idle(!idle))) {
                self.marks.pop();
            } else {
                self.marks.push((at, Mark::Idle(idle)));
            }
        }
    }

    /// Sends what was collected into `output`: records in order, each watermark and idleness
    /// change right after the record that caused it. Returns how many records went out.
    pub fn drain_to(&mut self, output: &mut dyn Output<T>) -> Result<usize> {
        if !self.values.is_empty() {
            self.records.extend(self.values.drain(..).map(|value| Record::new(value, NO_TIMESTAMP)));
        }
        let count = self.records.len();
        if self.marks.is_empty() {
            if count > 0 {
                output.records(&mut self.records)?;
            }
            return Ok(count);
        }
        let mut sent = 0;
        let mut marks = std::mem::take(&mut self.marks);
        for (at, mark) in marks.drain(..) {
            if at > sent {
                let rest = self.records.split_off(at - sent);
                output.records(&mut self.records)?;
                self.records = rest;
                sent = at;
            }
            match mark {
                Mark::Watermark(watermark) => output.watermark(watermark)?,
                Mark::Idle(idle) => output.idle(idle)?,
            }
        }
        self.marks = marks;
        if !self.records.is_empty() {
            output.records(&mut self.records)?;
        }
        Ok(count)
    }

    /// Whether dead letters wait to be sent.
    pub fn has_dead_letters(&self) -> bool {
        !self.dead.is_empty()
    }

    /// Takes the dead letters collected so far.
    pub fn take_dead_letters(&mut self) -> Vec<DeadLetter<RawRecord>> {
        std::mem::take(&mut self.dead)
    }

    /// Calls `f` with every split's metrics since the last call (records and bytes start
    /// again from zero; lag is the last reported).
    pub fn take_split_metrics(&mut self, mut f: impl FnMut(SplitId, &str, SplitMetrics)) {
        for (at, split) in self.splits.iter_mut().enumerate() {
            f(SplitId(at), &split.name, split.metrics);
            split.metrics.records = 0;
            split.metrics.bytes = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::barrier::Barrier;
    use crate::time::{MAX_WATERMARK, MIN_WATERMARK};
    use proptest::prelude::*;

    /// Bounded out-of-orderness 0: watermark = highest timestamp seen − 1, and punctuated
    /// watermarks for negative values (a marker record carries its own watermark).
    struct Highest(Timestamp);

    impl SplitWatermarkGenerator<i64> for Highest {
        fn on_event(&mut self, value: &i64, timestamp: Timestamp) -> Option<Timestamp> {
            self.0 = self.0.max(timestamp);
            (*value < 0).then_some(timestamp)
        }
        fn on_periodic_emit(&mut self) -> Option<Timestamp> {
            (self.0 != MIN_WATERMARK).then(|| self.0 - 1)
        }
    }

    fn output(idleness: Option<Duration>) -> SourceOutput<i64> {
        let watermarks = SourceWatermarks::new(|| Box::new(Highest(MIN_WATERMARK)), Duration::from_millis(1), idleness);
        SourceOutput::new(Some(watermarks))
    }

    /// What reached the output, in order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Seen {
        Records(Vec<(i64, Timestamp)>),
        Watermark(Timestamp),
        Idle(bool),
    }

    #[derive(Default)]
    struct Recorder(Vec<Seen>);

    impl Output<i64> for Recorder {
        fn records(&mut self, batch: &mut Vec<Record<i64>>) -> Result<()> {
            self.0.push(Seen::Records(batch.drain(..).map(|r| (r.value, r.timestamp)).collect()));
            Ok(())
        }
        fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
            self.0.push(Seen::Watermark(watermark));
            Ok(())
        }
        fn idle(&mut self, idle: bool) -> Result<()> {
            self.0.push(Seen::Idle(idle));
            Ok(())
        }
        fn tick(&mut self, _: Timestamp) -> Result<()> {
            Ok(())
        }
        fn barrier(&mut self, _: Barrier) -> Result<()> {
            Ok(())
        }
        fn finish(&mut self) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_slowest_active_split_holds_the_watermark() {
        let mut out = output(None);
        let (a, b) = (out.add_split("a"), out.add_split("b"));
        out.collect_in(a, 1, 10_000);
        out.on_periodic(Instant::now());
        assert_eq!(out.watermark(), MIN_WATERMARK, "b has produced nothing yet");
        out.collect_in(b, 2, 3_000);
        out.on_periodic(Instant::now());
        assert_eq!(out.watermark(), 2_999);
        out.finish_split(b);
        assert_eq!(out.watermark(), 9_999, "a finished split no longer holds it back");
        out.finish_split(a);
        assert_eq!(out.watermark(), 9_999, "the end of event time is the reader's to declare");
        assert!(!out.is_idle(), "it holds downstream back until its reader is done");
    }

    /// A reader restored with a finished split and an unfinished one, registering and
    /// finishing them in turn in its first poll (the Nexmark source did): downstream sees the
    /// second split's records and no watermark or idle moment before them.
    #[test]
    fn a_finished_split_registered_before_an_open_one_does_not_end_event_time() {
        let mut out = output(None);
        let done = out.add_split("restored-at-its-end");
        out.finish_split(done);
        let open = out.add_split("restored-behind");
        out.collect_in(open, 1, 22_000);
        out.after_poll();
        out.on_periodic(Instant::now());
        let mut seen = Recorder::default();
        out.drain_to(&mut seen).unwrap();
        assert_eq!(seen.0, vec![Seen::Records(vec![(1, 22_000)]), Seen::Watermark(21_999)]);
    }

    #[test]
    fn punctuated_watermarks_follow_their_record() {
        let mut out = output(None);
        let a = out.add_split("a");
        out.collect_in(a, 1, 100);
        out.collect_in(a, -1, 150);
        out.collect_in(a, 3, 200);
        let mut seen = Recorder::default();
        assert_eq!(out.drain_to(&mut seen).unwrap(), 3);
        assert_eq!(
            seen.0,
            vec![Seen::Records(vec![(1, 100), (-1, 150)]), Seen::Watermark(150), Seen::Records(vec![(3, 200)])]
        );
    }

    #[test]
    fn idle_splits_stop_holding_back_and_wake_on_a_record() {
        let mut out = output(Some(Duration::from_millis(50)));
        let (a, b) = (out.add_split("a"), out.add_split("b"));
        let start = Instant::now();
        out.collect_in(a, 1, 5_000);
        out.on_periodic(start);
        assert_eq!(out.watermark(), MIN_WATERMARK);
        out.collect_in(a, 2, 6_000);
        out.on_periodic(start + Duration::from_millis(60));
        assert_eq!(out.watermark(), 5_999, "b had no record for the idleness timeout");
        out.collect_in(b, 3, 1_000);
        let mut seen = Recorder::default();
        out.drain_to(&mut seen).unwrap();
        assert!(!seen.0.contains(&Seen::Idle(true)), "one active split keeps the subtask active");
        out.on_periodic(start + Duration::from_millis(70));
        assert_eq!(out.watermark(), 5_999, "watermarks never go back when b wakes with older records");
    }

    #[test]
    fn a_released_split_makes_the_subtask_idle_not_ended() {
        let mut out = output(None);
        out.after_poll();
        let (a, b) = (out.add_split("a"), out.add_split("b"));
        out.collect_in(a, 1, 4_000);
        out.collect_in(b, 2, 9_000);
        out.on_periodic(Instant::now());
        assert_eq!(out.watermark(), 3_999);
        out.release_split(a);
        assert_eq!(out.watermark(), 8_999, "a released split no longer holds the others back");
        out.release_split(b);
        assert_eq!(out.watermark(), 8_999, "releasing every split does not end event time");
        let mut seen = Recorder::default();
        out.drain_to(&mut seen).unwrap();
        assert_eq!(seen.0.last(), Some(&Seen::Idle(true)));
        assert!(!seen.0.contains(&Seen::Watermark(MAX_WATERMARK)));
        let c = out.add_split("c");
        out.collect_in(c, 3, 12_000);
        out.on_periodic(Instant::now());
        out.drain_to(&mut seen).unwrap();
        assert!(seen.0.contains(&Seen::Idle(false)), "a successor wakes the subtask");
        assert_eq!(out.watermark(), 11_999);
    }

    #[test]
    fn a_subtask_without_splits_is_idle_from_its_first_poll_until_it_gets_one() {
        let mut out = output(None);
        out.on_periodic(Instant::now());
        let mut seen = Recorder::default();
        out.drain_to(&mut seen).unwrap();
        assert_eq!(seen.0, vec![], "before its first poll the reader has not registered its splits yet");
        out.after_poll();
        out.on_periodic(Instant::now());
        out.drain_to(&mut seen).unwrap();
        assert_eq!(seen.0, vec![Seen::Idle(true)]);
        out.add_split("a");
        out.drain_to(&mut seen).unwrap();
        assert_eq!(seen.0.last(), Some(&Seen::Idle(false)));
    }

    #[test]
    fn without_a_strategy_no_signal_is_sent_and_plain_values_pass() {
        let mut out: SourceOutput<i64> = SourceOutput::new(None);
        let a = out.add_split("a");
        out.collect_in(a, 1, 10);
        out.values().push(2);
        out.on_periodic(Instant::now());
        out.finish_split(a);
        let mut seen = Recorder::default();
        assert_eq!(out.drain_to(&mut seen).unwrap(), 2);
        assert_eq!(seen.0, vec![Seen::Records(vec![(1, 10), (2, NO_TIMESTAMP)])]);
    }

    #[test]
    fn a_marker_timestamp_makes_a_dead_letter_and_leaves_event_time_alone() {
        use crate::time::{MAX_TIMESTAMP, MIN_TIMESTAMP};
        let mut out = output(None);
        let a = out.add_split("orders-0");
        out.collect_in(a, 1, i64::MIN);
        out.collect_in(a, 2, 500);
        out.collect_in(a, 3, i64::MAX);
        out.collect_in(a, 4, MIN_TIMESTAMP);
        out.on_periodic(Instant::now());
        assert_eq!(out.watermark(), 499, "the rejected i64::MAX did not move the watermark");
        out.collect_in(a, 5, MAX_TIMESTAMP);
        let mut seen = Recorder::default();
        assert_eq!(out.drain_to(&mut seen).unwrap(), 3);
        assert_eq!(
            seen.0,
            vec![
                Seen::Records(vec![(2, 500), (4, MIN_TIMESTAMP)]),
                Seen::Watermark(499),
                Seen::Records(vec![(5, MAX_TIMESTAMP)])
            ]
        );
        let letters = out.take_dead_letters();
        let want = |timestamp: i64| DeadLetter {
            input: RawRecord { split: "orders-0".into(), timestamp, ..RawRecord::default() },
            error: reserved(timestamp).unwrap().to_string(),
        };
        assert_eq!(letters, vec![want(i64::MIN), want(i64::MAX)]);

        let mut out: SourceOutput<i64> = SourceOutput::new(None);
        out.collect_at(6, i64::MAX);
        out.collect_at(7, 0);
        assert_eq!(out.len(), 1);
        assert_eq!(out.take_dead_letters()[0].input.split, "default");
    }

    #[test]
    fn metrics_count_per_split_and_reset() {
        let mut out: SourceOutput<i64> = SourceOutput::new(None);
        let (a, b) = (out.add_split("t-0"), out.add_split("t-1"));
        out.collect_in(a, 1, 1);
        out.collect_in(a, 2, 2);
        out.add_bytes(a, 7);
        out.report_lag(b, Some(40), Some(1_500));
        let mut got = Vec::new();
        out.take_split_metrics(|id, name, m| got.push((id, name.to_string(), m)));
        assert_eq!(got[0], (a, "t-0".into(), SplitMetrics { records: 2, bytes: 7, lag_records: None, lag_ms: None }));
        assert_eq!(got[1].2, SplitMetrics { records: 0, bytes: 0, lag_records: Some(40), lag_ms: Some(1_500) });
        out.report_lag(a, None, Some(250));
        got.clear();
        out.take_split_metrics(|id, name, m| got.push((id, name.to_string(), m)));
        assert_eq!(got[0].2.records, 0, "records are counted since the last report");
        assert_eq!((got[0].2.lag_records, got[0].2.lag_ms), (None, Some(250)), "time behind without a count");
    }

    #[test]
    fn alignment_pauses_the_splits_above_the_bound_and_resumes_them_once_within() {
        let mut out = output(None);
        let (a, b, c) = (out.add_split("a"), out.add_split("b"), out.add_split("c"));
        out.collect_in(a, 1, 1_001);
        out.collect_in(b, 1, 5_001);
        out.collect_in(c, 1, 9_001);
        out.on_periodic(Instant::now());
        assert_eq!(out.align_splits(4_000), (vec![b, c], vec![]));
        assert_eq!(out.align_splits(4_000), (vec![], vec![]), "each change is reported once");
        assert_eq!(out.align_splits(6_000), (vec![], vec![b]));
        out.finish_split(c);
        assert_eq!(out.align_splits(20_000), (vec![], vec![]), "a finished split is not resumed");
        assert_eq!(out.align_splits(500), (vec![a, b], vec![]), "nor paused");
    }

    #[test]
    fn a_split_waiting_for_alignment_does_not_turn_idle() {
        let mut out = output(Some(Duration::from_millis(50)));
        let (a, b) = (out.add_split("a"), out.add_split("b"));
        let start = Instant::now();
        out.collect_in(a, 1, 1_000);
        out.collect_in(b, 1, 9_000);
        out.on_periodic(start);
        out.align_splits(5_000);
        out.collect_in(a, 2, 2_000);
        out.on_periodic(start + Duration::from_millis(60));
        assert_eq!(out.watermark(), 1_999, "paused b still holds the watermark: it is not idle");
        // The whole subtask above the bound: no split times out either.
        out.align_splits(0);
        out.on_periodic(start + Duration::from_millis(200));
        let mut seen = Recorder::default();
        out.drain_to(&mut seen).unwrap();
        assert!(!seen.0.contains(&Seen::Idle(true)), "{:?}", seen.0);
        // Once within the bound again, the clock runs: no records for the timeout is idleness.
        out.align_splits(MAX_WATERMARK);
        out.on_periodic(start + Duration::from_millis(300));
        out.drain_to(&mut seen).unwrap();
        assert_eq!(seen.0.last(), Some(&Seen::Idle(true)));
    }

    proptest! {
        /// Per-split watermarks against a model: after every periodic call the subtask's
        /// watermark is the minimum over splits of (highest timestamp − 1), once every split
        /// has a record, and it never goes back.
        #[test]
        fn the_watermark_is_the_minimum_over_splits(
            splits in 1usize..5,
            records in proptest::collection::vec((0usize..5, 0i64..10_000), 0..60),
            every in 1usize..10,
        ) {
            let mut out = output(None);
            let ids: Vec<SplitId> = (0..splits).map(|s| out.add_split(format!("s{s}"))).collect();
            let mut highest = vec![MIN_WATERMARK; splits];
            let mut model = MIN_WATERMARK;
            let mut seen = Recorder::default();
            for (i, (split, timestamp)) in records.iter().enumerate() {
                let split = split % splits;
                out.collect_in(ids[split], 1, *timestamp);
                highest[split] = highest[split].max(*timestamp);
                if i % every == 0 {
                    out.on_periodic(Instant::now());
                    let min = highest.iter().copied().min().unwrap();
                    if min != MIN_WATERMARK {
                        model = model.max(min - 1);
                    }
                    prop_assert_eq!(out.watermark(), model);
                }
            }
            out.drain_to(&mut seen).unwrap();
            let watermarks: Vec<_> = seen.0.iter().filter_map(|s| match s { Seen::Watermark(w) => Some(*w), _ => None }).collect();
            prop_assert!(watermarks.windows(2).all(|w| w[0] < w[1]), "strictly increasing: {:?}", watermarks);
            let sent: usize = seen.0.iter().map(|s| match s { Seen::Records(r) => r.len(), _ => 0 }).sum();
            prop_assert_eq!(sent, records.len());
        }
    }
}
