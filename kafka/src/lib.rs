//! The librdkafka clients of all three binaries are built here: the brokers,
//! the binary's own settings, then the user's pass-through settings
//! (`KAFKA_SETTING_*`, `--kafka-setting`), which win. Also the one policy for
//! librdkafka's error callback and the one check that the topic exists.

use std::time::Duration;

use anyhow::bail;
use rdkafka::client::Client;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientContext;

use lake::config::KafkaArgs;

/// A client configuration for `args.kafka_bootstrap_servers` with the
/// binary's `settings`, then the user's extra settings, applied last so they win.
pub fn client_config(args: &KafkaArgs, settings: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &args.kafka_bootstrap_servers);
    for (key, value) in settings {
        config.set(*key, *value);
    }
    for (key, value) in args.extra_settings() {
        config.set(key, value);
    }
    config
}

/// librdkafka repeats "all brokers down" on every reconnect attempt, hundreds
/// of lines while a broker is away; the transport failure before it names the
/// broker, and the binaries say themselves when they give up. So that one is
/// logged at debug, every other client error as a warning.
pub fn log_client_error(error: &KafkaError, reason: &str) {
    if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
        tracing::debug!(%error, reason, "Kafka client error");
    } else {
        tracing::warn!(%error, reason, "Kafka client error");
    }
}

/// The context of clients that need nothing but [`log_client_error`].
#[derive(Clone, Copy, Default)]
pub struct QuietContext;

impl ClientContext for QuietContext {
    fn error(&self, error: KafkaError, reason: &str) {
        log_client_error(&error, reason);
    }
}

impl ConsumerContext for QuietContext {}

/// For one-shot reports (`inspector status`), which print the outcome in
/// one line instead of librdkafka's log of every failed connection.
#[derive(Clone, Copy, Default)]
pub struct SilentContext;

impl ClientContext for SilentContext {
    fn log(&self, _: RDKafkaLogLevel, _: &str, _: &str) {}
    fn error(&self, _: KafkaError, _: &str) {}
}

impl ConsumerContext for SilentContext {}

/// The partition ids of `args.kafka_topic`. Fails with one line naming the
/// setting when the brokers do not answer, the topic does not exist, or it
/// has no partitions: a producer would otherwise wait for delivery timeouts,
/// and a subscribed consumer for the topic forever, without a word. Blocks
/// for up to `timeout`.
pub fn topic_partitions<C: ClientContext>(
    client: &Client<C>,
    args: &KafkaArgs,
    timeout: Duration,
) -> anyhow::Result<Vec<i32>> {
    let topic = &args.kafka_topic;
    let servers = &args.kafka_bootstrap_servers;
    let metadata = client.fetch_metadata(Some(topic), timeout).map_err(|e| {
        anyhow::anyhow!("Kafka at {servers} (KAFKA_BOOTSTRAP_SERVERS) is unreachable: {e}")
    })?;
    let missing =
        || anyhow::anyhow!("Kafka topic {topic} (KAFKA_TOPIC) does not exist at {servers}");
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(missing());
    };
    match found.error().map(RDKafkaErrorCode::from) {
        None => {}
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => return Err(missing()),
        Some(code) => {
            bail!("Kafka topic {topic} (KAFKA_TOPIC) at {servers} is not available: {code}")
        }
    }
    let ids: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    if ids.is_empty() {
        bail!("Kafka topic {topic} (KAFKA_TOPIC) at {servers} has no partitions");
    }
    Ok(ids)
}
