//! The panes a pre-aggregation has open, each with its per-key partial accumulators, kept
//! sorted by (end, start) so the next one to send is first. Consecutive records almost
//! always fall in the same pane, so the last one found is checked before searching.

use crate::keyed_table::KeyedTable;
use crate::window::TimeWindow;

/// One open pane.
pub(crate) struct OpenWindow<K, Acc> {
    pub(crate) window: TimeWindow,
    pub(crate) table: KeyedTable<K, Acc>,
}

/// Open panes in the order they are sent.
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
                    self.windows.insert(at, OpenWindow { window, table: KeyedTable::default() });
                    at
                }
            };
        }
        &mut self.windows[self.last]
    }

    /// Removes and returns the first pane if its max timestamp is at most `time`.
    pub(crate) fn pop_due(&mut self, time: i64) -> Option<OpenWindow<K, Acc>> {
        if self.windows.first()?.window.max_timestamp() > time {
            return None;
        }
        self.last = usize::MAX;
        Some(self.windows.remove(0))
    }

    /// Removes and yields every open pane.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = OpenWindow<K, Acc>> + '_ {
        self.last = usize::MAX;
        self.windows.drain(..)
    }
}
