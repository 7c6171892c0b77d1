//! `sink_to_elasticsearch`: the method that ends a stream in Elasticsearch.

use eddy_stream::{Data, DataStream};

use crate::writer::BulkWriter;
use crate::{ElasticsearchSink, FailedDocument};

/// Sends a stream to Elasticsearch.
pub trait ElasticsearchSinkExt<T> {
    /// Writes every record through `sink` and returns its dead letters: the actions
    /// Elasticsearch refused for good (mapping errors, …) and records whose action could not
    /// be built, with the reason. Route them to a sink, or they are only counted
    /// (`dead_letters`). Set the sink's parallelism and name on the returned stream.
    ///
    /// A completed checkpoint means every record before it was acknowledged by the cluster
    /// (at-least-once); with ids derived from the records, replays overwrite, and the index
    /// holds each result once. Without checkpointing everything is sent by the end of input.
    #[must_use = "the stream of failed documents: route it to a sink, or failures are only counted"]
    fn sink_to_elasticsearch(&self, sink: ElasticsearchSink<T>) -> DataStream<FailedDocument>;
}

impl<T: Data> ElasticsearchSinkExt<T> for DataStream<T> {
    fn sink_to_elasticsearch(&self, sink: ElasticsearchSink<T>) -> DataStream<FailedDocument> {
        self.transform("Sink: Elasticsearch", move |ctx, out| Ok(Box::new(BulkWriter::new(sink.clone(), ctx, out))))
    }
}
