//! Watermark alignment: the sources of a group stay within a bounded distance of each other in
//! event time (Flink's `WatermarkStrategy.withWatermarkAlignment`).
//!
//! # Why
//!
//! An operator fed by several inputs (a keyed window stage behind parallel sources) fires only
//! what the *slowest* input's watermark has passed. When one input runs ahead in event time (a
//! partition with a backlog of newer data, the second half of a file read next to the first),
//! everything it sends waits in that operator's state until the others catch up: state grows
//! with how far ahead the input is, not with the window.
//!
//! # How
//!
//! Each watermark producer of a group is a *member* ([`AlignmentMember`]): a source subtask
//! that generates watermarks per split, or a timestamp assigner chained to a source. It
//! publishes its watermark, and whether it is idle or finished, through shared atomics. Every
//! `update_interval` the source subtask ([`SourceAlignment`]) reads the group's minimum over
//! the members that are neither idle nor finished, and its *bound*: that minimum plus
//! `max_drift`. While its own watermark is above the bound it reads nothing (a reader that can
//! pause single splits pauses those above the bound instead, see
//! [`crate::SourceReader::pause_or_resume_splits`]); it goes on answering checkpoint barriers,
//! timers and cancellation, and reads again once the group has caught up.
//!
//! It never deadlocks: the member holding the minimum is within `max_drift` of it, so it is
//! never paused, and a member that has ended or gone idle does not count. A member that has
//! produced no watermark yet counts as the beginning of time (so nobody runs ahead before the
//! others have started); a split that may stay empty for good therefore needs an idleness
//! timeout, as its event time would stall the job without alignment too.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use eddy_core::watermark_alignment::{AlignmentGroups, SourceAlignment, WatermarkAlignment};
//!
//! let groups = AlignmentGroups::default();
//! let alignment = WatermarkAlignment::new("orders", Duration::from_secs(10), Duration::from_millis(100));
//! let (behind, ahead) = (groups.join(&alignment), groups.join(&alignment));
//! behind.report(1_000);
//! ahead.report(60_000);
//! let mut source = SourceAlignment::new(ahead.clone());
//! source.update(Instant::now());
//! assert_eq!(source.max_allowed(), 11_000);
//! assert!(source.must_pause(), "60 s is more than 10 s ahead of the group");
//! behind.finish(); // a finished member no longer holds the group back
//! source.update(Instant::now() + Duration::from_millis(100));
//! assert!(!source.must_pause());
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::time::{duration_ms, Timestamp, MAX_WATERMARK, MIN_WATERMARK};

/// Which group a watermark strategy aligns in, how far ahead of the group a source may get,
/// and how often it looks (the settings of Flink's `withWatermarkAlignment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkAlignment {
    group: Arc<str>,
    max_drift: Duration,
    update_interval: Duration,
}

impl WatermarkAlignment {
    /// Members of `group` pause while their watermark is more than `max_drift` above the
    /// group's minimum, which they read every `update_interval`.
    pub fn new(group: &str, max_drift: Duration, update_interval: Duration) -> Self {
        WatermarkAlignment { group: group.into(), max_drift, update_interval }
    }

    /// The group's name: sources with the same name in one job align with each other.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// How far, in event time, a member may run ahead of the group's minimum.
    pub fn max_drift(&self) -> Duration {
        self.max_drift
    }

    /// How often a source reads the group's minimum.
    pub fn update_interval(&self) -> Duration {
        self.update_interval
    }
}

/// The alignment groups of one run of a job, by name.
#[derive(Debug, Clone, Default)]
pub struct AlignmentGroups {
    groups: Arc<Mutex<HashMap<Arc<str>, Arc<Group>>>>,
}

impl AlignmentGroups {
    /// A new member of `alignment`'s group (created on first use). It starts active, with no
    /// watermark yet.
    pub fn join(&self, alignment: &WatermarkAlignment) -> AlignmentMember {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let group = groups.entry(alignment.group.clone()).or_default().clone();
        let slot = Arc::new(Slot::default());
        group.members.lock().unwrap_or_else(|e| e.into_inner()).push(slot.clone());
        AlignmentMember {
            slot,
            group,
            max_drift: duration_ms(alignment.max_drift),
            interval: alignment.update_interval,
        }
    }
}

