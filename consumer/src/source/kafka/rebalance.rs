//! The consumer's librdkafka context: forwards rebalances from librdkafka's
//! callback (on its own thread) to the group loop, which owns the partitions,
//! and keeps the high watermarks of librdkafka's statistics for the lag.

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, TopicPartitionList};
use tracing::warn;

pub(super) struct RebalanceForwarder {
    topic: String,
    events: mpsc::Sender<Assignment>,
    high_watermarks: HighWatermarks,
}

/// The high watermark of each partition of the topic, as of librdkafka's
/// latest statistics.
pub(super) type HighWatermarks = Arc<Mutex<BTreeMap<i32, i64>>>;

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
            high_watermarks: HighWatermarks::default(),
        }
    }
}

impl RebalanceForwarder {
    pub fn high_watermarks(&self) -> HighWatermarks {
        self.high_watermarks.clone()
    }
}

impl ClientContext for RebalanceForwarder {
    fn error(&self, error: KafkaError, reason: &str) {
        kafka_client::log_client_error(&error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        let mut high = self
            .high_watermarks
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // -1: librdkafka has not fetched the partition yet.
        for (p, partition) in &topic.partitions {
            if *p >= 0 && partition.hi_offset >= 0 {
                high.insert(*p, partition.hi_offset);
            }
        }
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
