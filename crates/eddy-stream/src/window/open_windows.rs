//! The windows a window operator has open, each with its per-key accumulators, kept sorted by
//! (end, start) so the next window to fire is first. Consecutive records almost always fall
//! in the same window, so the last window found is checked before searching.
//!
//! With allowed lateness a window stays open after it fires (it is then `fired`), so a late
//! record can still update it, until the watermark passes its cleanup time.

use crate::keyed_table::KeyedTable;
use crate::window::TimeWindow;

/// One open window.
pub(crate) struct OpenWindow<K, Acc> {
    pub(crate) window: TimeWindow,
    pub(crate) table: KeyedTable<K, Acc>,
    /// Whether its result has been emitted (it is kept only for allowed lateness).
    pub(crate) fired: bool,
}

/// Open windows in firing order.
pub(crate) struct OpenWindows<K, Acc> {
    windows: Vec<OpenWindow<K, Acc>>,
    last: usize,
}

impl<K, Acc> Default for OpenWindows<K, Acc> {
    fn default() -> Self {
        OpenWindows { windows: Vec::new(), last: 0 }
    }
}

fn firing_order(window: &TimeWindow) -> (i64, i64) {
    (window.end, window.start)
}

impl<K, Acc> OpenWindows<K, Acc> {
    /// `window`, opened if needed.
    #[inline]
    pub(crate) fn get(&mut self, window: TimeWindow) -> &mut OpenWindow<K, Acc> {
        if self.windows.get(self.last).is_none_or(|w| w.window != window) {
            let order = firing_order(&window);
            self.last = match self.windows.binary_search_by_key(&order, |w| firing_order(&w.window)) {
                Ok(found) => found,
                Err(at) => {
                    self.windows.insert(at, OpenWindow { window, table: KeyedTable::default(), fired: false });
                    at
                }
            };
        }
        &mut self.windows[self.last]
    }

    /// Removes and returns the first window if its max timestamp plus `lateness` is at most
    /// `time` (its cleanup time has come).
    pub(crate) fn pop_expired(&mut self, time: i64, lateness: i64) -> Option<OpenWindow<K, Acc>> {
        if self.windows.first()?.window.max_timestamp().saturating_add(lateness) > time {
            return None;
        }
        self.last = usize::MAX;
        Some(self.windows.remove(0))
    }

    /// Every open window.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &OpenWindow<K, Acc>> + '_ {
        self.windows.iter()
    }

    /// Removes and yields every open window.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = OpenWindow<K, Acc>> + '_ {
        self.last = usize::MAX;
        self.windows.drain(..)
    }

    /// The windows that are due at `time` but not yet fired.
    pub(crate) fn due_unfired(&mut self, time: i64) -> impl Iterator<Item = &mut OpenWindow<K, Acc>> {
        self.windows.iter_mut().take_while(move |w| w.window.max_timestamp() <= time).filter(|w| !w.fired)
    }
}