/// The members of a group. The list changes only while a job is being built; afterwards it is
/// read once per update interval per source subtask, so a mutex costs nothing that matters.
#[derive(Debug, Default)]
struct Group {
    members: Mutex<Vec<Arc<Slot>>>,
}

impl Group {
    /// The lowest watermark over members that are neither idle nor finished (`None`: none is).
    fn minimum(&self) -> Option<Timestamp> {
        let members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        members.iter().filter(|m| m.status.load(Ordering::Acquire) == ACTIVE).map(|m| m.watermark()).min()
    }
}

const ACTIVE: u8 = 0;
const IDLE: u8 = 1;
const FINISHED: u8 = 2;

/// What one member publishes.
#[derive(Debug)]
struct Slot {
    watermark: AtomicI64,
    status: AtomicU8,
    /// Whether its source is paused for alignment (an idleness clock stops meanwhile).
    paused: AtomicBool,
}

impl Default for Slot {
    fn default() -> Self {
        Slot { watermark: AtomicI64::new(MIN_WATERMARK), status: AtomicU8::new(ACTIVE), paused: AtomicBool::new(false) }
    }
}

impl Slot {
    fn watermark(&self) -> Timestamp {
        self.watermark.load(Ordering::Acquire)
    }
}

/// One watermark producer of an alignment group: it publishes its watermark and status, and
/// can read the group's bound. Clones share the member.
#[derive(Debug, Clone)]
pub struct AlignmentMember {
    slot: Arc<Slot>,
    group: Arc<Group>,
    max_drift: Timestamp,
    interval: Duration,
}

impl AlignmentMember {
    /// Publishes `watermark` (a member's watermark never goes back).
    #[inline]
    pub fn report(&self, watermark: Timestamp) {
        self.slot.watermark.fetch_max(watermark, Ordering::AcqRel);
    }

    /// Publishes whether the member is idle: an idle member does not hold the group back.
    pub fn set_idle(&self, idle: bool) {
        let (from, to) = if idle { (ACTIVE, IDLE) } else { (IDLE, ACTIVE) };
        // A finished member stays finished.
        let _ = self.slot.status.compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The member's input has ended: it never holds the group back again.
    pub fn finish(&self) {
        self.slot.status.store(FINISHED, Ordering::Release);
        self.slot.watermark.store(MAX_WATERMARK, Ordering::Release);
    }

    /// The watermark published last.
    pub fn watermark(&self) -> Timestamp {
        self.slot.watermark()
    }

    /// Whether the member's source is paused for alignment right now. An operator that turns
    /// idle after a while without records stops that clock meanwhile (as Flink's source
    /// does): a paused source sends nothing because it was told to wait, not because its
    /// input is idle.
    pub fn is_paused(&self) -> bool {
        self.slot.paused.load(Ordering::Relaxed)
    }

    /// The highest watermark the group lets a member reach now: the minimum over the members
    /// that are neither idle nor finished, plus the allowed drift; [`MAX_WATERMARK`] when no
    /// member is active.
    pub fn max_allowed(&self) -> Timestamp {
        self.group.minimum().map_or(MAX_WATERMARK, |min| min.saturating_add(self.max_drift))
    }
}

/// A source subtask's part in alignment: the group's bound, read every update interval, and
/// whether the subtask must pause (Flink's `SourceOperator` with its max desired watermark).
#[derive(Debug)]
pub struct SourceAlignment {
    member: AlignmentMember,
    max_allowed: Timestamp,
    next_update: Option<Instant>,
}

impl SourceAlignment {
    /// Alignment of the source whose watermark `member` publishes. Nothing is bounded until
    /// the first [`SourceAlignment::update`].
    pub fn new(member: AlignmentMember) -> Self {
        SourceAlignment { member, max_allowed: MAX_WATERMARK, next_update: None }
    }

