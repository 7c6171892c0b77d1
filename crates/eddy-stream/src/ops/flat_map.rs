//! `flat_map`: zero or more output records per input record.

use eddy_core::{OperatorInfo, Output, Record, Result};

use crate::node::forward_control;
use crate::{Data, DataStream};

impl<T: Data> DataStream<T> {
    /// Replaces every record by the items `f` returns, each with the input's timestamp.
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// let env = StreamEnvironment::new();
    /// env.set_parallelism(1); // one subtask keeps the output in input order
    /// let words = env
    ///     .from_iter(vec!["a b".to_string(), "c".to_string()])
    ///     .flat_map(|line: String| line.split(' ').map(String::from).collect::<Vec<_>>())
    ///     .collect();
    /// env.execute("split").unwrap().wait().unwrap();
    /// assert_eq!(words.take(), vec!["a", "b", "c"]);
    /// ```
    pub fn flat_map<U, I, F>(&self, f: F) -> DataStream<U>
    where
        U: Data,
        I: IntoIterator<Item = U>,
        F: FnMut(T) -> I + Clone + Send + Sync + 'static,
    {
        self.transform("FlatMap", move |ctx, out| {
            Ok(Box::new(FlatMapOperator { f: f.clone(), out, buffer: Vec::new(), info: ctx.info.clone() }))
        })
    }
}

struct FlatMapOperator<F, U> {
    f: F,
    out: Box<dyn Output<U>>,
    buffer: Vec<Record<U>>,
    info: OperatorInfo,
}

impl<T, U: Send, I, F> Output<T> for FlatMapOperator<F, U>
where
    I: IntoIterator<Item = U>,
    F: FnMut(T) -> I + Send,
{
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let (f, buffer) = (&mut self.f, &mut self.buffer);
        self.info.guard(|| {
            for record in batch.drain(..) {
                let timestamp = record.timestamp;
                buffer.extend(f(record.value).into_iter().map(|u| Record::new(u, timestamp)));
            }
        })?;
        self.out.records(&mut self.buffer)
    }
    forward_control!();
}
