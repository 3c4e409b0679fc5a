//! One owned partition: its checkpoint, its buffered micro-batch, and where
//! the stream of its messages stands after a (re)load.

use lake::checkpoint::Versioned;
use lake::position::{Position, Range};
use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::Offset;
use tracing::{debug, error, info, warn};

use super::{KafkaConsumer, Partitions, METADATA_TIMEOUT};
use crate::context::Context;
use crate::decode::Lineage;
use crate::write::MicroBatch;

/// Seeks back to the checkpoint that land past it before concluding that the
/// broker has no message there (compaction).
const MAX_SEEKS: u32 = 3;

pub(super) struct Partition {
    pub state: Versioned,
    pub batch: Option<MicroBatch>,
    pub resume: Resume,
    /// `--once`: the high watermark at start; the partition is done once reached.
    pub end: Option<i64>,
    /// `--once`: a message at or past `end` arrived, or the consumer's
    /// position passed it (the tail may be transaction markers).
    pub at_end: bool,
}

/// Where the stream of a partition's messages stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Resume {
    /// Just (re)loaded at a checkpoint: the next accepted message must be at
    /// `offset`. Earlier ones were committed already; a later one means Kafka
    /// delivers from further on, and the consumer seeks back.
    AtCheckpoint { offset: i64, seeks: u32 },
    /// The stream continues from the checkpoint (or, for a partition never
    /// committed, from wherever Kafka's earliest message is).
    Streaming,
}

impl Partition {
    /// A partition loaded at `state`, with nothing buffered.
    pub fn at(state: Versioned) -> Partition {
        let resume = match state.version {
            Some(_) => Resume::AtCheckpoint {
                offset: committed_offset(&state),
                seeks: 0,
            },
            None => Resume::Streaming,
        };
        Partition {
            state,
            batch: None,
            resume,
            end: None,
            at_end: false,
        }
    }

    /// The offset of the next message to decode: past the buffered batch,
    /// else the checkpoint's.
    pub fn next_offset(&self) -> i64 {
        match self.batch.as_ref().and_then(|b| b.range.as_ref()) {
            Some(Range::Kafka { last_offset, .. }) => last_offset + 1,
            _ => committed_offset(&self.state),
        }
    }

    /// The offset of the next message after the checkpoint.
    pub fn checkpoint_offset(&self) -> i64 {
        committed_offset(&self.state)
    }

    /// `--once`: nothing more to read.
    pub fn done(&self) -> bool {
        self.end
            .is_some_and(|end| self.at_end || self.next_offset() >= end)
    }

    /// Whether the message at `offset` continues the stream; seeks back to
    /// the checkpoint if Kafka delivers from further on.
    fn resumes_at(&mut self, ctx: &Context, consumer: &KafkaConsumer, p: i32, offset: i64) -> bool {
        let Resume::AtCheckpoint {
            offset: expected,
            seeks,
        } = self.resume
        else {
            return true;
        };
        if offset < expected {
            return false;
        }
        if offset > expected {
            let topic = &ctx.kafka.kafka_topic;
            // If the broker cannot say, assume the checkpoint's offset still exists and seek.
            let low = match consumer.fetch_watermarks(topic, p, METADATA_TIMEOUT) {
                Ok((low, _)) => low,
                Err(e) => {
                    warn!(partition = p, error = %e, "cannot read the low watermark");
                    i64::MIN
                }
            };
            if low <= expected && seeks < MAX_SEEKS {
                info!(
                    partition = p,
                    from = offset,
                    to = expected,
                    "seeking back to the checkpoint"
                );
                match consumer.seek(topic, p, Offset::Offset(expected), METADATA_TIMEOUT) {
                    Ok(()) => {
                        self.resume = Resume::AtCheckpoint {
                            offset: expected,
                            seeks: seeks + 1,
                        }
                    }
                    // Not counted: skipping messages until a seek works never loses any.
                    Err(e) => {
                        warn!(partition = p, error = %e, "seek failed; retrying on the next message")
                    }
                }
                return false;
            }
            error!(
                partition = p,
                from = expected,
                to = offset,
                "messages missing from Kafka before they were consumed"
            );
        }
        self.resume = Resume::Streaming;
        true
    }
}

/// A Kafka checkpoint's offset: `checkpoint::parse` refuses any other
/// position for a Kafka source, and the initial state has offset 0.
fn committed_offset(state: &Versioned) -> i64 {
    match state.checkpoint.position {
        Position::Kafka { next_offset } => next_offset,
        Position::Files { .. } => unreachable!("a Kafka checkpoint holds an offset"),
    }
}

/// Decodes one message into its partition's batch, unless the partition is
/// not owned, the message was decoded or committed already, it is past the
/// end (`--once`), or a seek back to the checkpoint comes first.
pub(super) fn accept(
    ctx: &Context,
    consumer: &KafkaConsumer,
    partitions: &mut Partitions,
    message: &BorrowedMessage<'_>,
) {
    let (p, offset) = (message.partition(), message.offset());
    let Some(part) = partitions.get_mut(&p) else {
        debug!(
            partition = p,
            offset, "message of a partition not owned; ignored"
        );
        return;
    };
    if !part.resumes_at(ctx, consumer, p, offset) || offset < part.next_offset() {
        return;
    }
    if part.end.is_some_and(|end| offset >= end) {
        part.at_end = true;
        return;
    }
    let source = part.state.checkpoint.source.clone();
    let batch = part
        .batch
        .get_or_insert_with(|| MicroBatch::new(source, ctx.table.clone()));
    decode_message(ctx, batch, message);
}

/// Decodes one message (live or replayed) into `batch`.
pub(super) fn decode_message(ctx: &Context, batch: &mut MicroBatch, message: &impl Message) {
    let payload = message.payload().unwrap_or_default();
    batch.add_message(Range::offset(message.offset()), payload.len());
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
    let counts = batch.decode(payload, &lineage, &ctx.input_limits);
    if counts.corrupt > 0 {
        debug!(
            partition = message.partition(),
            offset = message.offset(),
            "corrupt batch sent to dead letters"
        );
    }
}
