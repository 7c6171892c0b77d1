//! Union: several streams into one operator. The merging happens in the input gate, which
//! also takes the minimum of the inputs' watermarks; the operator itself passes records on.

use eddy_core::{Output, Record, Result};

use crate::node::forward_control;

/// Passes records through unchanged.
pub(crate) struct Identity<T> {
    pub(crate) out: Box<dyn Output<T>>,
}

impl<T: Send> Output<T> for Identity<T> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        self.out.records(batch)
    }
    forward_control!();
}
