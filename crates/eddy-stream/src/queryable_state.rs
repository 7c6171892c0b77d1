//! Queryable state from the operator's side: a keyed operator with a `uid` registers its
//! subtask's state store with the job, and answers reads between its batches.
//!
//! Give the operator a uid and read its state through the job's handle while it runs:
//!
//! ```
//! use eddy_stream::prelude::*;
//!
//! let env = StreamEnvironment::new();
//! let totals = ValueStateDescriptor::<u64>::new("total");
//! let (sender, receiver) = crossbeam_channel::bounded(16);
//! env.from_channel(receiver)
//!     .key_by(|sale: &(String, u64)| sale.0.clone())
//!     .process(move |sale: &(String, u64), ctx: &mut KeyedContext<'_, String, ()>| {
//!         let total = ctx.state().value_state(&totals)?;
//!         total.update(total.value()?.unwrap_or(0) + sale.1)?;
//!         Ok(())
//!     })
//!     .uid("totals");
//! let job = env.execute("sales").unwrap();
//! for sale in [("pears", 3), ("figs", 2), ("pears", 4)] {
//!     sender.send((sale.0.to_string(), sale.1)).unwrap();
//! }
//! let totals = job.state::<String, u64>("totals", "total").unwrap();
//! // Reads see the state as the subtask has it now; poll until the sales have been counted.
//! while totals.get(&"pears".to_string()).unwrap() != Some(7) {
//!     std::thread::sleep(std::time::Duration::from_millis(5));
//! }
//! assert_eq!(totals.get(&"kiwis".to_string()).unwrap(), None);
//! drop(sender);
//! job.wait().unwrap();
//! ```

use eddy_runtime::graph::BuildContext;
use eddy_state::{KeyedStateStore, StateBackend};

/// `store`, registered for reads under the operator's uid (an operator without one cannot be
/// addressed, so it stays private).
pub(crate) fn queryable<B: StateBackend>(ctx: &BuildContext, store: KeyedStateStore<B>) -> KeyedStateStore<B> {
    let Some(uid) = &ctx.uid else { return store };
    let info = &ctx.info;
    store.with_queries(ctx.queries.register(uid, info.subtask, info.parallelism, ctx.config.max_parallelism))
}
