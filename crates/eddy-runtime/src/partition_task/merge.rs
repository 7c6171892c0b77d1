//! Where several inputs of one operator meet inside a partition task (a union, a two-input
//! operator, an operator fed by a topic and by an operator of its own task).
//!
//! In one process an input gate does this on the operator's thread: its
//! [`WatermarkValve`] makes the operator's watermark the minimum over its inputs, barriers
//! are aligned, and the operator finishes when every input has ended. A partition task runs
//! on its caller's thread and calls its operators directly, so the same rules apply here
//! synchronously: each input gets an [`Output`] of its own (its index into the valve), and
//! they share the operator. A barrier reaches the operator once every input that has not
//! ended has passed it on; no input can run ahead meanwhile, since the task pushes a
//! checkpoint's barrier into all its inputs at once. The final barrier that follows an
//! input's end reaches it once, after the last input's.

use std::sync::{Arc, Mutex};

use eddy_core::{Barrier, BarrierKind, Output, Record, Result, Timestamp, ValveUpdate, WatermarkValve};

use crate::graph::{erase, unerase, AnyOutput};

/// What the inputs of one operator share.
struct Shared<T> {
    head: Box<dyn Output<T>>,
    valve: WatermarkValve,
    ended: Vec<bool>,
    /// The inputs that have passed on the barrier being aligned.
    barrier: Option<(Barrier, Vec<bool>)>,
    /// The newest processing time passed on, so several inputs tick the operator once.
    now: Timestamp,
    /// Whether the final barrier was passed on.
    finalized: bool,
}

impl<T> Shared<T> {
    fn apply(&mut self, update: ValveUpdate) -> Result<()> {
        if let Some(idle) = update.idle {
            self.head.idle(idle)?;
        }
        if let Some(watermark) = update.watermark {
            self.head.watermark(watermark)?;
        }
        Ok(())
    }

    /// Passes the barrier on once every input that has not ended has passed it.
    fn complete_barrier(&mut self) -> Result<()> {
        let Some((barrier, arrived)) = &self.barrier else { return Ok(()) };
        if arrived.iter().zip(&self.ended).all(|(&a, &e)| a || e) {
            let barrier = *barrier;
            self.barrier = None;
            self.head.barrier(barrier)?;
        }
        Ok(())
    }
}

/// One input of a merged operator.
struct MergeInput<T> {
    index: usize,
    shared: Arc<Mutex<Shared<T>>>,
}

impl<T> MergeInput<T> {
    fn with<R>(&self, f: impl FnOnce(&mut Shared<T>) -> R) -> R {
        f(&mut self.shared.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// One erased `Box<dyn Output<T>>` per input (`inputs` of them) of the operator `head`.
pub(crate) fn merge<T: Send + 'static>(head: AnyOutput, inputs: usize) -> Result<Vec<AnyOutput>> {
    let shared = Arc::new(Mutex::new(Shared {
        head: unerase::<T>(head)?,
        valve: WatermarkValve::new(inputs),
        ended: vec![false; inputs],
        barrier: None,
        now: Timestamp::MIN,
        finalized: false,
    }));
    Ok((0..inputs).map(|index| erase::<T>(Box::new(MergeInput { index, shared: shared.clone() }))).collect())
}

impl<T: Send> Output<T> for MergeInput<T> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        self.with(|s| s.head.records(batch))
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.with(|s| {
            let update = s.valve.watermark(self.index, watermark);
            s.apply(update)
        })
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.with(|s| {
            let update = s.valve.idle(self.index, idle);
            s.apply(update)
        })
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.with(|s| {
            if now <= s.now {
                return Ok(());
            }
            s.now = now;
            s.head.tick(now)
        })
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.with(|s| {
            // The final barrier follows an input's end: it collects the operator's final
            // state once, after the last input has ended and the operator has finished.
            if barrier.kind == BarrierKind::Final {
                let last = s.ended.iter().all(|&e| e) && !std::mem::replace(&mut s.finalized, true);
                return if last { s.head.barrier(barrier) } else { Ok(()) };
            }
            let inputs = s.ended.len();
            let (_, arrived) = s.barrier.get_or_insert_with(|| (barrier, vec![false; inputs]));
            arrived[self.index] = true;
            s.complete_barrier()
        })
    }

