//! The Kafka source. Each partition is its own source with its own
//! checkpoint; the consumer group only decides who owns which partition.
//!
//! Two modes share one loop ([`drive`]) and differ where [`Mode`] says:
//! * [`group`]: continuous, subscribed to the consumer group. On every
//!   assignment the partition's checkpoint is read and an open intent
//!   replayed ([`replay`]) before any new message of it is accepted.
//! * [`bounded`]: `--once`. Assigns every partition itself, at its
//!   checkpoint, and stops at the high watermarks it saw at start.
//!
//! Messages before the checkpoint are skipped, and if Kafka delivers from
//! further on (the group's advisory offset is ahead of the checkpoint) the
//! consumer seeks back ([`partition`]). [`rebalance`] forwards librdkafka's
//! rebalance callbacks to the loop.

mod bounded;
mod group;
mod partition;
mod rebalance;
mod replay;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, info, warn};

use crate::commit::Outcome;
use crate::context::Context;
use crate::flush::should_flush;

use self::partition::Partition;
use self::rebalance::{HighWatermarks, RebalanceForwarder};

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

type KafkaConsumer = StreamConsumer<RebalanceForwarder>;
type Partitions = BTreeMap<i32, Partition>;

/// The consumer's librdkafka settings, for the main consumer and the replay reader.
fn client_config(ctx: &Context) -> ClientConfig {
    kafka_client::client_config(
        &ctx.kafka,
        &[
            // Also on the replay reader, which only assigns: librdkafka wants a group for that too.
            ("group.id", ctx.group_id.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            // Bounds librdkafka's prefetch per partition: memory follows the flush limits, not the backlog.
            ("queued.max.messages.kbytes", "16384"),
            // With the queue full during a flush, librdkafka would wait its default
            // 1 s before fetching again: the consumer sat idle half the time.
            ("fetch.queue.backoff.ms", "20"),
            // A message over MAX_MESSAGE_BYTES must still be fetched to become an `oversized`
            // dead letter; under librdkafka's 100 MB default the partition would stall on it.
            ("receive.message.max.bytes", "1000000000"),
            ("client.id", "lake-consumer"),
            // The high watermarks of the statistics give the lag per partition.
            ("statistics.interval.ms", "1000"),
        ],
    )
}

pub async fn run(ctx: &Context) -> anyhow::Result<()> {
    let topic = ctx.kafka.kafka_topic.clone();
    let (events_tx, events) = mpsc::channel();
    let consumer: KafkaConsumer = client_config(ctx)
        .create_with_context(RebalanceForwarder::new(&topic, events_tx))
        .context("creating the Kafka consumer (check KAFKA_BOOTSTRAP_SERVERS and the --kafka-setting values)")?;
    // Checked in both modes: subscribed to a missing topic, the group would
    // wait for it forever without a word.
    let partition_ids =
        kafka_client::topic_partitions(consumer.client(), &ctx.kafka, METADATA_TIMEOUT)?;
    info!(
        topic,
        partitions = partition_ids.len(),
        "connected to Kafka"
    );
    if ctx.once {
        let (mode, partitions) = bounded::Bounded::start(ctx, &consumer, partition_ids).await?;
        drive(ctx, &consumer, partitions, mode).await
    } else {
        consumer
            .subscribe(&[topic.as_str()])
            .with_context(|| format!("subscribing to topic {topic}"))?;
        drive(ctx, &consumer, Partitions::new(), group::Group::new(events)).await
    }
}

/// What the group and the bounded mode do differently in [`drive`].
trait Mode {
    /// Takes the group's assignments and revocations, between messages.
    async fn take_rebalances(
        &mut self,
        _ctx: &Context,
        _partitions: &mut Partitions,
    ) -> anyhow::Result<()> {
        Ok(())
    }

    /// Called on every tick with the time since the last message.
    fn idle(&mut self, _consumer: &KafkaConsumer, _partitions: &mut Partitions, _quiet: Duration) {}

    /// Whether the loop is done.
    fn finished(&self, _partitions: &Partitions) -> bool {
        false
    }

    /// Another consumer wrote the checkpoint of partition `p`, now removed
    /// from `partitions`.
    async fn lost(
        &mut self,
        ctx: &Context,
        p: i32,
        partitions: &mut Partitions,
    ) -> anyhow::Result<()>;

    /// The result of the whole run, once the loop has stopped and flushed.
    fn result(self) -> anyhow::Result<()>;
}

/// Receives messages into their partitions' batches and commits them when
/// a flush limit is reached, until the mode is finished or shutdown is
/// requested; then commits what is buffered.
async fn drive(
    ctx: &Context,
    consumer: &KafkaConsumer,
    mut partitions: Partitions,
    mut mode: impl Mode,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut last_message = Instant::now();
    let mut report = Report::new(ctx, consumer);
    while !mode.finished(&partitions) {
        tokio::select! {
            biased;
            _ = ctx.shutdown.wait() => break,
            received = consumer.recv() => {
                mode.take_rebalances(ctx, &mut partitions).await?;
                match received {
                    Err(e) => warn!(error = %e, "Kafka error; librdkafka retries"),
                    Ok(message) => {
                        last_message = Instant::now();
                        partition::accept(ctx, consumer, &mut partitions, &message);
                    }
                }
            }
            _ = tick.tick() => {
                mode.take_rebalances(ctx, &mut partitions).await?;
                mode.idle(consumer, &mut partitions, last_message.elapsed());
                report.update(ctx, &partitions);
            }
        }
        let (records, bytes, age) = buffered(&partitions);
        if should_flush(&ctx.limits, records, bytes, age) {
            report.backlogs(&mut partitions);
            flush(ctx, consumer, &mut partitions, &mut mode).await?;
            report.update(ctx, &partitions);
        }
    }
    report.backlogs(&mut partitions);
    flush(ctx, consumer, &mut partitions, &mut mode).await?;
    mode.result()
}

/// What the loop tells the metrics and `/readyz`: the partitions owned, the
/// lag of each, and whether the table's source is ready (owns a partition).
struct Report {
    topic: String,
    high_watermarks: HighWatermarks,
    /// The partitions whose lag is exported, to remove those no longer owned.
    exported: BTreeSet<i32>,
}

impl Report {
    fn new(ctx: &Context, consumer: &KafkaConsumer) -> Report {
        Report {
            topic: ctx.kafka.kafka_topic.clone(),
            high_watermarks: consumer.context().high_watermarks(),
            exported: BTreeSet::new(),
        }
    }

    fn high_watermark(&self, p: i32) -> Option<i64> {
        let high = self
            .high_watermarks
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        high.get(&p).copied()
    }

    fn update(&mut self, ctx: &Context, partitions: &Partitions) {
        let (metrics, health) = (lake::metrics::metrics(), lake::metrics::health());
        health.beat();
        let topic = self.topic.as_str();
        metrics
            .owned_partitions
            .with_label_values(&[topic])
            .set(partitions.len() as i64);
        if partitions.is_empty() {
            health.not_ready(
                ctx.readiness(),
                format!("no partition of topic {topic} is assigned to this consumer"),
            );
        } else {
            health.ready(&ctx.readiness());
        }
        for (p, part) in partitions {
            if let Some(high) = self.high_watermark(*p) {
                let label = p.to_string();
                metrics
                    .kafka_lag
                    .with_label_values(&[topic, label.as_str()])
                    .set((high - part.checkpoint_offset()).max(0));
                self.exported.insert(*p);
            }
        }
        self.exported.retain(|p| {
            let owned = partitions.contains_key(p);
            if !owned {
                let label = p.to_string();
                let _ = metrics
                    .kafka_lag
                    .remove_label_values(&[topic, label.as_str()]);
            }
            owned
        });
    }

    /// Sets each buffered batch's backlog: the messages of its partition
    /// after it, for the progress line.
    fn backlogs(&self, partitions: &mut Partitions) {
        for (p, part) in partitions.iter_mut() {
            let next = part.next_offset();
            if let (Some(high), Some(batch)) = (self.high_watermark(*p), part.batch.as_mut()) {
                batch.backlog = Some((high - next).max(0) as u64);
            }
        }
    }
}

/// Records and input bytes buffered across partitions, and the age of the oldest batch.
fn buffered(partitions: &Partitions) -> (u64, u64, Duration) {
    partitions.values().filter_map(|p| p.batch.as_ref()).fold(
        (0, 0, Duration::ZERO),
        |(records, bytes, age), b| {
            (
                records + b.records(),
                bytes + b.input_bytes,
                age.max(b.started.elapsed()),
            )
        },
    )
}

/// Commits every partition's buffered batch together: one Delta commit per
/// table with a `txn` per partition.
async fn flush(
    ctx: &Context,
    consumer: &KafkaConsumer,
    partitions: &mut Partitions,
    mode: &mut impl Mode,
) -> anyhow::Result<()> {
    let mut ids = Vec::new();
    let mut parts = Vec::new();
    for (p, part) in partitions.iter_mut() {
        if let Some(batch) = part.batch.take() {
            ids.push(*p);
            parts.push((&mut part.state, batch));
        }
    }
    if parts.is_empty() {
        return Ok(());
    }
    let outcomes = ctx.committer.commit(&ctx.delta, parts).await?;
    let mut offsets = TopicPartitionList::new();
    for (p, outcome) in ids.into_iter().zip(outcomes) {
        match outcome {
            Outcome::Committed => {
                let next = partitions[&p].next_offset();
                offsets.add_partition_offset(&ctx.kafka.kafka_topic, p, Offset::Offset(next))?;
            }
            Outcome::Lost => {
                partitions.remove(&p);
                mode.lost(ctx, p, partitions).await?;
            }
        }
    }
    if offsets.count() > 0 {
        // Advisory only: lag tools read it; the checkpoint is the truth.
        if let Err(e) = consumer.commit(&offsets, CommitMode::Async) {
            debug!(error = %e, "advisory offset commit failed");
        }
    }
    Ok(())
}