    /// The member the source publishes through.
    pub fn member(&self) -> &AlignmentMember {
        &self.member
    }

    /// How often the source reads the group's bound.
    pub fn update_interval(&self) -> Duration {
        self.member.interval
    }

    /// Reads the group's bound anew if the update interval has passed since the last read (or
    /// there was none); returns whether it did.
    pub fn update(&mut self, now: Instant) -> bool {
        if self.next_update.is_some_and(|next| now < next) {
            return false;
        }
        self.next_update = Some(now + self.member.interval);
        self.max_allowed = self.member.max_allowed();
        self.member.slot.paused.store(self.must_pause(), Ordering::Relaxed);
        true
    }

    /// The bound read last: splits whose watermark is above it should pause.
    pub fn max_allowed(&self) -> Timestamp {
        self.max_allowed
    }

    /// Whether the source must stop reading: its watermark is above the bound (Flink's
    /// `shouldWaitForAlignment`).
    #[inline]
    pub fn must_pause(&self) -> bool {
        self.member.watermark() > self.max_allowed
    }

    /// How far the source's watermark is above the group's minimum at the last read, in
    /// milliseconds (Flink's `watermarkAlignmentDrift`); 0 when it is not above it.
    pub fn drift(&self) -> u64 {
        let min = self.max_allowed.saturating_sub(self.member.max_drift);
        let watermark = self.member.watermark();
        if self.max_allowed == MAX_WATERMARK || watermark == MAX_WATERMARK || min == MIN_WATERMARK {
            return 0;
        }
        u64::try_from(watermark.saturating_sub(min)).unwrap_or(0)
    }

