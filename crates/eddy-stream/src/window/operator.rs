//! The window operator's handler (tumbling and sliding windows, and the keyed stage after a
//! pre-aggregation): per window, one accumulator per key, fired for every key at once when
//! the watermark (event time) or the clock (processing time) passes the window's end.
//!
//! A window's accumulators are one namespace of a [`NamespacedState`], so firing a window is
//! one visit of its namespace (one scan per key group with sled), with no timer per key. The
//! handler keeps only the list of open windows in memory, in firing order, with whether each
//! has fired already (then it stays open for the allowed lateness, and a late record fires
//! its key's window again at once, as Flink's `EventTimeTrigger` does). That a window fired
//! is stored with each of its accumulators too, which is how the list is rebuilt after a
//! restore.

use std::collections::BTreeMap;

use eddy_core::{Error, Record, Result, Timestamp};
use eddy_state::{KeyedEntries, NamespacedState, NamespacedStateDescriptor, TimeDomain};

use crate::keyed_operator::{Intake, KeyedHandler, Shell, VisitError};
use crate::keyed_stream::Key;
use crate::state_codec::{decode, decode_prefix};
use crate::window::fold::Fold;
use crate::window::record_time::record_time;
use crate::window::TimeWindow;
use crate::Data;

/// The window contents: per window and key, whether the window fired, and the accumulator.
fn contents<K, Acc>() -> NamespacedStateDescriptor<TimeWindow, K, (bool, Acc)> {
    NamespacedStateDescriptor::new("window-contents")
}

/// Whether the restored state holds window contents of this handler's format (or of the
/// `legacy` one): a stage that could keep its state otherwise must then run this handler.
pub(crate) fn holds_windows<K: Key, Acc, O: Send>(shell: &Shell<O>, legacy: &[KeyedEntries]) -> Result<bool>
where
    Acc: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    if legacy.iter().any(|state| !state.entries.is_empty()) {
        return Ok(true);
    }
    let contents = shell.store.namespaced_state(&contents::<K, Acc>()).map_err(|e| shell.state_error(e))?;
    Ok(!contents.namespaces(&shell.store).map_err(|e| shell.state_error(e))?.is_empty())
}

/// The name eddy checkpointed window contents under before the keyed-operator shell.
pub(crate) const LEGACY_WINDOWS: &str = "windows";

/// Firing order: by end, then start.
type Order = (Timestamp, Timestamp);

fn order(window: TimeWindow) -> Order {
    (window.end, window.start)
}

/// A window stage's handler.
pub(crate) struct WindowHandler<T, K, F, S: Fold<T>, W> {
    key_of: F,
    fold: S,
    window_fn: W,
    /// The allowed lateness in effect (none in processing time).
    lateness: i64,
    contents: NamespacedState<TimeWindow, K, (bool, S::Acc)>,
    /// The open windows, in firing order, and whether each has fired.
    windows: BTreeMap<Order, bool>,
    /// The last window a record was added to (most records fall in the window before them).
    last: Option<(TimeWindow, bool)>,
    /// The windows of the previous record, reused while timestamps repeat.
    assigned: Vec<TimeWindow>,
    assigned_for: Option<Timestamp>,
    _input: std::marker::PhantomData<fn(T)>,
}

impl<T, K, F, S, W, O> WindowHandler<T, K, F, S, W>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K,
    S: Fold<T>,
    W: Fn(&K, TimeWindow, S::Out) -> O,
    O: Send,
{
    /// Opens the window contents (converting `legacy` entries, see [`LEGACY_WINDOWS`]) and
    /// lists the open windows.
    pub(crate) fn open(
        (key_of, fold, window_fn): (F, S, W),
        allowed_lateness: i64,
        shell: &mut Shell<O>,
        legacy: Vec<KeyedEntries>,
    ) -> Result<Self> {
        fold.validate().map_err(|e| Error::InvalidJob(format!("operator '{}': {e}", shell.info.name)))?;
        if allowed_lateness < 0 {
            let name = &shell.info.name;
            return Err(Error::InvalidJob(format!("operator '{name}': allowed lateness must not be negative")));
        }
        let store = &shell.store;
        let contents = store.namespaced_state(&contents()).map_err(|e| shell.state_error(e))?;
        // Before the shell: `(key group, bincode(key) | start BE | end BE, bincode((fired, acc)))`.
        for (_, key, value) in legacy.into_iter().flat_map(|state| state.entries) {
            let (key, window) = split_window_key::<K>(&key)?;
            let value: (bool, S::Acc) = decode(&value)?;
            contents.put(store, &window, &key, value).map_err(|e| shell.state_error(e))?;
        }
        let mut windows = BTreeMap::new();
        for window in contents.namespaces(store).map_err(|e| shell.state_error(e))? {
            let fired = contents.peek_namespace(store, &window).map_err(|e| shell.state_error(e))?;
            windows.insert(order(window), fired.is_some_and(|(fired, _)| fired));
        }
        let lateness = if fold.is_event_time() { allowed_lateness } else { 0 };
        Ok(WindowHandler {
            key_of,
            fold,
            window_fn,
            lateness,
            contents,
            windows,
            last: None,
            assigned: Vec::new(),
            assigned_for: None,
            _input: std::marker::PhantomData,
        })
    }

    /// Whether `window` has fired, opening it if it is new; `firing` marks it fired.
    #[inline]
    fn open_window(&mut self, window: TimeWindow, firing: bool) -> bool {
        match self.last {
            Some((last, fired)) if last == window && (fired || !firing) => fired,
            _ => {
                let fired = self.windows.entry(order(window)).or_insert(false);
                *fired |= firing;
                self.last = Some((window, *fired));
                *fired
            }
        }
    }

    /// Emits every window whose max timestamp is at most `time`, and removes those whose
    /// cleanup time (max timestamp + allowed lateness) has come; each window's results go out
    /// before the next fires, so a watermark that fires many windows at once (the end of
    /// input) never holds all their results.
    fn fire_until(&mut self, time: Timestamp, shell: &mut Shell<O>) -> Result<()> {
        let (fold, window_fn) = (&self.fold, &self.window_fn);
        while let Some((&(end, start), &fired)) = self.windows.first_key_value() {
            let window = TimeWindow { start, end };
            if window.max_timestamp().saturating_add(self.lateness) > time {
                break;
            }
            self.windows.pop_first();
            self.last = None;
            let output = &mut shell.output;
            let drained = self.contents.drain_namespace(&shell.store, &window, |key, (_, acc)| {
                if !fired {
                    output.emit(window_fn(&key, window, fold.result(acc)), window.max_timestamp());
                }
                Ok::<_, VisitError>(output.flush_if_full()?)
            });
            shell.visited(drained)?;
            shell.output.flush()?;
        }
        let due: Vec<Order> = self
            .windows
            .iter()
            .take_while(|((end, _), _)| end - 1 <= time)
            .filter(|(_, &fired)| !fired)
            .map(|(&order, _)| order)
            .collect();
        for (end, start) in due {
            let window = TimeWindow { start, end };
            self.windows.insert((end, start), true);
            self.last = None;
            let output = &mut shell.output;
            let fired = self.contents.update_namespace(&shell.store, &window, |key, (fired, acc)| {
                *fired = true;
                output.emit(window_fn(key, window, fold.result(acc.clone())), window.max_timestamp());
                Ok::<_, VisitError>(output.flush_if_full()?)
            });
            shell.visited(fired)?;
            shell.output.flush()?;
        }
        Ok(())
    }
}