    fn finish(&mut self) -> Result<()> {
        self.with(|s| {
            s.ended[self.index] = true;
            let update = s.valve.end(self.index);
            s.apply(update)?;
            s.complete_barrier()?;
            if s.ended.iter().all(|&e| e) {
                s.head.finish()?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use eddy_core::time::MAX_WATERMARK;
    use eddy_core::BarrierKind;

    use super::*;

    /// What reached the merged operator.
    #[derive(Debug, Clone, PartialEq)]
    enum Seen {
        Records(Vec<u32>),
        Watermark(Timestamp),
        Barrier(u64),
        Tick(Timestamp),
        Finish,
    }

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Seen>>>);

    impl Recorder {
        fn take(&self) -> Vec<Seen> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
        fn push(&self, seen: Seen) -> Result<()> {
            self.0.lock().unwrap().push(seen);
            Ok(())
        }
    }

    impl Output<u32> for Recorder {
        fn records(&mut self, batch: &mut Vec<Record<u32>>) -> Result<()> {
            self.push(Seen::Records(batch.drain(..).map(|r| r.value).collect()))
        }
        fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
            self.push(Seen::Watermark(watermark))
        }
        fn idle(&mut self, _: bool) -> Result<()> {
            Ok(())
        }
        fn tick(&mut self, now: Timestamp) -> Result<()> {
            self.push(Seen::Tick(now))
        }
        fn barrier(&mut self, barrier: Barrier) -> Result<()> {
            self.push(Seen::Barrier(barrier.checkpoint))
        }
        fn finish(&mut self) -> Result<()> {
            self.push(Seen::Finish)
        }
    }

    fn merged(inputs: usize) -> (Recorder, Vec<Box<dyn Output<u32>>>) {
        let recorder = Recorder::default();
        let outputs = merge::<u32>(erase::<u32>(Box::new(recorder.clone())), inputs).unwrap();
        (recorder, outputs.into_iter().map(|o| unerase::<u32>(o).unwrap()).collect())
    }

    fn barrier(checkpoint: u64) -> Barrier {
        Barrier { checkpoint, kind: BarrierKind::Checkpoint }
    }

    #[test]
    fn the_watermark_is_the_minimum_and_the_end_comes_with_the_last_input() {
        let (seen, mut inputs) = merged(2);
        inputs[0].records(&mut vec![Record::new(1, 0)]).unwrap();
        inputs[0].watermark(10).unwrap();
        inputs[1].watermark(4).unwrap();
        inputs[1].watermark(12).unwrap();
        inputs[0].finish().unwrap();
        assert_eq!(seen.take(), [Seen::Records(vec![1]), Seen::Watermark(4), Seen::Watermark(10), Seen::Watermark(12)]);
        inputs[1].finish().unwrap();
        assert_eq!(seen.take(), [Seen::Watermark(MAX_WATERMARK), Seen::Finish]);
    }

    #[test]
    fn a_barrier_passes_once_every_open_input_has_passed_it() {
        let (seen, mut inputs) = merged(3);
        inputs[0].barrier(barrier(1)).unwrap();
        inputs[1].barrier(barrier(1)).unwrap();
        assert_eq!(seen.take(), []);
        inputs[2].barrier(barrier(1)).unwrap();
        assert_eq!(seen.take(), [Seen::Barrier(1)]);
        // An input that ends counts as having passed every later barrier.
        inputs[2].finish().unwrap();
        inputs[0].barrier(barrier(2)).unwrap();
        assert_eq!(seen.take(), []);
        inputs[1].barrier(barrier(2)).unwrap();
        assert_eq!(seen.take(), [Seen::Barrier(2)]);
        // And one that ends while a barrier waits for it releases the barrier.
        inputs[0].barrier(barrier(3)).unwrap();
        inputs[1].finish().unwrap();
        assert_eq!(seen.take(), [Seen::Barrier(3)]);
    }

    #[test]
    fn the_final_barrier_passes_once_after_the_last_input_ended() {
        let (seen, mut inputs) = merged(2);
        inputs[0].finish().unwrap();
        inputs[0].barrier(Barrier::FINAL).unwrap();
        assert_eq!(seen.take(), [], "input 1 is still open");
        inputs[1].barrier(barrier(4)).unwrap();
        assert_eq!(seen.take(), [Seen::Barrier(4)], "a checkpoint passes as before");
        inputs[1].finish().unwrap();
        inputs[1].barrier(Barrier::FINAL).unwrap();
        inputs[1].barrier(Barrier::FINAL).unwrap();
        assert_eq!(seen.take(), [Seen::Watermark(MAX_WATERMARK), Seen::Finish, Seen::Barrier(u64::MAX)]);
    }

    #[test]
    fn several_inputs_tick_the_operator_once() {
        let (seen, mut inputs) = merged(2);
        inputs[0].tick(100).unwrap();
        inputs[1].tick(100).unwrap();
        inputs[1].tick(150).unwrap();
        assert_eq!(seen.take(), [Seen::Tick(100), Seen::Tick(150)]);
    }
}
