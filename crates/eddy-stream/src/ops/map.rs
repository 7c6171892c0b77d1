//! `map`: one output record per input record.

use eddy_core::{OperatorInfo, Output, Record, Result};

use crate::node::forward_control;
use crate::{Data, DataStream};

impl<T: Data> DataStream<T> {
    /// Applies `f` to every record; the result keeps the record's timestamp.
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// let env = StreamEnvironment::new();
    /// env.set_parallelism(1); // one subtask keeps the output in input order
    /// let out = env.from_iter(vec![1, 2, 3]).map(|x| x * 2).collect();
    /// env.execute("double").unwrap().wait().unwrap();
    /// assert_eq!(out.take(), vec![2, 4, 6]);
    /// ```
    pub fn map<U, F>(&self, f: F) -> DataStream<U>
    where
        U: Data,
        F: FnMut(T) -> U + Clone + Send + Sync + 'static,
    {
        self.transform("Map", move |ctx, out| {
            Ok(Box::new(MapOperator { f: f.clone(), out, buffer: Vec::new(), info: ctx.info.clone() }))
        })
    }
}

struct MapOperator<F, U> {
    f: F,
    out: Box<dyn Output<U>>,
    buffer: Vec<Record<U>>,
    info: OperatorInfo,
}

impl<T, U: Send, F: FnMut(T) -> U + Send> Output<T> for MapOperator<F, U> {
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let (f, buffer) = (&mut self.f, &mut self.buffer);
        self.info.guard(|| buffer.extend(batch.drain(..).map(|r| Record::new(f(r.value), r.timestamp))))?;
        self.out.records(&mut self.buffer)
    }
    forward_control!();
}
