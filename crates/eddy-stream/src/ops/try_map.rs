//! `try_map` and `try_flat_map`: fallible functions whose errors become dead letters (the
//! input and the error's text on a side output) instead of failing the job.

use std::fmt::Display;

use eddy_core::{OperatorInfo, Output, Record, Result};
use eddy_runtime::metrics::{names, Counter};

use crate::dead_letter::{dead_letter_tag, DeadLetter};
use crate::node::forward_control;
use crate::ops::process::ProcessContext;
use crate::side_output::{OutputTag, WithSide};
use crate::{Data, DataStream};

impl<T: Data> DataStream<T> {
    /// Applies `f` to every record; an `Err` sends the record and the error's text to the
    /// dead-letter output ([`DataStream::dead_letters`]) instead of failing the job.
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// let env = StreamEnvironment::new();
    /// env.set_parallelism(1);
    /// let numbers = env.from_iter(vec!["1".to_string(), "x".to_string(), "3".to_string()])
    ///     .try_map(|s: &String| s.parse::<i32>());
    /// let bad = numbers.dead_letters::<String>().map(|d| d.input).collect();
    /// let good = numbers.collect();
    /// env.execute("parse").unwrap().wait().unwrap();
    /// assert_eq!((good.take(), bad.take()), (vec![1, 3], vec!["x".to_string()]));
    /// ```
    pub fn try_map<U, E, F>(&self, mut f: F) -> DataStream<U>
    where
        U: Data,
        E: Display,
        F: FnMut(&T) -> std::result::Result<U, E> + Clone + Send + Sync + 'static,
    {
        self.try_flat_map(move |value: &T| f(value).map(Some)).name("TryMap")
    }

    /// Replaces every record by the items `f` returns; an `Err` sends the record and the
    /// error's text to the dead-letter output instead of failing the job.
    pub fn try_flat_map<U, I, E, F>(&self, f: F) -> DataStream<U>
    where
        U: Data,
        I: IntoIterator<Item = U>,
        E: Display,
        F: FnMut(&T) -> std::result::Result<I, E> + Clone + Send + Sync + 'static,
    {
        self.transform("TryFlatMap", move |ctx, out| {
            Ok(Box::new(TryFlatMapOperator {
                f: f.clone(),
                out: WithSide::new(ctx, out),
                buffer: Vec::new(),
                tag: dead_letter_tag(),
                dead_letters: ctx.counter(names::DEAD_LETTERS),
                info: ctx.info.clone(),
            }))
        })
    }
}

struct TryFlatMapOperator<F, T, U> {
    f: F,
    out: WithSide<U>,
    buffer: Vec<Record<U>>,
    tag: OutputTag<DeadLetter<T>>,
    dead_letters: Counter,
    info: OperatorInfo,
}

impl<T, U, I, E, F> Output<T> for TryFlatMapOperator<F, T, U>
where
    T: Data,
    U: Send,
    I: IntoIterator<Item = U>,
    E: Display,
    F: FnMut(&T) -> std::result::Result<I, E> + Send,
{
    fn records(&mut self, batch: &mut Vec<Record<T>>) -> Result<()> {
        let (f, buffer, side, tag) = (&mut self.f, &mut self.buffer, &mut self.out.side, &self.tag);
        let rejected = self.info.guard(|| {
            let mut rejected = 0;
            for record in batch.drain(..) {
                match f(&record.value) {
                    Ok(items) => buffer.extend(items.into_iter().map(|u| Record::new(u, record.timestamp))),
                    Err(error) => {
                        rejected += 1;
                        let letter = DeadLetter { input: record.value, error: error.to_string() };
                        side.emit(tag, letter, record.timestamp);
                    }
                }
            }
            rejected
        })?;
        if rejected > 0 {
            self.dead_letters.add(rejected);
            tracing::debug!(records = rejected, "records sent to the dead-letter output");
        }
        self.out.records(&mut self.buffer)
    }
    forward_control!();
}

impl<T: Data> DataStream<T> {
    /// Runs `f` on every record with a [`ProcessContext`]; an `Err` sends the record and the
    /// error's text to the dead-letter output instead of failing the job.
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// let env = StreamEnvironment::new();
    /// env.set_parallelism(1);
    /// let halves = env.from_iter(vec![4, 3, 8]).try_process(|n: &i32, ctx: &mut ProcessContext<'_, i32>| {
    ///     if n % 2 != 0 {
    ///         return Err(format!("{n} is odd"));
    ///     }
    ///     ctx.collect(n / 2);
    ///     Ok(())
    /// });
    /// let odd = halves.dead_letters::<i32>().map(|d| d.error).collect();
    /// let out = halves.collect();
    /// env.execute("halves").unwrap().wait().unwrap();
    /// assert_eq!((out.take(), odd.take()), (vec![2, 4], vec!["3 is odd".to_string()]));
    /// ```
    pub fn try_process<O, E, F>(&self, mut f: F) -> DataStream<O>
    where
        O: Data,
        E: Display,
        F: FnMut(&T, &mut ProcessContext<'_, O>) -> std::result::Result<(), E> + Clone + Send + Sync + 'static,
    {
        let tag = dead_letter_tag::<T>();
        let process = move |value: T, ctx: &mut ProcessContext<'_, O>| {
            if let Err(error) = f(&value, ctx) {
                ctx.reject(&tag, DeadLetter { input: value, error: error.to_string() });
            }
        };
        self.process(process).name("TryProcess")
    }
}
