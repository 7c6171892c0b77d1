//! The Nexmark event generator (the `nexmark` crate) as a replayable, checkpointable eddy
//! source, with event time from each event's `date_time`.
//!
//! Nexmark events are a pure function of their position: event `i` of a configuration is
//! always the same person, auction or bid with the same `date_time`. So the source splits the
//! sequence by stride, as eddy's own generator does: on a fresh start subtask `s` of `p`
//! generates the events `s, s + p, s + 2p, …` (`EventGenerator::with_offset(s).with_step(p)`),
//! and its position in a checkpoint is just the next offset and the step. After a restore at
//! another parallelism the recorded strides are dealt out round robin, so a subtask may own
//! several; each stride is its own split with its own watermark generator, so one stride far
//! ahead cannot push event time past the records another still holds.
//!
//! Event time is bounded out of order by [`OUT_OF_ORDERNESS`], 4 s, the watermark every
//! published Nexmark setup uses (`WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND` in
//! the Flink and RisingWave suites). With the generator's default `out_of_order_group_size`
//! of 1 a stride is in order, so nothing is late; a configuration that shuffles groups of
//! events stays within the bound as long as a group spans less than 4 s of event time.
//!
//! This module lives with the example, not in an eddy crate: the `nexmark` crate is a
//! dev-dependency of the facade only, so no user of eddy compiles it.

use std::time::Duration;

use eddy::core::{BoxError, ReaderContext, SourceOutput, SourcePoll, SourceReader, SplitId, SplitSource};
use eddy::prelude::*;
use eddy::stream::source::StrideSplit;
use eddy::stream::watermark_strategy::BoundedOutOfOrderness;
use nexmark::config::NexmarkConfig;
use nexmark::event::{Bid, Event};
use nexmark::EventGenerator;

use crate::rows::{AuctionRow, PersonRow};

/// How far out of order Nexmark's event time may be: the watermark trails the highest
/// `date_time` seen by this much.
pub const OUT_OF_ORDERNESS: Duration = Duration::from_secs(4);

/// The `date_time` of the first event unless a run chooses another (2015-07-15 00:00:00 UTC,
/// a multiple of every window size the queries use). The crate's default is the wall clock,
/// which would make every run's results, and so its checksum, different.
pub const BASE_TIME_MS: u64 = 1_436_918_400_000;

/// The crate's default configuration (10,000 events/s of event time, persons, auctions and
/// bids in the ratio 1:3:46), starting at [`BASE_TIME_MS`].
pub fn default_config() -> NexmarkConfig {
    NexmarkConfig { base_time: BASE_TIME_MS, ..NexmarkConfig::default() }
}

/// The first `events` Nexmark events of `config`, split by stride over the subtasks.
pub struct NexmarkSource {
    config: NexmarkConfig,
    events: u64,
}

impl NexmarkSource {
    /// Events `0..events` of `config`.
    pub fn new(config: NexmarkConfig, events: u64) -> Self {
        NexmarkSource { config, events }
    }

    /// The stream of events, each at its `date_time`, with Nexmark's bounded out-of-orderness.
    pub fn stream(self, env: &StreamEnvironment) -> DataStream<Event> {
        env.from_source(self, strategy(), "Nexmark").uid("nexmark-source")
    }
}

/// Nexmark's watermark: the highest `date_time` seen, less [`OUT_OF_ORDERNESS`].
pub fn strategy() -> WatermarkStrategy<BoundedOutOfOrderness> {
    WatermarkStrategy::bounded_out_of_orderness(OUT_OF_ORDERNESS)
}

impl SplitSource<Event> for NexmarkSource {
    type Reader = NexmarkReader;

    fn open(&self, context: &ReaderContext) -> Result<NexmarkReader, BoxError> {
        let strides = match &context.restored {
            None => vec![StrideSplit { next: context.subtask as u64, step: context.parallelism.max(1) as u64 }],
            Some(items) => items.iter().map(|item| decode(item)).collect::<Result<_, _>>()?,
        };
        let strides = strides
            .into_iter()
            .map(|s| Stride {
                generator: EventGenerator::new(self.config.clone()).with_offset(s.next).with_step(s.step),
                step: s.step,
                split: None,
            })
            .collect();
        Ok(NexmarkReader { strides, events: self.events })
    }
}

/// A recorded stride (the same encoding as eddy's generator source).
fn decode(item: &[u8]) -> Result<StrideSplit, BoxError> {
    let (split, _) = bincode::serde::decode_from_slice(item, bincode::config::standard())
        .map_err(|e| format!("a recorded Nexmark split does not decode: {e}"))?;
    Ok(split)
}

/// One stride of the event sequence: a generator positioned at its next event.
struct Stride {
    generator: EventGenerator,
    step: u64,
    /// Its split, once registered with the output (on the first poll).
    split: Option<SplitId>,
}

/// One subtask's reader: its strides, generated in order of offset.
pub struct NexmarkReader {
    strides: Vec<Stride>,
    events: u64,
}

impl SourceReader<Event> for NexmarkReader {
    fn poll(&mut self, out: &mut SourceOutput<Event>, max: usize) -> Result<SourcePoll, BoxError> {
        for stride in self.strides.iter_mut().filter(|s| s.split.is_none()) {
            let split = out.add_split(format!("nexmark-{}+{}", stride.generator.offset(), stride.step));
            stride.split = Some(split);
            if stride.generator.offset() >= self.events {
                out.finish_split(split);
            }
        }
        for _ in 0..max {
            // The stride furthest behind goes first, so the subtask's output is in event order.
            let Some(stride) = self
                .strides
                .iter_mut()
                .filter(|s| s.generator.offset() < self.events)
                .min_by_key(|s| s.generator.offset())
            else {
                return Ok(SourcePoll::Done);
            };
            let event = stride.generator.next().expect("the Nexmark generator never ends");
            let split = stride.split.expect("registered above");
            let date_time = event.timestamp() as i64;
            out.collect_in(split, event, date_time);
            if stride.generator.offset() >= self.events {
                out.finish_split(split);
            }
        }
        Ok(SourcePoll::Ready)
    }

    fn snapshot_splits(&mut self, _checkpoint: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        let encode = |s: &Stride| {
            let split = StrideSplit { next: s.generator.offset(), step: s.step };
            bincode::serde::encode_to_vec(split, bincode::config::standard())
        };
        Ok(Some(self.strides.iter().map(encode).collect::<Result<_, _>>()?))
    }
}

/// The bids among `events`.
pub fn bids(events: &DataStream<Event>) -> DataStream<Bid> {
    events.flat_map(|event| match event {
        Event::Bid(bid) => Some(bid),
        _ => None,
    })
}

/// The persons among `events`, as rows.
pub fn persons(events: &DataStream<Event>) -> DataStream<PersonRow> {
    events.flat_map(|event| match event {
        Event::Person(person) => Some(PersonRow::from(person)),
        _ => None,
    })
}

/// The auctions among `events`, as rows.
pub fn auctions(events: &DataStream<Event>) -> DataStream<AuctionRow> {
    events.flat_map(|event| match event {
        Event::Auction(auction) => Some(AuctionRow::from(auction)),
        _ => None,
    })
}
