//! The Kafka source. Each partition is its own source with its own
//! checkpoint; the consumer group only decides who owns which partition.
//!
//! Continuous mode subscribes to the group. On every assignment the
//! partition's checkpoint is read and an open intent replayed before any new
//! message of it is accepted; messages before the checkpoint are skipped, and
//! if the group's (advisory) offset is ahead of the checkpoint the consumer
//! seeks back. `--once` assigns every partition itself, at the checkpoint,
//! and stops at the high watermarks it saw at start.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use lake::checkpoint::Versioned;
use lake::layout::SourceId;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{debug, error, info, warn};

use crate::batch::should_flush;
use crate::commit::{load_checkpoint, Outcome};
use crate::decode::{decode_batch, Lineage};
use crate::write::MicroBatch;
use crate::Context;

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Forwards rebalances from librdkafka's callback to the main loop.
struct RebalanceForwarder {
    topic: String,
    events: mpsc::Sender<Assignment>,
}

enum Assignment {
    Assign(Vec<i32>),
    Revoke(Vec<i32>),
}

impl ClientContext for RebalanceForwarder {
    /// librdkafka repeats "all brokers down" on every reconnect attempt,
    /// hundreds of lines while a broker is away; the transport failure before
    /// it names the broker, and the consumer says itself when it gives up.
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            debug!(%error, reason, "Kafka client error");
        } else {
            warn!(%error, reason, "Kafka client error");
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
        let _ = self.events.send(event);
    }
}

/// One owned partition.
struct Partition {
    state: Versioned,
    batch: Option<MicroBatch>,
    /// The offset the next accepted message must have after a (re)load;
    /// `None` once the stream is known to continue from the checkpoint.
    expect: Option<i64>,
    seeks: u32,
    /// Last offset decoded into a batch.
    last_offset: Option<i64>,
    /// `--once`: the high watermark at start; the partition is done once reached.
    end: Option<i64>,
}

impl Partition {
    fn next_offset(&self) -> i64 {
        self.state.checkpoint.next_offset.unwrap_or(0)
    }

    fn done(&self) -> bool {
        match self.end {
            Some(end) => {
                self.last_offset
                    .map(|o| o + 1)
                    .unwrap_or(self.next_offset())
                    >= end
            }
            None => false,
        }
    }
}

fn client_config(ctx: &Context) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &ctx.kafka.kafka_bootstrap_servers)
        // Also on the replay reader, which only assigns: librdkafka wants a group for that too.
        .set("group.id", &ctx.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Bounds librdkafka's prefetch per partition: memory follows the flush limits, not the backlog.
        .set("queued.max.messages.kbytes", "16384")
        // With the queue full during a flush, librdkafka would wait its default
        // 1 s before fetching again: the consumer sat idle half the time.
        .set("fetch.queue.backoff.ms", "20")
        // A message over MAX_MESSAGE_BYTES must still be fetched to become an `oversized`
        // dead letter; under librdkafka's 100 MB default the partition would stall on it.
        .set("receive.message.max.bytes", "1000000000")
        .set("client.id", "lake-consumer");
    for (key, value) in ctx.kafka.extra_settings() {
        config.set(key, value);
    }
    config
}

