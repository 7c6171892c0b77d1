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
//! checkpoint's barrier into all its inputs at once.

use std::sync::{Arc, Mutex};

use eddy_core::{Barrier, Output, Record, Result, Timestamp, ValveUpdate, WatermarkValve};

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
