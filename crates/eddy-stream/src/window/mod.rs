//! Windows on a keyed stream: assigners decide which windows a record belongs to, an
//! aggregate function folds a window's records incrementally, and the window operator fires
//! a window when event time (the watermark) or processing time passes its end.
//!
//! The window stages are handlers in the keyed-operator shell (`keyed_operator/`), with
//! their contents in keyed state: `operator.rs` (tumbling and sliding windows, fired a
//! window at a time), `session.rs` (merging windows, fired by timers per key),
//! `triggered.rs` (a custom trigger decides). Event-time windows without a trigger run in
//! two stages: a pre-aggregation (`pre_aggregate.rs`) before the shuffle folds each upstream
//! subtask's records into partial accumulators, which the keyed stage merges; for
//! overlapping sliding windows the keyed stage keeps each key's panes and slides over them
//! (`sliding.rs`, `pane_queue.rs`).

pub mod aggregate;
pub mod assigner;
mod fold;
mod lateness;
mod open_windows;
mod operator;
mod pane_queue;
pub mod partial;
mod pre_aggregate;
pub mod process_window;
mod record_time;
mod session;
mod sliding;
pub mod time_window;
mod top_n;
pub mod trigger;
mod triggered;
pub mod windowed_stream;

pub use aggregate::{AggregateFunction, Count, ReduceAggregate};
pub use assigner::{
    EventTimeSessionWindows, GlobalWindows, ProcessingTimeSessionWindows, SlidingEventTimeWindows,
    SlidingProcessingTimeWindows, TumblingEventTimeWindows, TumblingProcessingTimeWindows, WindowAssigner,
};
pub use partial::Partial;
pub use process_window::Elements;
pub use time_window::TimeWindow;
pub use top_n::TopN;
pub use trigger::{
    ContinuousEventTimeTrigger, CountTrigger, DefaultTrigger, EventTimeTrigger, ProcessingTimeTrigger, PurgingTrigger,
    Trigger, TriggerContext, TriggerResult,
};
pub use windowed_stream::WindowedStream;
