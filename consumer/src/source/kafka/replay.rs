//! Loading a partition: its checkpoint, and the replay of an open intent
//! over exactly its offsets, before any new message of the partition is
//! accepted (docs/DESIGN.md §5).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use lake::position::Range;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use super::partition::{decode_message, Partition};
use crate::commit::{load_checkpoint, Outcome};
use crate::context::Context;
use crate::write::MicroBatch;

/// How long a replay may take to read its range before the consumer gives up.
const REPLAY_DEADLINE: Duration = Duration::from_secs(120);

/// Reads the checkpoint of partition `p` and replays its open intent, if any.
pub(super) async fn load_partition(ctx: &Context, p: i32) -> anyhow::Result<Partition> {
    let source = ctx.kafka_source(p);
    let mut state = load_checkpoint(&ctx.committer.lake, &source).await?;
    if let Some(intent) = state.checkpoint.intent.clone() {
        let Range::Kafka {
            first_offset,
            last_offset,
        } = intent.range
        else {
            unreachable!("checkpoint::parse refuses a Kafka intent over raw keys");
        };
        info!(
            partition = p,
            first = first_offset,
            last = last_offset,
            "replaying the open intent of an interrupted micro-batch"
        );
        let config = super::client_config(ctx);
        let topic = ctx.kafka.kafka_topic.clone();
        let messages = tokio::task::spawn_blocking(move || {
            read_range(config, &topic, p, first_offset, last_offset)
        })
        .await??;
        let decoder =
            crate::tables::replay_decoder(&ctx.committer.lake, &ctx.table, &intent).await?;
        let mut batch = MicroBatch::new(source.clone(), decoder);
        for m in &messages {
            decode_message(ctx, &mut batch, m);
        }
        if ctx
            .committer
            .finish(&ctx.delta, vec![(&mut state, batch)])
            .await?[0]
            == Outcome::Lost
        {
            anyhow::bail!("another consumer took over {source} while replaying its intent");
        }
    }
    Ok(Partition::at(state))
}

/// Reads exactly the messages with offsets `first..=last` of one partition.
fn read_range(
    config: ClientConfig,
    topic: &str,
    p: i32,
    first: i64,
    last: i64,
) -> anyhow::Result<Vec<OwnedMessage>> {
    let reader: BaseConsumer = config.create().context("creating the replay consumer")?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, p, Offset::Offset(first))?;
    reader.assign(&tpl)?;
    let deadline = Instant::now() + REPLAY_DEADLINE;
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
        "cannot replay topic {topic} partition {p} offsets {first}..={last}: read only {} messages in {} s (deleted by retention?)",
        messages.len(),
        REPLAY_DEADLINE.as_secs()
    )
}
