//! Kafka admin requests (creating repartition topics, deleting their consumed records):
//! [`admin`].

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

use crate::error::{ClusterError, Result};

/// An admin client of `brokers`, and the runtime its requests' futures run on (the member
/// and the process start code are not async).
pub(crate) fn admin(brokers: &str) -> Result<(AdminClient<DefaultClientContext>, tokio::runtime::Runtime)> {
    let admin = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(ClusterError::kafka("creating an admin client"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ClusterError::Config(format!("cannot start an I/O runtime: {e}")))?;
    Ok((admin, runtime))
}
