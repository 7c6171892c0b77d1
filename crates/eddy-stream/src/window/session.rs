//! The session window handler: per key, sessions that grow with each record and merge when
//! they come to overlap (Flink's merging windows), fired when time passes their end.
//!
//! A key's sessions are one value in keyed state, and each session has a timer in the
//! store's timer service: at its end (its max timestamp) it fires; with allowed lateness it
//! stays until a second timer, at its end plus the lateness, so a late record can still
//! merge into it, and it fires again. A merge deletes the timers of the sessions it absorbs.

use eddy_core::{Error, Record, Result, Timestamp};
use eddy_state::{FiredTimer, KeyedEntries, NamespacedState, NamespacedStateDescriptor, StateError, TimeDomain};

use crate::keyed_operator::{Intake, KeyedHandler, Shell};
use crate::keyed_stream::Key;
use crate::state_codec::decode;
use crate::window::aggregate::AggregateFunction;
use crate::window::record_time::record_time;
use crate::window::TimeWindow;
use crate::Data;

/// One session: start, end, whether it has fired, and its accumulator (the tuple the
/// operator checkpointed before the shell, so its entries convert as they are).
type Session<Acc> = (Timestamp, Timestamp, bool, Acc);

/// Each key's sessions.
fn sessions<K, Acc>() -> NamespacedStateDescriptor<(), K, Vec<Session<Acc>>> {
    NamespacedStateDescriptor::new("session-windows")
}

/// The name eddy checkpointed sessions under before the keyed-operator shell.
pub(crate) const LEGACY_SESSIONS: &str = "sessions";

/// A session's timer: at its end it fires, at its end plus the allowed lateness it goes.
const FIRE: u8 = 0;
const CLEANUP: u8 = 1;

fn window(session: &Session<impl Sized>) -> TimeWindow {
    TimeWindow::new(session.0, session.1)
}

/// The session window stage.
pub(crate) struct SessionHandler<K, F, G, W, Acc> {
    key_of: F,
    aggregate: G,
    window_fn: W,
    gap: i64,
    event_time: bool,
    /// The allowed lateness in effect (none in processing time).
    lateness: i64,
    sessions: NamespacedState<(), K, Vec<Session<Acc>>>,
}

impl<K, F, G, W, Acc> SessionHandler<K, F, G, W, Acc>
where
    K: Key,
    Acc: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    /// Opens the sessions, converting `legacy` entries (see [`LEGACY_SESSIONS`]) and
    /// scheduling their timers.
    pub(crate) fn open<O: Send>(
        (key_of, aggregate, window_fn): (F, G, W),
        (gap, event_time, allowed_lateness): (i64, bool, i64),
        shell: &mut Shell<O>,
        legacy: Vec<KeyedEntries>,
    ) -> Result<Self> {
        if gap <= 0 {
            return Err(Error::InvalidJob(format!("operator '{}': session gap must be positive", shell.info.name)));
        }
        let sessions = shell.store.namespaced_state(&sessions()).map_err(|e| shell.state_error(e))?;
        let handler = SessionHandler {
            key_of,
            aggregate,
            window_fn,
            gap,
            event_time,
            lateness: if event_time { allowed_lateness } else { 0 },
            sessions,
        };
        // Before the shell: `(key group, bincode(key), bincode(Vec<(start, end, fired, acc)>))`;
        // the timers followed from the sessions.
        for (_, key, value) in legacy.into_iter().flat_map(|state| state.entries) {
            let (key, stored): (K, Vec<Session<Acc>>) = (decode(&key)?, decode(&value)?);
            shell.store.set_current_key(&key).map_err(|e| shell.state_error(e))?;
            for session in &stored {
                let (kind, at) = handler.next_timer(session);
                handler.timer(shell, kind, at, true)?;
            }
            handler.sessions.put(&shell.store, &(), &key, stored).map_err(|e| shell.state_error(e))?;
        }
        Ok(handler)
    }

    fn domain(&self) -> TimeDomain {
        if self.event_time {
            TimeDomain::EventTime
        } else {
            TimeDomain::ProcessingTime
        }
    }

    /// The timer a session waits for: its firing, or once fired its cleanup.
    fn next_timer(&self, session: &Session<Acc>) -> (u8, Timestamp) {
        let end = window(session).max_timestamp();
        if session.2 {
            (CLEANUP, end.saturating_add(self.lateness))
        } else {
            (FIRE, end)
        }
    }

    /// Registers (or deletes) a timer of the current key.
    fn timer<O: Send>(&self, shell: &Shell<O>, kind: u8, at: Timestamp, register: bool) -> Result<()> {
        let done = if register {
            shell.store.register_timer(self.domain(), at, &kind)
        } else {
            shell.store.delete_timer(self.domain(), at, &kind)
        };
        done.map(drop).map_err(|e| shell.state_error(e))
    }

    fn state<R, O: Send>(shell: &Shell<O>, result: std::result::Result<R, StateError>) -> Result<R> {
        result.map_err(|e| shell.state_error(e))
    }
}

