//! Combining the watermarks of several inputs: the minimum over the inputs that are active.
//!
//! An idle input (a source partition with no data for a while) holds back no watermark; an
//! ended input counts as having reached [`MAX_WATERMARK`]. When every input that has not
//! ended is idle, the operator becomes idle too and, as in Flink's `StatusWatermarkValve`,
//! advances to the highest watermark among them. The combined watermark never goes back.
//!
//! A valve over a fixed set of inputs (an operator's input channels) reaches
//! [`MAX_WATERMARK`] when every input has ended: nothing more can come. A source subtask's
//! splits are not a fixed set: a reader restored with several splits registers them one by
//! one, a Kafka partition appears later. So an [`WatermarkValve::open_ended`] valve whose
//! inputs have all ended changes nothing: it keeps its watermark and its status. The end of
//! event time is declared by whoever knows that the whole input is over (the source task,
//! once its reader says so), never inferred from the splits registered so far, which would
//! let a split registered a moment later find its records behind the watermark. Nor does it
//! turn idle: downstream, a stage whose inputs are all idle advances to the highest of their
//! watermarks, so a subtask that only waits to say it is done would let another one's
//! records fall behind event time.

use crate::time::{Timestamp, MAX_WATERMARK, MIN_WATERMARK};

#[derive(Debug, Clone, Copy)]
struct InputStatus {
    watermark: Timestamp,
    idle: bool,
    ended: bool,
}

/// What a change on one input means for the combined output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValveUpdate {
    /// A new combined watermark to send downstream.
    pub watermark: Option<Timestamp>,
    /// A change of the combined idle status to send downstream.
    pub idle: Option<bool>,
}

/// Tracks each input's watermark and status and yields the combined watermark.
#[derive(Debug, Clone)]
pub struct WatermarkValve {
    inputs: Vec<InputStatus>,
    emitted: Timestamp,
    idle: bool,
    /// Whether inputs may still be added, so all of them having ended is not the end.
    open_ended: bool,
}

impl WatermarkValve {
    /// A valve over `inputs` inputs, all active at the minimum watermark.
    pub fn new(inputs: usize) -> Self {
        let start = InputStatus { watermark: MIN_WATERMARK, idle: false, ended: false };
        WatermarkValve { inputs: vec![start; inputs], emitted: MIN_WATERMARK, idle: false, open_ended: false }
    }

    /// A valve without inputs yet, to which inputs are added as they appear (a source's
    /// splits): when every input it has has ended, it keeps its watermark and status instead
    /// of reaching the end of event time (see the [module docs](self)).
    pub fn open_ended() -> Self {
        WatermarkValve { open_ended: true, ..WatermarkValve::new(0) }
    }

    /// Adds an input, active at the minimum watermark (a source's newly found split); returns
    /// its index and what that changes (an idle valve becomes active).
    pub fn add_input(&mut self) -> (usize, ValveUpdate) {
        self.inputs.push(InputStatus { watermark: MIN_WATERMARK, idle: false, ended: false });
        (self.inputs.len() - 1, self.update())
    }

    /// The combined watermark sent so far.
    pub fn current(&self) -> Timestamp {
        self.emitted
    }

    /// Input `input` reports `watermark` (which also makes it active).
    pub fn watermark(&mut self, input: usize, watermark: Timestamp) -> ValveUpdate {
        let status = &mut self.inputs[input];
        status.watermark = status.watermark.max(watermark);
        status.idle = false;
        self.update()
    }

    /// Input `input` became idle or active.
    pub fn idle(&mut self, input: usize, idle: bool) -> ValveUpdate {
        self.inputs[input].idle = idle;
        self.update()
    }

    /// Input `input` has ended.
    pub fn end(&mut self, input: usize) -> ValveUpdate {
        self.inputs[input].ended = true;
        self.update()
    }

    /// Whether every input has ended.
    pub fn all_ended(&self) -> bool {
        self.inputs.iter().all(|s| s.ended)
    }

    fn update(&mut self) -> ValveUpdate {
        let open = self.inputs.iter().filter(|s| !s.ended);
        let active_min = open.clone().filter(|s| !s.idle).map(|s| s.watermark).min();
        let (candidate, idle) = match active_min {
            Some(min) => (min, false),
            None if self.open_ended && open.clone().next().is_none() => (self.emitted, self.idle),
            None if open.clone().next().is_none() => (MAX_WATERMARK, false),
            None => (open.map(|s| s.watermark).max().unwrap_or(MIN_WATERMARK), true),
        };
        let mut update = ValveUpdate::default();
        if idle != self.idle {
            self.idle = idle;
            update.idle = Some(idle);
        }
        if candidate > self.emitted {
            self.emitted = candidate;
            update.watermark = Some(candidate);
        }
        update
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_over_active_inputs() {
        let mut v = WatermarkValve::new(2);
        assert_eq!(v.watermark(0, 10).watermark, None, "input 1 still at MIN");
        assert_eq!(v.watermark(1, 5).watermark, Some(5));
        assert_eq!(v.watermark(1, 20).watermark, Some(10));
        assert_eq!(v.watermark(0, 7).watermark, None, "per-input watermarks never go back");
    }

    #[test]
    fn idle_input_does_not_hold_back_and_all_idle_advances_to_max_of_them() {
        let mut v = WatermarkValve::new(3);
        v.watermark(0, 100);
        v.watermark(1, 50);
        assert_eq!(v.idle(2, true), ValveUpdate { watermark: Some(50), idle: None });
        assert_eq!(v.idle(1, true), ValveUpdate { watermark: Some(100), idle: None });
        assert_eq!(v.idle(0, true), ValveUpdate { watermark: None, idle: Some(true) });
        // An input that comes back with a lower watermark does not move the output back.
        assert_eq!(v.watermark(1, 60), ValveUpdate { watermark: None, idle: Some(false) });
        assert_eq!(v.current(), 100);
    }

    #[test]
    fn ended_inputs_count_as_done() {
        let mut v = WatermarkValve::new(2);
        v.watermark(0, 10);
        assert_eq!(v.end(1).watermark, Some(10));
        assert!(!v.all_ended());
        assert_eq!(v.end(0).watermark, Some(MAX_WATERMARK));
        assert!(v.all_ended());
    }

    #[test]
    fn an_open_ended_valve_whose_inputs_all_ended_keeps_its_watermark() {
        let mut v = WatermarkValve::open_ended();
        let (a, _) = v.add_input();
        v.watermark(a, 100);
        assert_eq!(v.end(a), ValveUpdate::default(), "neither the end of event time nor idle");
        assert!(v.all_ended());
        let (b, update) = v.add_input();
        assert_eq!(update, ValveUpdate::default(), "a new input holds it back");
        assert_eq!(v.watermark(b, 150).watermark, Some(150));
    }
}
