//! eddy's DataStream API: build a typed pipeline, then `execute` it.
//!
//! A job starts at a [`StreamEnvironment`]. Sources give a [`DataStream`]; transformations
//! (`map`, `filter`, `flat_map`, `process`) give new streams; `key_by` gives a
//! [`KeyedStream`] whose state is per key; `window` cuts a keyed stream into windows that an
//! aggregation folds incrementally; sinks (`print`, `collect`, `write_text`, `add_sink`) end
//! it. Event time comes from `assign_timestamps_and_watermarks`.
//!
//! ```
//! use std::time::Duration;
//! use eddy_stream::prelude::*;
//!
//! let env = StreamEnvironment::new();
//! env.set_parallelism(2);
//! let lines = vec![(0i64, "to be or"), (1_000, "not to be"), (6_000, "be")];
//! let counts = env
//!     .from_collection(lines)
//!     .assign_timestamps_and_watermarks(WatermarkStrategy::monotonous(), |l| l.0)
//!     .flat_map(|(_, text)| text.split(' ').map(String::from).collect::<Vec<_>>())
//!     .key_by(|word: &String| word.clone())
//!     .window(TumblingEventTimeWindows::of(Duration::from_secs(5)))
//!     .aggregate_with(Count, |word, window, n| (window.end, word.clone(), n))
//!     .collect();
//! env.execute("word count").unwrap().wait().unwrap();
//! let mut counts = counts.take();
//! counts.sort();
//! assert_eq!(counts[0], (5_000, "be".to_string(), 2));
//! assert_eq!(counts.last().unwrap(), &(10_000, "be".to_string(), 1));
//! ```

#[cfg(feature = "tokio")]
mod async_runtime;
pub mod broadcast_state;
pub mod connected;
pub mod data_stream;
pub mod dead_letter;
pub mod environment;
pub mod join;
mod keyed_operator;
pub mod keyed_stream;
mod keyed_table;
mod node;
pub mod ops;
pub mod processing_time_advance;
pub mod queryable_state;
pub mod repartitioned;
pub mod runtime_context;
pub mod side_output;
pub mod sink;
pub mod source;
mod state_codec;
pub mod watermark_strategy;
pub mod window;

pub use broadcast_state::{BroadcastConnectedStream, KeyedBroadcastProcessFunction};
pub use connected::{CoProcessFunction, ConnectedStreams, Either, KeyedCoProcessFunction, KeyedConnectedStreams};
pub use data_stream::DataStream;
pub use dead_letter::DeadLetter;
pub use environment::StreamEnvironment;
pub use join::{IntervalJoin, JoinedStreams};
pub use keyed_stream::{Key, KeyedStream};
#[cfg(feature = "tokio")]
pub use ops::async_queue::ResultOrder;
pub use ops::keyed_process::{KeyedContext, KeyedProcessFunction};
pub use ops::process::{ProcessContext, ProcessFunction};
pub use processing_time_advance::ProcessingTimeAdvance;
pub use repartitioned::Repartitioned;
pub use runtime_context::RuntimeContext;
pub use side_output::OutputTag;
pub use sink::{Collected, Sink, StreamSink};
pub use watermark_strategy::{BoundedOutOfOrderness, NoWatermarks, Punctuated, WatermarkGenerator, WatermarkStrategy};

/// What can flow through a stream: owned, cloneable (for fan-out), sendable between threads.
pub trait Data: Clone + Send + 'static {}

impl<T: Clone + Send + 'static> Data for T {}

/// Everything a job definition needs.
pub mod prelude {
    pub use crate::window::{
        AggregateFunction, ContinuousEventTimeTrigger, Count, CountTrigger, EventTimeSessionWindows, EventTimeTrigger,
        GlobalWindows, ProcessingTimeSessionWindows, ProcessingTimeTrigger, PurgingTrigger, SlidingEventTimeWindows,
        SlidingProcessingTimeWindows, TimeWindow, Trigger, TriggerContext, TriggerResult, TumblingEventTimeWindows,
        TumblingProcessingTimeWindows, WindowAssigner,
    };
    pub use crate::window::{Elements, TopN};
    #[cfg(feature = "tokio")]
    pub use crate::ResultOrder;
    pub use crate::{
        CoProcessFunction, Collected, Data, DataStream, DeadLetter, Either, Key, KeyedBroadcastProcessFunction,
        KeyedCoProcessFunction, KeyedContext, KeyedProcessFunction, KeyedStream, OutputTag, ProcessContext,
        ProcessFunction, Punctuated, Repartitioned, RuntimeContext, Sink, StreamEnvironment, StreamSink,
        WatermarkGenerator, WatermarkStrategy,
    };
    pub use eddy_core::{
        BoxError, Error, RawRecord, ReaderContext, Record, Result, Source, SourceOutput, SourcePoll, SourceReader,
        SplitSource, Timestamp,
    };
    pub use eddy_runtime::{
        CheckpointConfig, CheckpointingMode, JobCompletion, JobHandle, JobMetrics, JobResult, JobStatus,
        RestartStrategy,
    };
    pub use eddy_state::{
        ListStateDescriptor, MapStateDescriptor, QueryError, QueryableState, StateTtlConfig, ValueStateDescriptor,
    };
}
