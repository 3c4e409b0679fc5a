//! `--once`: the bounded drain. Every partition is assigned by hand at its
//! checkpoint (no group membership, so no rebalance can take one away), and
//! the run ends once each has reached the high watermark seen at start.

use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use tracing::error;

use super::replay::load_partition;
use super::{KafkaConsumer, Mode, Partitions, METADATA_TIMEOUT};
use crate::context::Context;

/// With no message for this long, a partition whose position reached its
/// end is done even if no message at the end arrived (transaction markers).
const QUIET_BEFORE_DONE: Duration = Duration::from_secs(2);

pub(super) struct Bounded {
    topic: String,
    /// Partitions another consumer took over: the run fails naming them.
    lost: Vec<i32>,
}

impl Bounded {
    /// Loads every partition, assigns those with messages left, and returns
    /// the mode with the partitions to drive.
    pub async fn start(
        ctx: &Context,
        consumer: &KafkaConsumer,
        partition_ids: Vec<i32>,
    ) -> anyhow::Result<(Bounded, Partitions)> {
        let topic = ctx.kafka.kafka_topic.clone();
        let mut partitions = Partitions::new();
        let mut tpl = TopicPartitionList::new();
        for p in partition_ids {
            let (low, high) = consumer
                .fetch_watermarks(&topic, p, METADATA_TIMEOUT)
                .with_context(|| format!("reading watermarks of topic {topic} partition {p}"))?;
            let mut part = load_partition(ctx, p).await?;
            part.end = Some(high);
            let mut start = part.next_offset();
            if start < low {
                error!(
                    partition = p,
                    from = start,
                    to = low,
                    "messages were deleted by retention before they were consumed"
                );
                start = low;
                part.resume = super::partition::Resume::AtCheckpoint {
                    offset: low,
                    seeks: 0,
                };
            }
            if start < high {
                tpl.add_partition_offset(&topic, p, Offset::Offset(start))?;
            } else {
                // Nothing left to read, even when retention removed the whole gap.
                part.at_end = true;
            }
            partitions.insert(p, part);
        }
        if tpl.count() > 0 {
            consumer.assign(&tpl).context("assigning partitions")?;
        }
        let mode = Bounded {
            topic,
            lost: Vec::new(),
        };
        Ok((mode, partitions))
    }
}

impl Mode for Bounded {
    fn idle(&mut self, consumer: &KafkaConsumer, partitions: &mut Partitions, quiet: Duration) {
        if quiet <= QUIET_BEFORE_DONE {
            return;
        }
        let Ok(positions) = consumer.position() else {
            return;
        };
        for element in positions.elements_for_topic(&self.topic) {
            if let (Some(part), Offset::Offset(position)) =
                (partitions.get_mut(&element.partition()), element.offset())
            {
                if part.end.is_some_and(|end| position >= end) {
                    part.at_end = true;
                }
            }
        }
    }

    fn finished(&self, partitions: &Partitions) -> bool {
        partitions.values().all(|p| p.done())
    }

    async fn lost(&mut self, _: &Context, p: i32, _: &mut Partitions) -> anyhow::Result<()> {
        self.lost.push(p);
        Ok(())
    }

    fn result(self) -> anyhow::Result<()> {
        if !self.lost.is_empty() {
            anyhow::bail!(
                "lost ownership of topic {} partitions {:?} to another consumer",
                self.topic,
                self.lost
            );
        }
        Ok(())
    }
}
