//! Triggers: when a window emits its result (Flink's `Trigger`). A trigger sees each record
//! of a key's window and the timers it registered, and answers continue, fire, purge, or
//! both; it may keep a little state per key and window (a count, say).

use eddy_core::time::duration_ms;
use eddy_core::Timestamp;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::window::TimeWindow;

/// What a trigger decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerResult {
    /// Nothing happens.
    Continue,
    /// Emit the window's result; keep its contents.
    Fire,
    /// Drop the window's contents without emitting.
    Purge,
    /// Emit the result, then drop the contents.
    FireAndPurge,
}

impl TriggerResult {
    /// Whether the window's result is emitted.
    pub fn fires(self) -> bool {
        matches!(self, TriggerResult::Fire | TriggerResult::FireAndPurge)
    }

    /// Whether the window's contents are dropped.
    pub fn purges(self) -> bool {
        matches!(self, TriggerResult::Purge | TriggerResult::FireAndPurge)
    }
}

/// Lets a trigger see time and ask to be called back.
#[derive(Debug, Default)]
pub struct TriggerContext {
    pub(crate) watermark: Timestamp,
    pub(crate) event_timers: Vec<Timestamp>,
    pub(crate) processing_timers: Vec<Timestamp>,
}

impl TriggerContext {
    /// The operator's event-time watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.watermark
    }

    /// Calls `on_event_time` for this key and window once the watermark reaches `time`.
    pub fn register_event_time_timer(&mut self, time: Timestamp) {
        self.event_timers.push(time);
    }

    /// Calls `on_processing_time` for this key and window once the clock reaches `time`.
    pub fn register_processing_time_timer(&mut self, time: Timestamp) {
        self.processing_timers.push(time);
    }
}

/// Decides when a window fires. `State` is kept per key and window.
pub trait Trigger<T>: Clone + Send + Sync + 'static {
    /// Per key and window, created with `Default` when the window gets its first record
    /// (serialisable: it is checkpointed with the window).
    type State: Default + Send + Serialize + DeserializeOwned + 'static;
    /// A record was added to `window`.
    fn on_element(
        &self,
        value: &T,
        timestamp: Timestamp,
        window: TimeWindow,
        state: &mut Self::State,
        ctx: &mut TriggerContext,
    ) -> TriggerResult;
    /// An event-time timer this trigger registered has come.
    fn on_event_time(
        &self,
        time: Timestamp,
        window: TimeWindow,
        state: &mut Self::State,
        ctx: &mut TriggerContext,
    ) -> TriggerResult;
    /// A processing-time timer this trigger registered has come.
    fn on_processing_time(
        &self,
        time: Timestamp,
        window: TimeWindow,
        state: &mut Self::State,
        ctx: &mut TriggerContext,
    ) -> TriggerResult;
    /// Whether this is the assigner's own default (eddy then runs its two-stage windows).
    fn is_default(&self) -> bool {
        false
    }
}

/// The assigner's own trigger: event-time windows fire when the watermark passes their
/// end, processing-time windows when the clock does.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultTrigger;

impl<T> Trigger<T> for DefaultTrigger {
    type State = ();
    fn on_element(&self, _: &T, _: Timestamp, _: TimeWindow, _: &mut (), _: &mut TriggerContext) -> TriggerResult {
        TriggerResult::Continue
    }
    fn on_event_time(&self, _: Timestamp, _: TimeWindow, _: &mut (), _: &mut TriggerContext) -> TriggerResult {
        TriggerResult::Continue
    }
    fn on_processing_time(&self, _: Timestamp, _: TimeWindow, _: &mut (), _: &mut TriggerContext) -> TriggerResult {
        TriggerResult::Continue
    }
    fn is_default(&self) -> bool {
        true
    }
}

/// Fires when the watermark passes the window's end (Flink's `EventTimeTrigger`); a record
/// for a window that already fired (within allowed lateness) fires it again at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventTimeTrigger;