impl<T, K, F, G, W, O> KeyedHandler<T, O> for SessionHandler<K, F, G, W, G::Acc>
where
    T: Data,
    K: Key,
    F: Fn(&T) -> K + Send,
    G: AggregateFunction<T>,
    W: Fn(&K, TimeWindow, G::Out) -> O + Send,
    O: Send,
{
    /// Adds the record to its key's sessions, merging those it bridges.
    fn on_record(&mut self, record: Record<T>, shell: &mut Shell<O>) -> Result<Intake<T>> {
        let timestamp = record_time(self.event_time, record.timestamp, shell.now, &shell.info)?;
        let key = (self.key_of)(&record.value);
        let mut sessions = Self::state(shell, self.sessions.take(&shell.store, &(), &key))?.unwrap_or_default();
        let mut merged_window = TimeWindow::new(timestamp, timestamp.saturating_add(self.gap));
        let mut acc = self.aggregate.create_accumulator();
        // Take every session that overlaps (or touches) the new one, and merge them in.
        let mut absorbed = Vec::new();
        let mut i = 0;
        while i < sessions.len() {
            let s = window(&sessions[i]);
            if s.start <= merged_window.end && merged_window.start <= s.end {
                let merged = sessions.swap_remove(i);
                merged_window = TimeWindow::new(merged_window.start.min(s.start), merged_window.end.max(s.end));
                absorbed.push(self.next_timer(&merged));
                self.aggregate.merge(&mut acc, merged.3);
            } else {
                i += 1;
            }
        }
        let end = merged_window.max_timestamp();
        if self.event_time && end.saturating_add(self.lateness) <= shell.watermark {
            // Late, as Flink decides it for merging windows: on the merged session. Nothing
            // can have merged then: any part would have been cleaned up already.
            if !sessions.is_empty() {
                Self::state(shell, self.sessions.put(&shell.store, &(), &key, sessions))?;
            }
            return Ok(Intake::Late { records: 1, value: Some(record.value) });
        }
        self.aggregate.add(&mut acc, record.value);
        Self::state(shell, shell.store.set_current_key(&key))?;
        for (kind, at) in absorbed {
            self.timer(shell, kind, at, false)?;
        }
        // Within the allowed lateness of a session that is due: it fires at once.
        let due_now = self.event_time && end <= shell.watermark;
        let session = (merged_window.start, merged_window.end, due_now, acc);
        if due_now {
            let result = (self.window_fn)(&key, merged_window, self.aggregate.get_result(session.3.clone()));
            shell.output.emit(result, end);
        }
        let (kind, at) = self.next_timer(&session);
        self.timer(shell, kind, at, true)?;
        sessions.push(session);
        Self::state(shell, self.sessions.put(&shell.store, &(), &key, sessions))?;
        Ok(Intake::Taken)
    }

    fn on_timer(&mut self, timer: FiredTimer, shell: &mut Shell<O>) -> Result<()> {
        let key: K = Self::state(shell, timer.key())?;
        let kind: u8 = Self::state(shell, timer.namespace())?;
        let at = timer.timer.timestamp;
        let mut sessions = Self::state(shell, self.sessions.take(&shell.store, &(), &key))?.unwrap_or_default();
        if kind == FIRE {
            if let Some(i) = sessions.iter().position(|s| !s.2 && window(s).max_timestamp() == at) {
                let session = if self.lateness == 0 {
                    sessions.swap_remove(i)
                } else {
                    let session = &mut sessions[i];
                    session.2 = true;
                    // The store's current key is the timer's.
                    self.timer(shell, CLEANUP, at.saturating_add(self.lateness), true)?;
                    session.clone()
                };
                let result = (self.window_fn)(&key, window(&session), self.aggregate.get_result(session.3));
                shell.output.emit(result, at);
            }
        } else {
            sessions.retain(|s| !(s.2 && window(s).max_timestamp().saturating_add(self.lateness) == at));
        }
        if !sessions.is_empty() {
            Self::state(shell, self.sessions.put(&shell.store, &(), &key, sessions))?;
        }
        shell.output.flush_if_full()
    }

    fn on_finish(&mut self, shell: &mut Shell<O>) -> Result<()> {
        // A bounded input has ended: every session fires (the final watermark has fired the
        // event-time ones; this fires processing-time sessions too).
        let domain = self.domain();
        while let Some(timer) = Self::state(shell, shell.store.pop_due_timer(domain, Timestamp::MAX))? {
            self.on_timer(timer, shell)?;
        }
        Ok(())
    }
}