impl<T, K, F, S, W, O> KeyedHandler<T, O> for WindowHandler<T, K, F, S, W>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K + Send,
    S: Fold<T>,
    W: Fn(&K, TimeWindow, S::Out) -> O + Send,
    O: Send,
{
    fn on_record(&mut self, record: Record<T>, shell: &mut Shell<O>) -> Result<Intake<T>> {
        let event_time = self.fold.is_event_time();
        let timestamp = record_time(event_time, record.timestamp, shell.now, &shell.info)?;
        if self.assigned_for != Some(timestamp) || !self.fold.windows_by_timestamp() {
            self.assigned.clear();
            self.fold.windows(&record.value, timestamp, &mut self.assigned);
            self.assigned_for = Some(timestamp);
        }
        let key = (self.key_of)(&record.value);
        let records = self.fold.records(&record.value);
        let mut value = Some(record.value);
        let (mut kept, mut late) = (false, None);
        for i in 0..self.assigned.len() {
            let window = self.assigned[i];
            let item = if i + 1 < self.assigned.len() { value.clone() } else { value.take() };
            let Some(item) = item else { break };
            if event_time && window.max_timestamp().saturating_add(self.lateness) <= shell.watermark {
                late = Some(item);
                continue;
            }
            kept = true;
            // Late but within the allowed lateness: this key's window fires (again) at once.
            // The watermark has fired the window already, or it is new: it counts as fired.
            let fire_now = event_time && window.max_timestamp() <= shell.watermark;
            let fired = self.open_window(window, fire_now);
            let fold = &self.fold;
            let init = || (fired, fold.create());
            let refired = self.contents.update(&shell.store, &window, &key, init, |(_, acc), _| {
                fold.fold(acc, item);
                fire_now.then(|| acc.clone())
            });
            if let Some(acc) = refired.map_err(|e| shell.state_error(e))? {
                shell.output.emit((self.window_fn)(&key, window, self.fold.result(acc)), window.max_timestamp());
            }
        }
        // A record in no window at all (gaps between sliding windows) is not late.
        if kept || self.assigned.is_empty() {
            Ok(Intake::Taken)
        } else {
            Ok(Intake::Late { records, value: late })
        }
    }

    fn on_time(&mut self, domain: TimeDomain, time: Timestamp, shell: &mut Shell<O>) -> Result<()> {
        if (domain == TimeDomain::EventTime) == self.fold.is_event_time() {
            self.fire_until(time, shell)?;
        }
        Ok(())
    }

    fn on_finish(&mut self, shell: &mut Shell<O>) -> Result<()> {
        // A bounded input has ended: every open window fires, processing-time ones included.
        self.fire_until(Timestamp::MAX, shell)
    }
}

/// Splits a window entry key of the format before the shell: the key's bincode bytes,
/// then start and end.
fn split_window_key<K: Key>(bytes: &[u8]) -> Result<(K, TimeWindow)> {
    let (key, rest) = decode_prefix::<K>(bytes)?;
    let bounds: Option<[u8; 16]> = rest.try_into().ok();
    let bounds = bounds.ok_or_else(|| Error::Checkpoint("a window entry's key is damaged".into()))?;
    let both = u128::from_be_bytes(bounds);
    Ok((key, TimeWindow { start: (both >> 64) as u64 as i64, end: both as u64 as i64 }))
}