impl<T> Trigger<T> for EventTimeTrigger {
    type State = ();
    fn on_element(
        &self,
        _: &T,
        _: Timestamp,
        window: TimeWindow,
        _: &mut (),
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        if window.max_timestamp() <= ctx.watermark {
            return TriggerResult::Fire;
        }
        ctx.register_event_time_timer(window.max_timestamp());
        TriggerResult::Continue
    }
    fn on_event_time(&self, time: Timestamp, window: TimeWindow, _: &mut (), _: &mut TriggerContext) -> TriggerResult {
        if time == window.max_timestamp() {
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        }
    }
    fn on_processing_time(&self, _: Timestamp, _: TimeWindow, _: &mut (), _: &mut TriggerContext) -> TriggerResult {
        TriggerResult::Continue
    }
}

/// Fires when the clock passes the window's end (Flink's `ProcessingTimeTrigger`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessingTimeTrigger;

impl<T> Trigger<T> for ProcessingTimeTrigger {
    type State = ();
    fn on_element(
        &self,
        _: &T,
        _: Timestamp,
        window: TimeWindow,
        _: &mut (),
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        ctx.register_processing_time_timer(window.max_timestamp());
        TriggerResult::Continue
    }
    fn on_event_time(&self, _: Timestamp, _: TimeWindow, _: &mut (), _: &mut TriggerContext) -> TriggerResult {
        TriggerResult::Continue
    }
    fn on_processing_time(
        &self,
        time: Timestamp,
        window: TimeWindow,
        _: &mut (),
        _: &mut TriggerContext,
    ) -> TriggerResult {
        if time >= window.max_timestamp() {
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        }
    }
}

/// Fires every `count` records of a key's window (Flink's `CountTrigger`).
#[derive(Debug, Clone, Copy)]
pub struct CountTrigger {
    count: u64,
}

impl CountTrigger {
    /// Fires on every `count`-th record.
    pub fn of(count: u64) -> Self {
        CountTrigger { count: count.max(1) }
    }
}

impl<T> Trigger<T> for CountTrigger {
    type State = u64;
    fn on_element(&self, _: &T, _: Timestamp, _: TimeWindow, seen: &mut u64, _: &mut TriggerContext) -> TriggerResult {
        *seen += 1;
        if *seen >= self.count {
            *seen = 0;
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        }
    }
    fn on_event_time(&self, _: Timestamp, _: TimeWindow, _: &mut u64, _: &mut TriggerContext) -> TriggerResult {
        TriggerResult::Continue
    }
    fn on_processing_time(&self, _: Timestamp, _: TimeWindow, _: &mut u64, _: &mut TriggerContext) -> TriggerResult {
        TriggerResult::Continue
    }
}

/// Fires every `interval` of event time while the window is open, and at its end (Flink's
/// `ContinuousEventTimeTrigger`): early, updated results of long windows.
#[derive(Debug, Clone, Copy)]
pub struct ContinuousEventTimeTrigger {
    interval: i64,
}

impl ContinuousEventTimeTrigger {
    /// Fires at every multiple of `interval` of event time.
    pub fn of(interval: std::time::Duration) -> Self {
        ContinuousEventTimeTrigger { interval: duration_ms(interval).max(1) }
    }
}

impl ContinuousEventTimeTrigger {
    /// Registers the next periodic firing, only before the window's end (which fires anyway);
    /// past it the periodic timers would chase the final watermark forever.
    fn schedule(&self, at: Timestamp, window: TimeWindow, next: &mut Option<Timestamp>, ctx: &mut TriggerContext) {
        if at < window.max_timestamp() {
            *next = Some(at);
            ctx.register_event_time_timer(at);
        } else {
            *next = None;
        }
    }
}

