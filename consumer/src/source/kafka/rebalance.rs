//! The consumer's librdkafka context: forwards rebalances from librdkafka's
//! callback (on its own thread) to the group loop, which owns the partitions.

use std::sync::mpsc;

use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, TopicPartitionList};
use tracing::warn;

pub(super) struct RebalanceForwarder {
    topic: String,
    events: mpsc::Sender<Assignment>,
}

/// Partitions of the topic the group gave to, or took from, this consumer.
pub(super) enum Assignment {
    Assign(Vec<i32>),
    Revoke(Vec<i32>),
}

impl RebalanceForwarder {
    pub fn new(topic: &str, events: mpsc::Sender<Assignment>) -> Self {
        RebalanceForwarder {
            topic: topic.to_string(),
            events,
        }
    }
}

impl ClientContext for RebalanceForwarder {
    fn error(&self, error: KafkaError, reason: &str) {
        kafka_client::log_client_error(&error, reason);
    }
}

impl ConsumerContext for RebalanceForwarder {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |tpl: &TopicPartitionList| {
            tpl.elements_for_topic(&self.topic)
                .iter()
                .map(|e| e.partition())
                .collect::<Vec<_>>()
        };
        let event = match rebalance {
            Rebalance::Assign(tpl) => Assignment::Assign(partitions(tpl)),
            Rebalance::Revoke(tpl) => Assignment::Revoke(partitions(tpl)),
            Rebalance::Error(e) => {
                warn!(error = %e, "rebalance error");
                return;
            }
        };
        // The loop has ended when nobody receives: nothing to tell.
        let _ = self.events.send(event);
    }
}
