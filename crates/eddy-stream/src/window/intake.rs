//! Taking records into a window stage one at a time: event time or arrival time, and what
//! happens to records the stage finds late (counted, or sent to the late-data side output).
//! Shared by the session and triggered window operators.

use eddy_core::time::NO_TIMESTAMP;
use eddy_core::{Error, OperatorInfo, Record, Result, Timestamp};

use crate::side_output::SideOutputs;
use crate::window::operator::Lateness;
use crate::Data;

/// A window stage that adds records one at a time.
pub(crate) trait TakesRecords<T> {
    /// Adds a record at `timestamp`; `false` if it was late and not added.
    fn add(&mut self, value: T, timestamp: Timestamp) -> Result<bool>;
    /// Whether windows follow event time (else arrival time).
    fn event_time(&self) -> bool;
    /// The stage's lateness settings, side outputs and name.
    fn intake_parts(&mut self) -> (&Lateness<T>, &mut SideOutputs, &OperatorInfo);
}

/// The error for an event-time window given a record without a timestamp, saying what to do.
pub(crate) fn missing_timestamp(info: &OperatorInfo) -> Error {
    info.error(
        "an event-time window received a record without a timestamp; \
         call assign_timestamps_and_watermarks before key_by/window, or use a processing-time window",
    )
}

/// Adds a batch to `stage` (records get the arrival time `now` in processing time); returns
/// how many were late. Late records go to the late-data side output when there is one.
pub(crate) fn add_records<T: Data, S: TakesRecords<T>>(
    stage: &mut S,
    batch: &mut Vec<Record<T>>,
    now: Timestamp,
) -> Result<u64> {
    let event_time = stage.event_time();
    let mut dropped = 0;
    for record in batch.drain(..) {
        let (lateness, _, info) = stage.intake_parts();
        if event_time && record.timestamp == NO_TIMESTAMP {
            return Err(missing_timestamp(info));
        }
        let timestamp = if event_time { record.timestamp } else { now };
        let late_copy = lateness.side_output.is_some().then(|| record.value.clone());
        if !stage.add(record.value, timestamp)? {
            dropped += 1;
            let (lateness, side, _) = stage.intake_parts();
            if let (Some(tag), Some(value)) = (&lateness.side_output, late_copy) {
                side.emit(tag, value, timestamp);
            }
        }
    }
    Ok(dropped)
}
