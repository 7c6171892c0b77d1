//! What a job graph's tasks tell each other through a repartition topic besides records: a
//! producing task's watermark, and the end of its input.
//!
//! A task that writes a repartition topic writes its records to the partition of each
//! record's key group (or any, for a rebalance), but its watermark and the end of its input
//! to *every* partition: each reading task keeps the newest watermark of every producing
//! task and goes on at the minimum, as a Flink operator does with the watermarks of its input
//! channels. The records' values are the cut edge's codec's bytes, which any byte string may
//! be; so a control message is told apart not by its value but by a Kafka record header,
//! [`CONTROL_HEADER`], whose value is the bincode of a [`Control`]. The producer is the
//! writing task's partition.

use serde::{Deserialize, Serialize};

use crate::error::{ClusterError, Result};

/// The header that marks a record of a repartition topic as a [`Control`] message.
pub const CONTROL_HEADER: &str = "eddy-control";

/// A producing task's message to every partition of a repartition topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// Task `producer` has written every record up to event time `watermark`.
    Watermark {
        /// The producing task's partition.
        producer: u32,
        /// Its watermark, ms since the epoch.
        watermark: i64,
    },
    /// Task `producer`'s input has ended (a bounded run): it writes nothing more.
    End {
        /// The producing task's partition.
        producer: u32,
    },
}

impl Control {
    /// The header value.
    pub fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, bincode::config::standard()).expect("a control message serializes")
    }

    /// Reads a header value written by [`Control::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .ok()
            .filter(|(_, read)| *read == bytes.len())
            .map(|(control, _)| control)
            .ok_or_else(|| {
                ClusterError::Config(format!(
                    "a repartition record's {CONTROL_HEADER} header ({} bytes) does not decode: was the topic written by another version of the job? Use a new --application-id",
                    bytes.len()
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_round_trip_and_garbage_is_refused() {
        for control in [Control::Watermark { producer: 3, watermark: -5 }, Control::End { producer: 11 }] {
            assert_eq!(Control::decode(&control.encode()).unwrap(), control);
        }
        assert!(Control::decode(&[0xff, 0xff]).is_err());
        let mut long = Control::End { producer: 1 }.encode();
        long.push(0);
        assert!(Control::decode(&long).is_err());
    }
}