pub async fn run(ctx: &Context) -> anyhow::Result<()> {
    let topic = ctx.kafka.kafka_topic.clone();
    let (events_tx, events) = mpsc::channel();
    let config = client_config(ctx);
    let consumer: StreamConsumer<RebalanceForwarder> = config
        .create_with_context(RebalanceForwarder {
            topic: topic.clone(),
            events: events_tx,
        })
        .context("creating the Kafka consumer (check KAFKA_BOOTSTRAP_SERVERS and the --kafka-setting values)")?;
    let partition_ids = topic_partitions(&consumer, ctx)?;
    info!(
        topic,
        partitions = partition_ids.len(),
        "connected to Kafka"
    );

    let mut partitions: BTreeMap<i32, Partition> = BTreeMap::new();
    if ctx.once {
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
                part.expect = Some(low);
            }
            if start < high {
                tpl.add_partition_offset(&topic, p, Offset::Offset(start))?;
            } else {
                // Nothing left to read, even when retention removed the whole gap.
                part.end = Some(part.next_offset());
            }
            partitions.insert(p, part);
        }
        if tpl.count() > 0 {
            consumer.assign(&tpl).context("assigning partitions")?;
        }
    } else {
        consumer
            .subscribe(&[topic.as_str()])
            .with_context(|| format!("subscribing to topic {topic}"))?;
    }

    let mut lost = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut last_message = Instant::now();
    loop {
        if ctx.once && partitions.values().all(Partition::done) {
            break;
        }
        tokio::select! {
            biased;
            _ = ctx.shutdown.wait() => break,
            received = consumer.recv() => {
                apply_rebalances(ctx, &events, &mut partitions).await?;
                match received {
                    Err(e) => warn!(error = %e, "Kafka error; librdkafka retries"),
                    Ok(message) => {
                        last_message = Instant::now();
                        accept(ctx, &consumer, &mut partitions, &message).await?;
                    }
                }
            }
            _ = tick.tick() => {
                apply_rebalances(ctx, &events, &mut partitions).await?;
                if ctx.once && last_message.elapsed() > Duration::from_secs(2) {
                    mark_idle_partitions_done(&consumer, &topic, &mut partitions);
                }
            }
        }
        let (records, bytes, age) = buffered(&partitions);
        if should_flush(&ctx.limits, records, bytes, age) {
            flush(ctx, &consumer, &mut partitions, &mut lost).await?;
        }
    }
    flush(ctx, &consumer, &mut partitions, &mut lost).await?;
    if ctx.once && !lost.is_empty() {
        anyhow::bail!("lost ownership of topic {topic} partitions {lost:?} to another consumer");
    }
    Ok(())
}

fn topic_partitions(
    consumer: &StreamConsumer<RebalanceForwarder>,
    ctx: &Context,
) -> anyhow::Result<Vec<i32>> {
    let topic = &ctx.kafka.kafka_topic;
    let servers = &ctx.kafka.kafka_bootstrap_servers;
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .map_err(|e| {
            anyhow::anyhow!("Kafka at {servers} (KAFKA_BOOTSTRAP_SERVERS) is unreachable: {e}")
        })?;
    // Checked in both modes: subscribed to a missing topic, the group would
    // wait for it forever without a word.
    let missing =
        || anyhow::anyhow!("Kafka topic {topic} (KAFKA_TOPIC) does not exist at {servers}");
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(missing());
    };
    match found.error().map(RDKafkaErrorCode::from) {
        None => {}
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => return Err(missing()),
        Some(e) => anyhow::bail!("Kafka topic {topic} (KAFKA_TOPIC) at {servers}: {e}"),
    }
    let ids: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    anyhow::ensure!(
        !ids.is_empty(),
        "topic {topic} (KAFKA_TOPIC) at {servers} has no partitions"
    );
    Ok(ids)
}

/// Reads the checkpoint of partition `p` and replays its open intent, if any.
async fn load_partition(ctx: &Context, p: i32) -> anyhow::Result<Partition> {
    let source = SourceId::Kafka {
        topic: ctx.kafka.kafka_topic.clone(),
        partition: p,
    };
    let mut state = load_checkpoint(&ctx.committer.lake, &source).await?;
    if let Some(intent) = state.checkpoint.intent.clone() {
        let (first, last) = intent
            .first_offset
            .zip(intent.last_offset)
            .with_context(|| {
                format!(
                    "checkpoint {} has an intent without offsets",
                    source.checkpoint_key()
                )
            })?;
        info!(
            partition = p,
            first, last, "replaying the open intent of an interrupted micro-batch"
        );
        let config = client_config(ctx);
        let topic = ctx.kafka.kafka_topic.clone();
        let messages =
            tokio::task::spawn_blocking(move || read_range(config, &topic, p, first, last))
                .await??;
        let mut batch = MicroBatch::new(source.clone());
        for m in &messages {
            decode_message(ctx, &mut batch, m);
        }
        if ctx.committer.finish(&mut state, batch).await? == Outcome::Lost {
            anyhow::bail!("another consumer took over {source} while replaying its intent");
        }
    }
    let next = state.checkpoint.next_offset.unwrap_or(0);
    // A partition never committed starts wherever Kafka's earliest message is.
    let expect = state.version.is_some().then_some(next);
    Ok(Partition {
        state,
        batch: None,
        expect,
        seeks: 0,
        last_offset: None,
        end: None,
    })
}

