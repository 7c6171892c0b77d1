//! Windows on a keyed stream: assigners decide which windows a record belongs to, an
//! aggregate function folds a window's records incrementally, and the window operator fires
//! a window when event time (the watermark) or processing time passes its end.

pub mod aggregate;
pub mod assigner;
mod fold;
mod intake;
mod open_windows;
mod operator;
pub mod partial;
mod session;
pub mod time_window;
pub mod trigger;
mod triggered;
pub mod windowed_stream;

pub use aggregate::{AggregateFunction, Count, ReduceAggregate};
pub use assigner::{
    EventTimeSessionWindows, GlobalWindows, ProcessingTimeSessionWindows, SlidingEventTimeWindows,
    SlidingProcessingTimeWindows, TumblingEventTimeWindows, TumblingProcessingTimeWindows, WindowAssigner,
};
pub use partial::Partial;
pub use time_window::TimeWindow;
pub use trigger::{
    ContinuousEventTimeTrigger, CountTrigger, DefaultTrigger, EventTimeTrigger, ProcessingTimeTrigger, PurgingTrigger,
    Trigger, TriggerContext, TriggerResult,
};
pub use windowed_stream::WindowedStream;
