//! The windows a window operator has open, each with its per-key accumulators, kept sorted by
//! (end, start) so the next window to fire is first. Consecutive records almost always fall
//! in the same window, so the last window found is checked before searching.

use crate::keyed_table::KeyedTable;
use crate::window::TimeWindow;

/// Open windows in firing order.
pub(crate) struct OpenWindows<K, Acc> {
    windows: Vec<(TimeWindow, KeyedTable<K, Acc>)>,
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
    /// The table of `window`, opened if needed.
    #[inline]
    pub(crate) fn table(&mut self, window: TimeWindow) -> &mut KeyedTable<K, Acc> {
        if self.windows.get(self.last).is_none_or(|(w, _)| *w != window) {
            let order = firing_order(&window);
            self.last = match self.windows.binary_search_by_key(&order, |(w, _)| firing_order(w)) {
                Ok(found) => found,
                Err(at) => {
                    self.windows.insert(at, (window, KeyedTable::default()));
                    at
                }
            };
        }
        &mut self.windows[self.last].1
    }

    /// Removes and returns the first window if its max timestamp is at most `time`.
    pub(crate) fn pop_due(&mut self, time: i64) -> Option<(TimeWindow, KeyedTable<K, Acc>)> {
        if self.windows.first()?.0.max_timestamp() > time {
            return None;
        }
        self.last = usize::MAX;
        Some(self.windows.remove(0))
    }
}
