//! The file-drop source of one table: raw batch objects under its raw prefix
//! (`raw/<table>/`), processed in key order as one logical partition. The checkpoint's position is the
//! last committed key; objects must be added with keys that sort after it
//! (the producer's run ids start with their UTC start time).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use lake::decoder::Decoder;
use lake::event::{oversized_batch, OVERSIZED_PREFIX_BYTES};
use lake::layout;
use lake::position::Range;
use lake::store::Location;
use lake::{Lake, StoreError};
use object_store::{Attribute, ObjectStoreExt};
use tracing::{debug, info};

use crate::commit::{load_checkpoint, Outcome};
use crate::context::Context;
use crate::decode::Lineage;
use crate::flush::should_flush;
use crate::retry::{retry, Attempts};
use crate::write::{Decoded, Decoding, MicroBatch};

/// Objects fetched ahead of decoding, to hide S3 latency.
const PREFETCH: usize = 8;

pub async fn run(ctx: &Context) -> anyhow::Result<()> {
    let lake = &ctx.committer.lake;
    let source = ctx.files_source();
    let prefix = ctx.table.contract.table.raw_prefix.as_str();
    let mut state = load_checkpoint(lake, &source).await?;
    if let Some(intent) = state.checkpoint.intent.clone() {
        info!(source = %source, seq = intent.seq, "replaying the open intent of an interrupted micro-batch");
        let Range::Files { last_key, .. } = &intent.range else {
            unreachable!("checkpoint::parse refuses a files intent over offsets");
        };
        let keys: Vec<Listed> = list_after(lake, prefix, state.checkpoint.after_key())
            .await?
            .into_iter()
            .take_while(|k| k.key <= *last_key)
            .collect();
        let decoder = crate::tables::replay_decoder(lake, &ctx.table, &intent).await?;
        let mut batch = MicroBatch::new(source.clone(), decoder.clone());
        let (objects, mut decoded) = read_and_decode(ctx, decoder, &keys).await?;
        for object in &objects {
            batch.add_message(object.at.clone(), object.read);
        }
        if let Some(last) = objects.len().checked_sub(1) {
            batch.take(&mut decoded, last);
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
    lake::metrics::health().ready(&ctx.readiness());
    let mut batch = MicroBatch::new(source.clone(), ctx.table.clone());
    loop {
        lake::metrics::health().beat();
        // After what is buffered, not only after what is committed: a batch
        // not yet flushed at the end of a pass keeps its objects.
        let buffered = match &batch.range {
            Some(Range::Files { last_key, .. }) => Some(last_key.clone()),
            _ => None,
        };
        let after = buffered.as_deref().or(state.checkpoint.after_key());
        let keys = list_after(lake, prefix, after).await?;
        let listed = keys.len();
        let mut ahead = DecodingAhead::start(ctx, keys);
        let mut read = 0;
        'objects: while let Some(run) = ahead.runs.recv().await {
            let (objects, mut decoded) = run?;
            let mut taken = None;
            for (i, object) in objects.iter().enumerate() {
                batch.add_message(object.at.clone(), object.read);
                if decoded.counts[i].corrupt > 0 {
                    // Expected data, counted in the commit line; as in the Kafka source.
                    debug!(key = %object.at, "corrupt batch sent to dead letters");
                }
                read += 1;
                batch.backlog = Some((listed - read) as u64);
                lake::metrics::health().beat();
                if should_flush(
                    &ctx.limits,
                    batch.records() + decoded.rows_through(i),
                    batch.input_bytes,
                    batch.started.elapsed(),
                ) || ctx.shutdown.requested()
                {
                    batch.take(&mut decoded, i);
                    taken = Some(i);
                    commit(ctx, &mut state, &mut batch).await?;
                }
                if ctx.shutdown.requested() {
                    break 'objects;
                }
            }
            let last = objects.len() - 1;
            if taken != Some(last) {
                batch.take(&mut decoded, last);
            }
        }
        drop(ahead);
        let idle_flush = ctx.once
            || ctx.shutdown.requested()
            || should_flush(
                &ctx.limits,
                batch.records(),
                batch.input_bytes,
                batch.started.elapsed(),
            );
        if !batch.is_empty() && idle_flush {
            commit(ctx, &mut state, &mut batch).await?;
        }
        if ctx.once || ctx.shutdown.requested() {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(ctx.files_poll_interval) => {}
            _ = ctx.shutdown.wait() => {}
        }
    }
}

async fn commit(
    ctx: &Context,
    state: &mut lake::checkpoint::Versioned,
    batch: &mut MicroBatch,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let full = std::mem::replace(batch, batch.next());
    let key = full.source.checkpoint_key();
    match ctx
        .committer
        .commit(&ctx.delta, vec![(state, full)])
        .await?[0]
    {
        Outcome::Committed => Ok(()),
        Outcome::Lost => anyhow::bail!(
            "another consumer wrote {key}; stopping (only one files consumer may run per table)"
        ),
    }
}

/// Runs read and decoded ahead, in key order, by a task of their own: it
/// goes on while the source's task commits (encoding blocks that task's
/// thread), so decoding the next micro-batch overlaps encoding this one.
/// At most [`RUNS_AHEAD`] runs per worker thread wait decoded, besides
/// those being read and decoded, so memory stays bounded.
struct DecodingAhead {
    runs: tokio::sync::mpsc::Receiver<Result<DecodedRun, StoreError>>,
    task: tokio::task::JoinHandle<()>,
}

type DecodedRun = (Vec<ObjectRead>, Decoded);

/// Decoded runs (of up to [`RUN_BYTES`]) waiting per worker thread.
const RUNS_AHEAD: usize = 4;

impl DecodingAhead {
    fn start(ctx: &Context, keys: Vec<Listed>) -> DecodingAhead {
        let threads = ctx.committer.workers.threads();
        let (send, runs) = tokio::sync::mpsc::channel(RUNS_AHEAD * threads);
        let ctx = ctx.clone();
        let task = tokio::spawn(async move {
            let reads: Vec<_> = runs_of(&keys)
                .map(|run| read_and_decode(&ctx, ctx.table.clone(), run))
                .collect();
            let mut decoded = futures::stream::iter(reads).buffered(2 * threads);
            while let Some(run) = decoded.next().await {
                let failed = run.is_err();
                // The source stopped taking runs: it is done or failing.
                if send.send(run).await.is_err() || failed {
                    return;
                }
            }
        });
        DecodingAhead { runs, task }
    }
}

impl Drop for DecodingAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One raw object as read: all of it, or only the start of one over `MAX_MESSAGE_BYTES`.
struct RawObject {
    key: String,
    payload: bytes::Bytes,
    size: u64,
    batch_id: Option<String>,
}

/// A run of consecutive objects decoded on one worker: up to this many
/// bytes (or one larger object). Large enough that a run's rows are few,
/// large arrays; small enough that every worker has runs to decode.
const RUN_BYTES: u64 = 2 << 20;

/// `keys` cut into runs of at most [`RUN_BYTES`] (at least one object each).
fn runs_of(keys: &[Listed]) -> impl Iterator<Item = &[Listed]> {
    let mut rest = keys;
    std::iter::from_fn(move || {
        let mut bytes = 0;
        let end = rest
            .iter()
            .position(|k| {
                bytes += k.size;
                bytes > RUN_BYTES
            })
            .unwrap_or(rest.len())
            .max(1)
            .min(rest.len());
        let (run, after) = rest.split_at(end);
        rest = after;
        (!run.is_empty()).then_some(run)
    })
}

/// An object of a run: its position and the bytes read of it.
struct ObjectRead {
    at: Range,
    read: usize,
}

/// Reads the objects of `keys` and decodes them together under `decoder`
/// on a worker (an oversized object is one dead letter of what was read of
/// it).
async fn read_and_decode(
    ctx: &Context,
    decoder: Arc<Decoder>,
    keys: &[Listed],
) -> Result<(Vec<ObjectRead>, Decoded), StoreError> {
    let objects = match &ctx.committer.lake.location {
        // The whole run in one blocking task: the store would hand each
        // object to two of its own, and those hand-offs kept the cores idle
        // a fifth of the time on every core. Not on a decoding worker: a
        // read may wait for the disk.
        Location::Local { root } => {
            let (root, keys, max) = (
                root.clone(),
                keys.to_vec(),
                ctx.input_limits.max_message_bytes,
            );
            tokio::task::spawn_blocking(move || {
                keys.iter()
                    .map(|listed| read_local(&root, listed, max))
                    .collect::<Result<Vec<RawObject>, StoreError>>()
            })
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?
        }
        Location::S3 { .. } => {
            // Up to PREFETCH requests at a time, kept in key order. (A loop
            // rather than a stream of closures: the task decoding ahead
            // must be Send.)
            let mut objects = Vec::with_capacity(keys.len());
            let mut reading = futures::stream::FuturesOrdered::new();
            for listed in keys {
                if reading.len() == PREFETCH {
                    objects.extend(reading.next().await.transpose()?);
                }
                reading.push_back(fetch(ctx, &listed.key));
            }
            while let Some(object) = reading.next().await {
                objects.push(object?);
            }
            objects
        }
    };
    let (limits, prefix) = (
        ctx.input_limits,
        ctx.table.contract.table.raw_prefix.clone(),
    );
    let decode = move || {
        let mut decoding = Decoding::new(decoder);
        let mut read = Vec::with_capacity(objects.len());
        for object in objects {
            let lineage = Lineage {
                offset: None,
                batch_id: Some(
                    object
                        .batch_id
                        .unwrap_or_else(|| layout::batch_id_from_raw_key(&prefix, &object.key)),
                ),
                key: Some(object.key.clone()),
                kafka_timestamp_micros: None,
            };
            if object.size > limits.max_message_bytes as u64 {
                let rejection = oversized_batch(object.size, limits.max_message_bytes);
                decoding.dead(&object.payload, &lineage, rejection);
            } else {
                decoding.decode(&object.payload, &lineage, &limits);
            }
            read.push(ObjectRead {
                at: Range::key(&object.key),
                read: object.payload.len(),
            });
        }
        (read, decoding.finish())
    };
    Ok(ctx.committer.workers.run(decode).await)
}

/// Reads one object of a local lake as [`fetch`] reads one from the store:
/// all of it, or only the start of one over `max_message_bytes`.
fn read_local(
    root: &Path,
    listed: &Listed,
    max_message_bytes: usize,
) -> Result<RawObject, StoreError> {
    let path = root.join(&listed.key);
    let failed = |e| StoreError::io(format!("reading {}", path.display()), e);
    let mut file = std::fs::File::open(&path).map_err(failed)?;
    let size = file.metadata().map_err(failed)?.len();
    let mut payload = Vec::new();
    if size > max_message_bytes as u64 {
        // Oversized: only what its dead letter keeps, so memory stays bounded.
        payload.reserve(OVERSIZED_PREFIX_BYTES);
        (&mut file)
            .take(OVERSIZED_PREFIX_BYTES as u64)
            .read_to_end(&mut payload)
    } else {
        payload.reserve(size as usize);
        file.read_to_end(&mut payload)
    }
    .map_err(failed)?;
    Ok(RawObject {
        key: listed.key.clone(),
        payload: payload.into(),
        size,
        batch_id: None,
    })
}

/// A raw object as listed.
#[derive(Clone)]
struct Listed {
    key: String,
    size: u64,
}

/// Keys under `prefix` after `after`, in key order, retrying while the
/// store fails transiently.
async fn list_after(
    lake: &Lake,
    prefix: &str,
    after: Option<&str>,
) -> Result<Vec<Listed>, StoreError> {
    retry("listing raw objects", Attempts::Forever, || {
        list_once(lake, prefix, after)
    })
    .await
}

async fn list_once(
    lake: &Lake,
    prefix: &str,
    after: Option<&str>,
) -> Result<Vec<Listed>, StoreError> {
    let listed = Lake::path(prefix);
    let listing = match after {
        Some(after) => lake
            .store
            .list_with_offset(Some(&listed), &Lake::path(after)),
        None => lake.store.list(Some(&listed)),
    };
    let mut keys: Vec<Listed> = listing
        .map_ok(|meta| Listed {
            key: meta.location.to_string(),
            size: meta.size,
        })
        .try_collect()
        .await
        .map_err(|e| StoreError::request(format!("listing {}", lake.url_of(prefix)), e))?;
    // The local filesystem lists in directory order, S3 in key order: sort both.
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    if let Some(after) = after {
        keys.retain(|k| k.key.as_str() > after);
    }
    Ok(keys)
}

/// Reads one raw object and its batch id, retrying transient failures.
async fn fetch(ctx: &Context, key: &str) -> Result<RawObject, StoreError> {
    retry("reading a raw object", Attempts::Forever, || {
        fetch_once(ctx, key)
    })
    .await
}

async fn fetch_once(ctx: &Context, key: &str) -> Result<RawObject, StoreError> {
    let lake = &ctx.committer.lake;
    let failed = |e| StoreError::request(format!("reading {}", lake.url_of(key)), e);
    let result = lake.store.get(&Lake::path(key)).await.map_err(failed)?;
    let batch_id = result
        .attributes
        .get(&Attribute::Metadata(lake::event::BATCH_ID_HEADER.into()))
        .map(|v| v.to_string());
    let size = result.meta.size;
    let payload = if size > ctx.input_limits.max_message_bytes as u64 {
        // Oversized: read only what its dead letter keeps, so memory stays bounded.
        let mut start = Vec::with_capacity(OVERSIZED_PREFIX_BYTES);
        let mut chunks = result.into_stream();
        while start.len() < OVERSIZED_PREFIX_BYTES {
            match chunks.try_next().await.map_err(failed)? {
                Some(chunk) => start.extend_from_slice(&chunk),
                None => break,
            }
        }
        start.truncate(OVERSIZED_PREFIX_BYTES);
        bytes::Bytes::from(start)
    } else {
        result.bytes().await.map_err(failed)?
    };
    Ok(RawObject {
        key: key.to_string(),
        payload,
        size,
        batch_id,
    })
}
