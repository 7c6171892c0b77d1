//! A sink subtask without transactions: at-least-once (flush at every checkpoint, fail it on
//! a delivery error) or fire-and-forget.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use eddy_core::{BoxError, Timestamp};
use eddy_stream::Sink;
use rdkafka::producer::{Producer, ThreadedProducer};

use crate::client::Context;
use crate::error::KafkaError;
use crate::sink_spec::{DeliveryGuarantee, SinkSpec};

/// How long brokers may stay unreachable before a sink fails.
const BROKER_PATIENCE: Duration = Duration::from_secs(60);

/// One sink subtask's producer.
pub struct KafkaWriter<T> {
    spec: Arc<SinkSpec<T>>,
    producer: ThreadedProducer<Context>,
    context: Context,
    /// Failed deliveries already reported.
    failures_seen: u64,
}

impl<T: 'static> KafkaWriter<T> {
    pub(crate) fn open(spec: Arc<SinkSpec<T>>) -> Result<Self, KafkaError> {
        let acks = if spec.guarantee == DeliveryGuarantee::None { "1" } else { "all" };
        let (producer, context) = spec.producer(&[("acks", acks)])?;
        Ok(KafkaWriter { spec, producer, context, failures_seen: 0 })
    }

    fn check(&mut self) -> Result<(), BoxError> {
        if let Some(problem) = self.context.health.failure(BROKER_PATIENCE) {
            return Err(format!("Kafka sink at {}: {problem}", self.spec.settings.brokers).into());
        }
        let failures = self.context.health.failed_deliveries.load(Ordering::Relaxed);
        if failures > self.failures_seen && self.spec.guarantee == DeliveryGuarantee::AtLeastOnce {
            let last = self.context.health.last().unwrap_or_default();
            return Err(format!(
                "Kafka sink at {}: {} record(s) could not be delivered (last: {last})",
                self.spec.settings.brokers,
                failures - self.failures_seen
            )
            .into());
        }
        self.failures_seen = failures;
        Ok(())
    }
}

impl<T: Send + 'static> Sink<T> for KafkaWriter<T> {
    fn write(&mut self, value: T, timestamp: Timestamp) -> Result<(), BoxError> {
        let record = self.spec.record(&value, timestamp)?;
        self.spec.send(&self.producer, &record)
    }

    /// At least once: waits until every record sent so far is acknowledged (called at each
    /// checkpoint, regularly, and at the end). Fire-and-forget only checks for failures.
    fn flush(&mut self) -> Result<(), BoxError> {
        if self.spec.guarantee == DeliveryGuarantee::AtLeastOnce {
            self.producer.flush(self.spec.timeout).map_err(|e| {
                format!(
                    "Kafka sink at {}: records not acknowledged within {:?}: {e}",
                    self.spec.settings.brokers, self.spec.timeout
                )
            })?;
        }
        self.check()
    }
}

impl<T> Drop for KafkaWriter<T> {
    fn drop(&mut self) {
        // Fire-and-forget still hands over what it has when the job ends.
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}
