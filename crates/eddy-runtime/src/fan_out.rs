//! Fan-out: one stream consumed by several operators gets a copy of each batch for each.

use eddy_core::{Barrier, Output, Record, Result, Timestamp};

use crate::graph::{unerase, AnyOutput};

/// Joins a node's consumers into one typed output (a fan-out when there are several, a
/// discard when there are none).
pub fn combine<T: Clone + Send + 'static>(outputs: Vec<AnyOutput>) -> Result<Box<dyn Output<T>>> {
    if outputs.len() == 1 {
        return unerase(outputs.into_iter().next().expect("one output"));
    }
    let typed = outputs.into_iter().map(unerase).collect::<Result<Vec<_>>>()?;
    Ok(Box::new(FanOut::new(typed)))
}

/// Sends each batch to every output (cloning for all but the last).
pub struct FanOut<T> {
    outputs: Vec<Box<dyn Output<T>>>,
    copy: Vec<Record<T>>,
}

impl<T> FanOut<T> {
    /// A fan-out over `outputs`; with none, records are discarded (an unconsumed stream).
    pub fn new(outputs: Vec<Box<dyn Output<T>>>) -> Self {
        FanOut { outputs, copy: Vec::new() }
    }
}

impl<T: Clone + Send> Output<T> for FanOut<T> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let Some((last, rest)) = self.outputs.split_last_mut() else {
            batch.clear();
            return Ok(());
        };
        for output in rest {
            self.copy.extend_from_slice(batch);
            output.records(&mut self.copy)?;
        }
        last.records(batch)
    }

    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.watermark(watermark))
    }

    fn idle(&mut self, idle: bool) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.idle(idle))
    }

    fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.tick(now))
    }

    fn barrier(&mut self, barrier: Barrier) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.barrier(barrier))
    }

    fn finish(&mut self) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.finish())
    }
}
