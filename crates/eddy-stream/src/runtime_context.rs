//! Lifecycle hooks of user functions (Flink's `RichFunction`): `open` once per subtask before
//! the first record, `close` once at the end, so a function can set up what it needs per
//! subtask (a database connection, a client, a cache) instead of per record.
//!
//! The process-function traits ([`ProcessFunction`](crate::ProcessFunction),
//! [`KeyedProcessFunction`](crate::KeyedProcessFunction), and their co-process forms) have
//! `open(&mut self, ctx: &RuntimeContext)` and `close(&mut self)` with default bodies that
//! do nothing, so closures and existing functions are unchanged.
//!
//! As in Flink: each parallel subtask opens its own copy of the function, again on every
//! restart (the [`RuntimeContext::attempt_number`] tells attempts apart); `open` runs when
//! the subtask is built, before any record, and an error from it fails the attempt;
//! `close` runs after the last record of a job that finished (its error fails the job) and,
//! when a job fails or is cancelled, as the subtask is torn down (its error then ignored).
//!
//! ```
//! use eddy_stream::prelude::*;
//!
//! /// Tags records with the subtask that saw them; its "connection" is made once per subtask.
//! #[derive(Clone, Default)]
//! struct Tagger {
//!     connection: Option<String>,
//! }
//!
//! impl ProcessFunction<u32, String> for Tagger {
//!     fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
//!         self.connection = Some(format!("conn-{}", ctx.subtask_index()));
//!         Ok(())
//!     }
//!     fn process_element(&mut self, x: u32, ctx: &mut ProcessContext<'_, String>) {
//!         ctx.collect(format!("{x}@{}", self.connection.as_deref().unwrap()));
//!     }
//! }
//!
//! let env = StreamEnvironment::new();
//! env.set_parallelism(1);
//! let out = env.from_iter([1u32, 2]).process(Tagger::default()).collect();
//! env.execute("tagged").unwrap().wait().unwrap();
//! assert_eq!(out.take(), vec!["1@conn-0", "2@conn-0"]);
//! ```

use std::ops::{Deref, DerefMut};
use std::panic::{catch_unwind, AssertUnwindSafe};

use eddy_core::{BoxError, OperatorInfo, Result};
use eddy_runtime::graph::BuildContext;
use eddy_runtime::metrics::{Counter, MetricRegistry};
use eddy_runtime::user_metrics::MetricGroup;

/// Where a user function runs, as its `open` sees it (Flink's `RuntimeContext`).
pub struct RuntimeContext {
    info: OperatorInfo,
    attempt: usize,
    metrics: MetricRegistry,
}

impl RuntimeContext {
    pub(crate) fn of(ctx: &BuildContext) -> Self {
        RuntimeContext { info: ctx.info.clone(), attempt: ctx.attempt, metrics: ctx.metrics.clone() }
    }

    /// The operator's name.
    pub fn operator_name(&self) -> &str {
        &self.info.name
    }

    /// This subtask's index, `0..parallelism`.
    pub fn subtask_index(&self) -> usize {
        self.info.subtask
    }

    /// How many parallel subtasks the operator has.
    pub fn parallelism(&self) -> usize {
        self.info.parallelism
    }

    /// Which attempt of the job this is: 0 first, then one more per restart.
    pub fn attempt_number(&self) -> usize {
        self.attempt
    }

    /// This subtask's user metrics (Flink's `getMetricGroup()`): counters, gauges and
    /// histograms that `JobHandle::metrics` reads (in `SubtaskMetrics::user`) and the
    /// metrics endpoint exports as `eddy_user_<name>…` with the operator's labels. Take the
    /// handles in `open` and keep them; see [`eddy_runtime::user_metrics`].
    ///
    /// ```
    /// use eddy_stream::prelude::*;
    /// use eddy_runtime::metrics::Counter;
    ///
    /// #[derive(Clone, Default)]
    /// struct Alerts {
    ///     alerts: Counter,
    /// }
    ///
    /// impl ProcessFunction<u32, u32> for Alerts {
    ///     fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
    ///         self.alerts = ctx.metrics().counter("fraud_alerts");
    ///         Ok(())
    ///     }
    ///     fn process_element(&mut self, amount: u32, ctx: &mut ProcessContext<'_, u32>) {
    ///         if amount > 100 {
    ///             self.alerts.add(1);
    ///             ctx.collect(amount);
    ///         }
    ///     }
    /// }
    ///
    /// let env = StreamEnvironment::new();
    /// env.set_parallelism(1);
    /// env.from_iter([5u32, 500, 50, 700]).process(Alerts::default()).name("alerts").collect();
    /// let result = env.execute("alerts").unwrap().wait().unwrap();
    /// assert_eq!(result.metrics.operator("alerts").unwrap().user_counter("fraud_alerts"), Some(2));
    /// ```
    pub fn metrics(&self) -> MetricGroup {
        self.metrics.user_metrics(&self.info.name, self.info.subtask)
    }

    /// The counter `name` of this subtask, readable through `JobHandle::metrics` under the
    /// operator's name (for a function's own metrics: cache hits, retries).
    pub fn counter(&self, name: &str) -> Counter {
        self.metrics.counter(&self.info.name, self.info.subtask, name)
    }
}

/// A user function that was opened and is closed exactly once: by [`Opened::close`] at the
/// end of input, or when dropped (a failed or cancelled job), ignoring what close says then.
pub(crate) struct Opened<F> {
    function: F,
    close: fn(&mut F) -> std::result::Result<(), BoxError>,
    info: OperatorInfo,
    open: bool,
}

impl<F> Opened<F> {
    /// Opens `function` for the subtask `ctx` builds; an error or a panic fails the attempt.
    pub(crate) fn open(
        ctx: &BuildContext,
        mut function: F,
        open: impl FnOnce(&mut F, &RuntimeContext) -> std::result::Result<(), BoxError>,
        close: fn(&mut F) -> std::result::Result<(), BoxError>,
    ) -> Result<Self> {
        let info = ctx.info.clone();
        let runtime = RuntimeContext::of(ctx);
        info.guard(|| open(&mut function, &runtime))?.map_err(|e| info.error(format!("open failed: {e}")))?;
        Ok(Opened { function, close, info, open: true })
    }

    /// Closes the function at the end of input; an error or a panic fails the job.
    pub(crate) fn close(&mut self) -> Result<()> {
        if !std::mem::replace(&mut self.open, false) {
            return Ok(());
        }
        let (close, function) = (self.close, &mut self.function);
        self.info.guard(|| close(function))?.map_err(|e| self.info.error(format!("close failed: {e}")))
    }
}

impl<F> Deref for Opened<F> {
    type Target = F;

    fn deref(&self) -> &F {
        &self.function
    }
}

impl<F> DerefMut for Opened<F> {
    fn deref_mut(&mut self) -> &mut F {
        &mut self.function
    }
}

impl<F> Drop for Opened<F> {
    fn drop(&mut self) {
        if std::mem::replace(&mut self.open, false) {
            // The job is already failing or cancelled: what close says cannot change that.
            let (close, function) = (self.close, &mut self.function);
            let _ = catch_unwind(AssertUnwindSafe(|| close(function)));
        }
    }
}
