//! What eddy's Kafka clients share: their configuration, and a context that remembers the
//! errors librdkafka reports in the background, so a source or sink can fail with a clear
//! message instead of waiting forever for brokers that are gone or refuse it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::statistics::Statistics;

/// The librdkafka settings a connector was built with: bootstrap servers plus any property.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    pub(crate) brokers: String,
    pub(crate) properties: Vec<(String, String)>,
}

impl Settings {
    /// A librdkafka configuration with the brokers, `defaults` (unless the user set them), and
    /// the user's properties.
    pub(crate) fn config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in defaults {
            if !self.properties.iter().any(|(k, _)| k == key) {
                config.set(*key, *value);
            }
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config.set_log_level(RDKafkaLogLevel::Warning);
        config
    }
}

/// The last error librdkafka reported for a client, and since when brokers are unreachable.
#[derive(Debug, Default)]
pub(crate) struct Health {
    state: Mutex<HealthState>,
    /// Records a producer could not deliver.
    pub(crate) failed_deliveries: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Default)]
struct HealthState {
    /// Since when every broker is down (cleared by any successful exchange).
    down_since: Option<Instant>,
    /// An error that no retry will fix (authentication, a fatal producer error).
    fatal: Option<String>,
    last: Option<String>,
}

impl Health {
    fn record(&self, error: &RdError, reason: &str) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let message = format!("{error} ({reason})");
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                state.down_since.get_or_insert_with(Instant::now);
            }
            Some(
                RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::Fatal,
            ) => state.fatal = Some(message.clone()),
            _ => {}
        }
        state.last = Some(message);
    }

    /// Brokers answered: they are up.
    pub(crate) fn up(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).down_since = None;
    }

    /// An error to fail with: a fatal one, or brokers down for longer than `patience`.
    pub(crate) fn failure(&self, patience: Duration) -> Option<String> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fatal) = &state.fatal {
            return Some(fatal.clone());
        }
        let down = state.down_since.filter(|since| since.elapsed() >= patience)?;
        Some(format!(
            "no broker reachable for {:.0?} (last error: {})",
            down.elapsed(),
            state.last.as_deref().unwrap_or("none")
        ))
    }

    /// The last error reported, for messages.
    pub(crate) fn last(&self) -> Option<String> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).last.clone()
    }
}

/// The context of every eddy Kafka client: logs through `tracing`, remembers errors, and
/// keeps each partition's end offset from librdkafka's statistics (for lag, without asking
/// the brokers).
#[derive(Clone, Default)]
pub(crate) struct Context {
    pub(crate) health: Arc<Health>,
    /// `(topic, partition)` → the offset a reader can read up to (the last stable offset, or
    /// the high watermark).
    pub(crate) ends: Arc<Mutex<HashMap<(String, i32), i64>>>,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::warn!(target: "librdkafka", "{facility} {message}")
            }
            _ => tracing::debug!(target: "librdkafka", "{facility} {message}"),
        }
    }

    fn stats(&self, statistics: Statistics) {
        // A broker that is up ends an outage, even when no record has flowed since.
        if statistics.brokers.values().any(|b| b.state == "UP" && b.nodeid >= 0) {
            self.health.up();
        }
        let mut ends = self.ends.lock().unwrap_or_else(|e| e.into_inner());
        for (topic, stats) in statistics.topics {
            for (partition, p) in stats.partitions.into_iter().filter(|(partition, _)| *partition >= 0) {
                let end = if p.ls_offset >= 0 { p.ls_offset } else { p.hi_offset };
                if end >= 0 {
                    ends.insert((topic.clone(), partition), end);
                }
            }
        }
    }

    fn error(&self, error: RdError, reason: &str) {
        tracing::debug!(target: "librdkafka", "{error}: {reason}");
        self.health.record(&error, reason);
    }
}

impl ConsumerContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.health.up(),
            Err((error, _)) => {
                self.health.failed_deliveries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.health.record(error, "delivery failed");
            }
        }
    }
}
