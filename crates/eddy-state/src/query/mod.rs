//! Queryable state: reading a keyed operator's state by key from outside the job while it
//! runs (what Kafka Streams calls interactive queries; Flink had queryable state and
//! deprecated it). A service answers "what is account X's balance" from the job's own
//! state, without a database in between.
//!
//! **How a read travels.** Every subtask of a keyed operator with a `uid` registers an inbox
//! in the job's [`QueryRegistry`] under that uid. A [`QueryableState`] turns a key into its
//! key group and so into the subtask that owns it (the same routing the records take), and
//! sends the request to that subtask's inbox. The subtask answers between two batches of
//! records (and on its processing-time ticks when the stream is quiet), on its own thread,
//! from its own store: nothing is locked on the record path, the stream never stops, and a
//! read sees a key's state as it was after some batch, never half of one (consistent per
//! key). Checkpoints run on the same thread, so reads during a checkpoint see the same.
//!
//! **What it answers.** Value, reducing and aggregating states, by key
//! ([`QueryableState::get`]) or over all keys or a key range ([`QueryableState::scan`],
//! [`QueryableState::scan_range`]); a scan goes subtask by subtask in chunks, each chunk
//! consistent, the whole not one snapshot (as Kafka Streams' range queries over several
//! partitions). Reads never refresh a TTL and never return expired values.
//!
//! **When it cannot.** A restarting job has no subtask to ask until its new attempt is
//! built; a finished job has none at all: reads then fail with
//! [`QueryError::Unavailable`], and a retry after the restart succeeds.

mod client;
mod error;
mod registry;
mod reply;
mod request;

pub use client::QueryableState;
pub use error::QueryError;
pub use registry::{QueryInbox, QueryRegistry};
pub use request::StateRequest;