    /// The source has no more input: it stops holding the group back.
    pub fn finish(&self) {
        self.member.finish();
        self.member.slot.paused.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn alignment(drift: u64, interval_ms: u64) -> WatermarkAlignment {
        WatermarkAlignment::new("g", Duration::from_millis(drift), Duration::from_millis(interval_ms))
    }

    #[test]
    fn the_bound_is_the_minimum_over_active_members_plus_the_drift() {
        let groups = AlignmentGroups::default();
        let a = groups.join(&alignment(100, 10));
        let b = groups.join(&alignment(100, 10));
        assert_eq!(a.max_allowed(), MIN_WATERMARK + 100, "a member without a watermark holds the group at the start");
        a.report(1_000);
        b.report(5_000);
        assert_eq!(a.max_allowed(), 1_100);
        a.report(900);
        assert_eq!(a.watermark(), 1_000, "watermarks never go back");
        a.set_idle(true);
        assert_eq!(b.max_allowed(), 5_100, "an idle member does not count");
        a.set_idle(false);
        assert_eq!(b.max_allowed(), 1_100, "it counts again once active");
        a.finish();
        a.set_idle(false);
        assert_eq!(b.max_allowed(), 5_100, "a finished member stays out");
        b.set_idle(true);
        assert_eq!(b.max_allowed(), MAX_WATERMARK, "no active member: no bound");
    }

    #[test]
    fn groups_are_separate_by_name_and_by_job_run() {
        let groups = AlignmentGroups::default();
        let a = groups.join(&alignment(0, 10));
        let other = groups.join(&WatermarkAlignment::new("other", Duration::ZERO, Duration::from_millis(10)));
        let next_run = AlignmentGroups::default().join(&alignment(0, 10));
        a.report(10);
        other.report(1_000);
        next_run.report(5);
        assert_eq!(a.max_allowed(), 10);
        assert_eq!(other.max_allowed(), 1_000);
        assert_eq!(next_run.max_allowed(), 5);
    }

    #[test]
    fn a_source_reads_the_bound_once_per_update_interval() {
        let groups = AlignmentGroups::default();
        let (slow, fast) = (groups.join(&alignment(50, 100)), groups.join(&alignment(50, 100)));
        slow.report(0);
        fast.report(500);
        let mut source = SourceAlignment::new(fast.clone());
        assert!(!source.must_pause(), "nothing is bounded before the first update");
        let start = Instant::now();
        assert!(source.update(start));
        assert!(source.must_pause());
        assert!(fast.is_paused());
        assert_eq!(source.drift(), 500);
        slow.report(460);
        assert!(!source.update(start + Duration::from_millis(99)), "not before the interval is up");
        assert!(source.must_pause());
        assert!(source.update(start + Duration::from_millis(100)));
        assert!(!source.must_pause());
        assert!(!fast.is_paused());
        assert_eq!(source.drift(), 40);
    }

    /// A member in the simulation: the watermarks it reaches, one per step it is let run;
    /// `None` is a step on which it has no data and turns idle.
    #[derive(Debug, Clone)]
    struct Script {
        steps: Vec<Option<i64>>,
    }

    fn script() -> impl Strategy<Value = Script> {
        // A start anywhere (skewed members), then increments, some idle steps.
        (0i64..10_000, proptest::collection::vec(prop_oneof![8 => (0i64..300).prop_map(Some), 1 => Just(None)], 0..40))
            .prop_map(|(start, increments)| {
                let mut watermark = start;
                let steps = increments
                    .into_iter()
                    .map(|step| {
                        step.map(|inc| {
                            watermark += inc;
                            watermark
                        })
                    })
                    .collect();
                Script { steps }
            })
    }

    proptest! {
        /// Members with skewed starts, idle stretches and different lengths, driven round
        /// robin as source tasks would be: a member takes a step only when it is not paused.
        /// Against a model kept by the test itself: every bound a member reads is the minimum
        /// over the active members plus the drift; no member ever steps from above its bound
        /// (so it gets at most one step past it); and every member finishes
        /// within a bounded number of rounds (no deadlock).
        #[test]
        fn skewed_members_all_finish_and_stay_within_the_drift(
            scripts in proptest::collection::vec(script(), 1..5),
            drift in 0u64..500,
            interval in 1u64..4,
        ) {
            let groups = AlignmentGroups::default();
            let settings = alignment(drift, interval);
            let mut sources: Vec<SourceAlignment> =
                scripts.iter().map(|_| SourceAlignment::new(groups.join(&settings))).collect();
            // The model: each member's watermark and whether it is active (not idle, not done).
            let mut model: Vec<(i64, bool)> = vec![(MIN_WATERMARK, true); scripts.len()];
            let mut next = vec![0; scripts.len()];
            let mut now = Instant::now();
            let total: usize = scripts.iter().map(|s| s.steps.len() + 1).sum();
            let rounds = total * (interval as usize + 1) + 2;
            for _ in 0..rounds {
                now += Duration::from_millis(1);
                for (member, source) in sources.iter_mut().enumerate() {
                    if source.update(now) {
                        let min = model.iter().filter(|m| m.1).map(|m| m.0).min();
                        let want = min.map_or(MAX_WATERMARK, |min| min.saturating_add(drift as i64));
                        prop_assert_eq!(source.max_allowed(), want);
                    }
                    if next[member] > scripts[member].steps.len() || source.must_pause() {
                        continue;
                    }
                    let bound = source.max_allowed();
                    prop_assert!(model[member].0 <= bound, "member {} stepped from above its bound", member);
                    if next[member] == scripts[member].steps.len() {
                        source.finish();
                        model[member] = (MAX_WATERMARK, false);
                    } else {
                        match scripts[member].steps[next[member]] {
                            Some(watermark) => {
                                source.member().set_idle(false);
                                source.member().report(watermark);
                                model[member] = (watermark, true);
                            }
                            None => {
                                source.member().set_idle(true);
                                model[member].1 = false;
                            }
                        }
                    }
                    next[member] += 1;
                }
                if next.iter().zip(&scripts).all(|(n, s)| *n > s.steps.len()) {
                    return Ok(());
                }
            }
            let lengths: Vec<usize> = scripts.iter().map(|s| s.steps.len()).collect();
            prop_assert!(false, "deadlock: members at steps {:?} of {:?} after {} rounds", next, lengths, rounds);
        }
    }
}