impl<T> Trigger<T> for ContinuousEventTimeTrigger {
    /// The next periodic firing registered, if any.
    type State = Option<Timestamp>;
    fn on_element(
        &self,
        _: &T,
        timestamp: Timestamp,
        window: TimeWindow,
        next: &mut Option<Timestamp>,
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        if window.max_timestamp() <= ctx.watermark {
            return TriggerResult::Fire;
        }
        ctx.register_event_time_timer(window.max_timestamp());
        if next.is_none() {
            // The next multiple of the interval after `timestamp`, saturating at the end of time.
            let at = timestamp.saturating_add(self.interval - timestamp.rem_euclid(self.interval));
            self.schedule(at, window, next, ctx);
        }
        TriggerResult::Continue
    }
    fn on_event_time(
        &self,
        time: Timestamp,
        window: TimeWindow,
        next: &mut Option<Timestamp>,
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        if time == window.max_timestamp() {
            return TriggerResult::Fire;
        }
        if *next == Some(time) {
            self.schedule(time.saturating_add(self.interval), window, next, ctx);
            return TriggerResult::Fire;
        }
        TriggerResult::Continue
    }
    fn on_processing_time(
        &self,
        _: Timestamp,
        _: TimeWindow,
        _: &mut Option<Timestamp>,
        _: &mut TriggerContext,
    ) -> TriggerResult {
        TriggerResult::Continue
    }
}

/// Turns every firing of `inner` into fire-and-purge (Flink's `PurgingTrigger`).
#[derive(Debug, Clone, Copy)]
pub struct PurgingTrigger<Tr>(Tr);

impl<Tr> PurgingTrigger<Tr> {
    /// Purges whenever `inner` fires.
    pub fn of(inner: Tr) -> Self {
        PurgingTrigger(inner)
    }
}

fn purging(result: TriggerResult) -> TriggerResult {
    if result.fires() {
        TriggerResult::FireAndPurge
    } else {
        result
    }
}

impl<T, Tr: Trigger<T>> Trigger<T> for PurgingTrigger<Tr> {
    type State = Tr::State;
    fn on_element(
        &self,
        value: &T,
        timestamp: Timestamp,
        window: TimeWindow,
        state: &mut Tr::State,
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        purging(self.0.on_element(value, timestamp, window, state, ctx))
    }
    fn on_event_time(
        &self,
        time: Timestamp,
        window: TimeWindow,
        state: &mut Tr::State,
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        purging(self.0.on_event_time(time, window, state, ctx))
    }
    fn on_processing_time(
        &self,
        time: Timestamp,
        window: TimeWindow,
        state: &mut Tr::State,
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        purging(self.0.on_processing_time(time, window, state, ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_core::time::{MAX_TIMESTAMP, MIN_TIMESTAMP};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn continuous_trigger_schedules_the_next_multiple_anywhere_on_the_time_line(
            ts in prop_oneof![MIN_TIMESTAMP..MIN_TIMESTAMP + 10_000, MAX_TIMESTAMP - 10_000..=MAX_TIMESTAMP, any::<i64>()],
            interval in prop_oneof![1u64..10_000, any::<u64>()],
        ) {
            let ts = ts.clamp(MIN_TIMESTAMP, MAX_TIMESTAMP);
            let trigger = ContinuousEventTimeTrigger::of(std::time::Duration::from_millis(interval));
            let window = TimeWindow::new(i64::MIN, i64::MAX);
            let (mut next, mut ctx) = (None, TriggerContext { watermark: i64::MIN, ..Default::default() });
            let result = Trigger::<()>::on_element(&trigger, &(), ts, window, &mut next, &mut ctx);
            prop_assert_eq!(result, TriggerResult::Continue);
            // The model in i128: the first multiple of the interval after ts, clipped.
            let step = i128::from(trigger.interval);
            let want = (i128::from(ts) - i128::from(ts).rem_euclid(step) + step).min(i128::from(i64::MAX)) as i64;
            prop_assert_eq!(next, (want < window.max_timestamp()).then_some(want));
            prop_assert!(next.is_none_or(|at| at > ts));
        }
    }
}