/// Reads exactly the messages with offsets `first..=last` of one partition.
fn read_range(
    config: ClientConfig,
    topic: &str,
    p: i32,
    first: i64,
    last: i64,
) -> anyhow::Result<Vec<rdkafka::message::OwnedMessage>> {
    let reader: BaseConsumer = config.create().context("creating the replay consumer")?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, p, Offset::Offset(first))?;
    reader.assign(&tpl)?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut messages = Vec::new();
    while Instant::now() < deadline {
        match reader.poll(Duration::from_millis(500)) {
            Some(Ok(m)) if m.partition() == p => {
                if m.offset() >= first && m.offset() <= last {
                    messages.push(m.detach());
                }
                if m.offset() >= last {
                    return Ok(messages);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => warn!(partition = p, error = %e, "Kafka error while replaying"),
            None => {}
        }
    }
    anyhow::bail!(
        "cannot replay topic {topic} partition {p} offsets {first}..={last}: read only {} messages in 120 s (deleted by retention?)",
        messages.len()
    )
}

async fn apply_rebalances(
    ctx: &Context,
    events: &mpsc::Receiver<Assignment>,
    partitions: &mut BTreeMap<i32, Partition>,
) -> anyhow::Result<()> {
    while let Ok(event) = events.try_recv() {
        match event {
            Assignment::Revoke(ids) => {
                for p in ids {
                    // Uncommitted buffers are dropped: the next owner reads them again from the checkpoint.
                    if partitions.remove(&p).is_some() {
                        info!(partition = p, "partition revoked");
                    }
                }
            }
            Assignment::Assign(ids) => {
                for p in ids {
                    if let std::collections::btree_map::Entry::Vacant(slot) = partitions.entry(p) {
                        let part = load_partition(ctx, p).await?;
                        info!(
                            partition = p,
                            next_offset = part.next_offset(),
                            "partition assigned"
                        );
                        slot.insert(part);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Decodes one message into its partition's batch, unless it is before the
/// checkpoint (already committed) or a seek back is needed first.
async fn accept(
    ctx: &Context,
    consumer: &StreamConsumer<RebalanceForwarder>,
    partitions: &mut BTreeMap<i32, Partition>,
    message: &rdkafka::message::BorrowedMessage<'_>,
) -> anyhow::Result<()> {
    let (p, offset) = (message.partition(), message.offset());
    let Some(part) = partitions.get_mut(&p) else {
        debug!(
            partition = p,
            offset, "message of a partition not owned; ignored"
        );
        return Ok(());
    };
    if let Some(expect) = part.expect {
        if offset < expect {
            return Ok(());
        }
        if offset > expect {
            // If the broker cannot say, assume the checkpoint's offset still exists and seek.
            let low = match consumer.fetch_watermarks(&ctx.kafka.kafka_topic, p, METADATA_TIMEOUT) {
                Ok((low, _)) => low,
                Err(e) => {
                    warn!(partition = p, error = %e, "cannot read the low watermark");
                    i64::MIN
                }
            };
            // After a few seeks that land past `expect`, the broker has no message there (compaction).
            if low <= expect && part.seeks < 3 {
                info!(
                    partition = p,
                    from = offset,
                    to = expect,
                    "seeking back to the checkpoint"
                );
                if let Err(e) = consumer.seek(
                    &ctx.kafka.kafka_topic,
                    p,
                    Offset::Offset(expect),
                    METADATA_TIMEOUT,
                ) {
                    // Not counted: skipping messages until a seek works never loses any.
                    warn!(partition = p, error = %e, "seek failed; retrying on the next message");
                } else {
                    part.seeks += 1;
                }
                return Ok(());
            }
            error!(
                partition = p,
                from = expect,
                to = offset,
                "messages missing from Kafka before they were consumed"
            );
        }
        part.expect = None;
    }
    if part.last_offset.is_some_and(|last| offset <= last) {
        return Ok(());
    }
    if part.end.is_some_and(|end| offset >= end) {
        // --once: past the high watermark seen at start.
        part.last_offset = Some(offset);
        return Ok(());
    }
    let source = part.state.checkpoint.source.clone();
    let batch = part.batch.get_or_insert_with(|| MicroBatch::new(source));
    decode_message(ctx, batch, message);
    part.last_offset = Some(offset);
    Ok(())
}

fn decode_message(ctx: &Context, batch: &mut MicroBatch, message: &impl Message) {
    let payload = message.payload().unwrap_or_default();
    batch.add_message(Some(message.offset()), None, payload.len());
    let batch_id = message.headers().and_then(|headers| {
        headers
            .iter()
            .find(|h| h.key == lake::event::BATCH_ID_HEADER)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    });
    let lineage = Lineage {
        offset: Some(message.offset()),
        key: None,
        batch_id,
        kafka_timestamp_micros: message.timestamp().to_millis().map(|ms| ms * 1000),
    };
    let counts = decode_batch(payload, &lineage, &ctx.input_limits, batch);
    if counts.corrupt > 0 {
        debug!(
            partition = message.partition(),
            offset = message.offset(),
            "corrupt batch sent to dead letters"
        );
    }
}

/// `--once`: a partition with nothing new for a while whose position reached
/// the start's high watermark is done (the tail may be transaction markers).
fn mark_idle_partitions_done(
    consumer: &StreamConsumer<RebalanceForwarder>,
    topic: &str,
    partitions: &mut BTreeMap<i32, Partition>,
) {
    let Ok(positions) = consumer.position() else {
        return;
    };
    for element in positions.elements_for_topic(topic) {
        if let (Some(part), Offset::Offset(position)) =
            (partitions.get_mut(&element.partition()), element.offset())
        {
            if part.end.is_some_and(|end| position >= end) {
                part.last_offset = Some(part.last_offset.unwrap_or(position - 1).max(position - 1));
            }
        }
    }
}

fn buffered(partitions: &BTreeMap<i32, Partition>) -> (u64, u64, Duration) {
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

/// Commits every partition's buffered batch, partitions in parallel.
async fn flush(
    ctx: &Context,
    consumer: &StreamConsumer<RebalanceForwarder>,
    partitions: &mut BTreeMap<i32, Partition>,
    lost: &mut Vec<i32>,
) -> anyhow::Result<()> {
    let commits = partitions.iter_mut().filter_map(|(p, part)| {
        let batch = part.batch.take()?;
        Some(async move { (*p, ctx.committer.commit(&mut part.state, batch).await) })
    });
    let results: HashMap<i32, anyhow::Result<Outcome>> = futures::future::join_all(commits)
        .await
        .into_iter()
        .collect();
    let mut offsets = TopicPartitionList::new();
    for (p, result) in results {
        match result? {
            Outcome::Committed => {
                let next = partitions[&p].next_offset();
                offsets.add_partition_offset(&ctx.kafka.kafka_topic, p, Offset::Offset(next))?;
            }
            Outcome::Lost if ctx.once => {
                partitions.remove(&p);
                lost.push(p);
            }
            // Still assigned by the group: start over from whatever the
            // other writer committed, rather than stall the partition.
            Outcome::Lost => {
                let part = load_partition(ctx, p).await?;
                partitions.insert(p, part);
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
