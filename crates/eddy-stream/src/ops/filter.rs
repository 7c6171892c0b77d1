//! `filter`: keeps the records a predicate accepts.

use eddy_core::{OperatorInfo, Output, Record, Result};

use crate::node::forward_control;
use crate::{Data, DataStream};

impl<T: Data> DataStream<T> {
    /// Keeps the records for which `predicate` returns true.
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// let env = StreamEnvironment::new();
    /// env.set_parallelism(1); // one subtask keeps the output in input order
    /// let out = env.from_iter(1..=6).filter(|x| x % 2 == 0).collect();
    /// env.execute("evens").unwrap().wait().unwrap();
    /// assert_eq!(out.take(), vec![2, 4, 6]);
    /// ```
    pub fn filter<F>(&self, predicate: F) -> DataStream<T>
    where
        F: FnMut(&T) -> bool + Clone + Send + Sync + 'static,
    {
        self.transform("Filter", move |ctx, out| {
            Ok(Box::new(FilterOperator { predicate: predicate.clone(), out, info: ctx.info.clone() }))
        })
    }
}

struct FilterOperator<F, T> {
    predicate: F,
    out: Box<dyn Output<T>>,
    info: OperatorInfo,
}

impl<T: Send, F: FnMut(&T) -> bool + Send> Output<T> for FilterOperator<F, T> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let predicate = &mut self.predicate;
        self.info.guard(|| batch.retain(|r| predicate(&r.value)))?;
        self.out.records(batch)
    }
    forward_control!();
}
