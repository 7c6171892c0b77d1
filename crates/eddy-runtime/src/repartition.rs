//! The mark on an edge that a distributed job may cut: a stable name and a codec for its
//! records (Kafka Streams' `Repartitioned.as(name).with(serdes)`).
//!
//! One-process runs never look at it. A distributed plan
//! ([`DistributedPlan`](crate::distributed_plan::DistributedPlan)) refuses to cut a
//! `key_by` or `rebalance` edge without one, and names the edge's repartition topic after
//! it: `<application id>-<name>-repartition`. The name is part of the application's identity
//! (its topic, and the prefix of the state behind it), so it must stay the same for the life
//! of the application id, as Kafka Streams' `withName` must.

use std::sync::Arc;

use crate::codec::{ErasedRecordCodec, RecordCodec};

/// An edge's repartition mark: the name of its topic and how its records become bytes.
#[derive(Clone)]
pub struct Repartition {
    /// The stable name; the topic is `<application id>-<name>-repartition`.
    pub name: String,
    /// The edge's records as bytes.
    pub codec: Arc<dyn ErasedRecordCodec>,
}

impl Repartition {
    /// A mark named `name` whose records `codec` encodes.
    pub fn new<T: 'static>(name: impl Into<String>, codec: RecordCodec<T>) -> Self {
        Repartition { name: name.into(), codec: Arc::new(codec) }
    }

    /// The codec, typed: `None` when the edge carries records of another type than `T`.
    pub fn codec_of<T: 'static>(&self) -> Option<&RecordCodec<T>> {
        self.codec.as_any().downcast_ref()
    }

    /// The repartition topic of this mark in the application `application_id`.
    pub fn topic(&self, application_id: &str) -> String {
        format!("{application_id}-{}-repartition", self.name)
    }
}

impl std::fmt::Debug for Repartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repartition").field("name", &self.name).field("records", &self.codec.record_type()).finish()
    }
}
