//! The delivery protocol of docs/DESIGN.md §5 for one micro-batch of one
//! source: intent → data → Delta commits → checkpoint.
//!
//! 1. The intent (a conditional checkpoint write) fixes the micro-batch's
//!    exact range and fences a zombie: its next checkpoint write is refused.
//! 2. The data files are uploaded under names of their own attempt.
//! 3. One Delta commit per table (bronze, dead letters) adds them, with a
//!    `txn` of the source and the range's end: the log is the record of what
//!    is committed, and a range already in it (a replay after a crash, a
//!    lost response, a zombie) is recognised and not committed again.
//! 4. The checkpoint moves past the range, for people and `inspector status`.
//!
//! Transient failures (S3 errors, timeouts) are retried with backoff
//! ([`crate::retry`]); a refused conditional write means another consumer owns
//! the source now, and is returned as [`Outcome::Lost`] so the caller stops
//! writing for it.

use lake::checkpoint::{self, Checkpoint, CheckpointError, Versioned};
use lake::layout;
use lake::metrics::metrics;
use lake::Lake;
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::retry::{retry, Attempts, Transient};
use crate::workers::Workers;
use crate::write::{self, Encoded, Layer, MicroBatch};

/// Settings of the commit step.
#[derive(Debug, Clone)]
pub struct Committer {
    pub lake: Lake,
    /// Names this process in checkpoints.
    pub writer: String,
    pub upload_concurrency: usize,
    /// The threads that decode; as many encode a file's columns at once.
    pub workers: Workers,
}

/// The Delta tables of one lake table, shared by its sources. A lock per
/// table serialises this process's commits to it, which would otherwise
/// only conflict and retry.
pub struct Tables {
    pub bronze: Mutex<delta::Table>,
    pub dead_letters: Mutex<delta::Table>,
}

impl Tables {
    /// Opens (or creates) `table`'s bronze and dead-letter tables, adding
    /// the columns a compatible contract change brought.
    pub async fn open(lake: &Lake, decoder: &lake::decoder::Decoder) -> anyhow::Result<Tables> {
        let table = &decoder.contract.table.table;
        let bronze = retry("opening a Delta table", Attempts::AtMost(5), || async {
            delta::Table::open_or_create(lake, &layout::bronze_prefix(table), &decoder.bronze)
                .await
                .map_err(DeltaFailure)
        });
        let dead_letters = retry("opening a Delta table", Attempts::AtMost(5), || async {
            delta::Table::open_or_create(
                lake,
                &layout::dead_letters_prefix(table),
                &lake::schema::dead_letters(),
            )
            .await
            .map_err(DeltaFailure)
        });
        let (bronze, dead_letters) = tokio::try_join!(bronze, dead_letters)?;
        Ok(Tables {
            bronze: Mutex::new(bronze),
            dead_letters: Mutex::new(dead_letters),
        })
    }

    fn of(&self, layer: Layer) -> &Mutex<delta::Table> {
        match layer {
            Layer::Bronze => &self.bronze,
            Layer::DeadLetters => &self.dead_letters,
        }
    }
}

/// A failure of the Delta library: transient unless the store refused the
/// request itself (credentials, permissions), by the store's own rules.
#[derive(Debug)]
struct DeltaFailure(anyhow::Error);

impl std::fmt::Display for DeltaFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for DeltaFailure {}

impl Transient for DeltaFailure {
    fn is_transient(&self) -> bool {
        self.0
            .chain()
            .find_map(|e| e.downcast_ref::<object_store::Error>())
            .is_none_or(lake::error::is_transient_request)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Committed,
    /// Another writer changed the checkpoint: this process must stop writing for the source.
    Lost,
}

/// One source's micro-batch and the checkpoint it moves.
pub type Part<'a> = (&'a mut Versioned, MicroBatch);

impl Committer {
    /// Writes each part's batch under a new intent and commits them
    /// together; each `state` is the source's checkpoint as last read or
    /// written, updated in place. One outcome per part, in order.
    pub async fn commit(
        &self,
        tables: &Tables,
        parts: Vec<Part<'_>>,
    ) -> anyhow::Result<Vec<Outcome>> {
        let intents = parts.into_iter().map(|(state, batch)| async move {
            let Some(range) = batch.range.clone() else {
                anyhow::bail!(
                    "an empty micro-batch of {} has nothing to commit",
                    batch.source
                );
            };
            let next =
                state
                    .checkpoint
                    .with_intent(range, batch.messages, &batch.decoder.fingerprint);
            let outcome = self.write_checkpoint(state, next).await?;
            if outcome == Outcome::Lost {
                metrics()
                    .lost_ownership
                    .with_label_values(&[batch.source.table()])
                    .inc();
            }
            Ok((outcome, (state, batch)))
        });
        let mut outcomes = Vec::new();
        let mut open = Vec::new();
        for written in futures::future::join_all(intents).await {
            let (outcome, part) = written?;
            if outcome == Outcome::Committed {
                open.push((outcomes.len(), part));
            }
            outcomes.push(outcome);
        }
        let (indices, open): (Vec<usize>, Vec<Part>) = open.into_iter().unzip();
        for (i, outcome) in indices.into_iter().zip(self.finish(tables, open).await?) {
            outcomes[i] = outcome;
        }
        Ok(outcomes)
    }

    /// Steps 2 to 4 for the open intent in each part's `state`, whose exact
    /// range its batch holds: on a first attempt, and again on a replay
    /// after a crash. The parts share one Delta commit per table, with a
    /// `txn` per source, and its files: one per event date.
    pub async fn finish(
        &self,
        tables: &Tables,
        parts: Vec<Part<'_>>,
    ) -> anyhow::Result<Vec<Outcome>> {
        let Some(table) = parts.first().map(|(_, b)| b.source.table().to_string()) else {
            return Ok(Vec::new());
        };
        let finishing = std::time::Instant::now();
        let mut work = parts
            .into_iter()
            .map(|(state, batch)| Work::finish(state, batch))
            .collect::<anyhow::Result<Vec<Work>>>()?;
        // A replay skips the tables whose log already has its range.
        for layer in [Layer::Bronze, Layer::DeadLetters] {
            let delta = tables.of(layer);
            let done = retry("reading a Delta log", Attempts::Forever, || async {
                let mut delta = delta.lock().await;
                let mut done = Vec::new();
                for w in work.iter().filter(|w| w.layers.contains(&layer)) {
                    let through = delta
                        .committed_through(&w.app)
                        .await
                        .map_err(DeltaFailure)?;
                    if through.is_some_and(|v| v >= w.through) {
                        done.push(w.app.clone());
                    }
                }
                Ok::<_, DeltaFailure>(done)
            })
            .await?;
            for w in work.iter_mut().filter(|w| done.contains(&w.app)) {
                w.layers.retain(|l| *l != layer);
            }
        }
        // Random, so two attempts (a zombie's and its replay) never share a name.
        let attempt = || uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let threads = self.workers.threads();
        let files = Workers::block_here(|| {
            [Layer::Bronze, Layer::DeadLetters]
                .into_iter()
                .map(|layer| Encoding::of(&table, layer, &work, &attempt(), threads))
                .collect::<anyhow::Result<Vec<Encoding>>>()
        })?;
        let encode_ms = finishing.elapsed().as_millis() as u64;
        let uploading = std::time::Instant::now();
        let all: Vec<&Encoded> = files.iter().flat_map(|e| &e.files).collect();
        self.upload(&table, &all).await?;
        let mut upload_ms = uploading.elapsed().as_millis() as u64;
        let mut uploaded = all.len();
        let mut output_bytes: usize = all.iter().map(|f| f.bytes.len()).sum();
        let committing = std::time::Instant::now();
        let mut versions = Vec::new();
        for (layer, mut encoding) in [Layer::Bronze, Layer::DeadLetters].into_iter().zip(files) {
            let delta = tables.of(layer);
            loop {
                let members = members(&work, layer);
                if members.is_empty() {
                    break;
                }
                // A source left out since (refused below, or lost on
                // bronze): the others' rows are encoded again without its.
                // The files already uploaded are in no snapshot.
                if encoding.sources != members.iter().map(|w| w.app.clone()).collect::<Vec<_>>() {
                    let again = std::time::Instant::now();
                    encoding = Workers::block_here(|| {
                        Encoding::of(&table, layer, &work, &attempt(), threads)
                    })?;
                    self.upload(&table, &encoding.files.iter().collect::<Vec<_>>())
                        .await?;
                    upload_ms += again.elapsed().as_millis() as u64;
                    uploaded += encoding.files.len();
                    output_bytes += encoding.files.iter().map(|f| f.bytes.len()).sum::<usize>();
                }
                let txns: Vec<delta::Txn> = members
                    .iter()
                    .map(|w| delta::Txn {
                        source: &w.app,
                        through: w.through,
                    })
                    .collect();
                let added: Vec<delta::DataFile> =
                    encoding.files.iter().map(|f| f.file.clone()).collect();
                let appended = retry("Delta commit", Attempts::Forever, || async {
                    delta
                        .lock()
                        .await
                        .append_together(&txns, &added)
                        .await
                        .map_err(DeltaFailure)
                })
                .await?;
                let refused: Vec<(String, delta::Committed)> = match appended {
                    delta::Appended::Version(v) => {
                        versions.push((layer, v));
                        break;
                    }
                    delta::Appended::Without(refused) => refused
                        .into_iter()
                        .map(|(i, committed)| (members[i].app.clone(), committed))
                        .collect(),
                };
                for w in work.iter_mut() {
                    match refused.iter().find(|(app, _)| *app == w.app) {
                        Some((_, delta::Committed::Lost { committed })) => {
                            warn!(source = %w.state.checkpoint.source, through = w.through, ?committed, "the Delta log holds another range of this source; giving up this source");
                            w.lost = true;
                        }
                        Some(_) => w.layers.retain(|l| *l != layer),
                        None => {}
                    }
                }
            }
        }
        let delta_commit_ms = committing.elapsed().as_millis() as u64;
        let checkpointing = std::time::Instant::now();
        let checkpoints = work.iter_mut().map(|w| async move {
            if w.lost {
                return Ok(Outcome::Lost);
            }
            let next = w
                .state
                .checkpoint
                .committed(w.bronze_rows, w.dead_letter_rows);
            self.write_checkpoint(w.state, next).await
        });
        let outcomes: Vec<Outcome> = futures::future::join_all(checkpoints)
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()?;
        let committed: Vec<&Work> = work
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| **o == Outcome::Committed)
            .map(|(w, _)| w)
            .collect();
        let stages = [
            ("encode", encode_ms as f64 / 1e3),
            ("upload", upload_ms as f64 / 1e3),
            ("delta_commit", delta_commit_ms as f64 / 1e3),
            ("checkpoint", checkpointing.elapsed().as_secs_f64()),
        ];
        count_commit(
            &table,
            &committed,
            outcomes.len() - committed.len(),
            &stages,
        );
        if !committed.is_empty() {
            // The progress log: one line per commit, what and how long.
            let version = |layer| versions.iter().find(|(l, _)| *l == layer).map(|(_, v)| *v);
            let ranges: Vec<String> = committed
                .iter()
                .map(|w| format!("{} {}", w.app, w.intent.range))
                .collect();
            info!(
                table,
                sources = committed.len(),
                ranges = ranges.join(", "),
                messages = committed.iter().map(|w| w.intent.messages).sum::<u64>(),
                input_bytes = committed.iter().map(|w| w.input_bytes).sum::<u64>(),
                bronze_rows = committed.iter().map(|w| w.bronze_rows).sum::<u64>(),
                dead_letter_rows = committed.iter().map(|w| w.dead_letter_rows).sum::<u64>(),
                files = uploaded,
                output_bytes,
                bronze_version = version(Layer::Bronze),
                dead_letters_version = version(Layer::DeadLetters),
                decode_ms = committed
                    .iter()
                    .map(|w| w.decode_time.as_millis() as u64)
                    .sum::<u64>(),
                encode_ms,
                upload_ms,
                delta_commit_ms,
                lag_messages = committed.iter().filter_map(|w| w.backlog).sum::<u64>(),
                "micro-batch committed"
            );
        }
        Ok(outcomes)
    }

    /// Puts the `files` of `table`, retried while the store fails transiently.
    async fn upload(&self, table: &str, files: &[&Encoded]) -> anyhow::Result<()> {
        retry("upload", Attempts::Forever, || {
            write::upload(&self.lake, files, self.upload_concurrency)
        })
        .await?;
        let metrics = metrics();
        for file in files {
            let labels = [table, file.layer.as_str()];
            metrics.written_files.with_label_values(&labels).inc();
            metrics
                .written_bytes
                .with_label_values(&labels)
                .inc_by(file.bytes.len() as u64);
        }
        Ok(())
    }

    /// A conditional checkpoint write, retried while the store fails transiently.
    async fn write_checkpoint(
        &self,
        state: &mut Versioned,
        mut next: Checkpoint,
    ) -> anyhow::Result<Outcome> {
        // One token for every attempt, so a retry recognises an earlier
        // attempt that landed with its response lost.
        next.write_token = checkpoint::new_token();
        let previous: &Versioned = state;
        let written = retry("checkpoint write", Attempts::Forever, || {
            checkpoint::write(&self.lake, previous, next.clone(), &self.writer)
        })
        .await;
        match written {
            Ok(written) => {
                *state = written;
                Ok(Outcome::Committed)
            }
            Err(CheckpointError::Lost { source_id, key }) => {
                warn!(source = %source_id, key, "checkpoint changed by another writer; giving up this source");
                Ok(Outcome::Lost)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Reads a checkpoint, retrying a few times while the store fails transiently.
pub async fn load_checkpoint(lake: &Lake, source: &layout::SourceId) -> anyhow::Result<Versioned> {
    Ok(retry("checkpoint read", Attempts::AtMost(8), || {
        checkpoint::load(lake, source)
    })
    .await?)
}

/// One source's micro-batch between its finished rows and its checkpoint.
struct Work<'a> {
    state: &'a mut Versioned,
    decoder: std::sync::Arc<lake::decoder::Decoder>,
    /// The source's `appId` in the Delta log, and the range's end.
    app: String,
    through: i64,
    intent: lake::position::Intent,
    input_bytes: u64,
    decode_time: std::time::Duration,
    dead_codes: std::collections::BTreeMap<&'static str, u64>,
    newest_kafka_timestamp_micros: Option<i64>,
    backlog: Option<u64>,
    bronze_rows: u64,
    dead_letter_rows: u64,
    finished: Vec<write::Finished>,
    /// The tables still to commit to.
    layers: Vec<Layer>,
    /// The log holds another range of the source: another writer owns it.
    lost: bool,
}

impl<'a> Work<'a> {
    /// Checks that `batch` is exactly the open intent of `state` and
    /// finishes its rows.
    fn finish(state: &'a mut Versioned, mut batch: MicroBatch) -> anyhow::Result<Work<'a>> {
        let Some(intent) = state.checkpoint.intent.clone() else {
            anyhow::bail!("no open intent for {}", state.checkpoint.source);
        };
        let source = &state.checkpoint.source;
        // An invariant, not bad data: the replay must cover exactly the intent.
        anyhow::ensure!(
            batch.range.as_ref() == Some(&intent.range) && batch.messages == intent.messages,
            "replay of {source} does not match its intent in {}: intent {} ({} messages), read {} ({} messages)",
            source.checkpoint_key(),
            intent.range,
            intent.messages,
            batch.range.as_ref().map_or("nothing".to_string(), |r| r.to_string()),
            batch.messages,
        );
        // Counted before finishing, which empties the builders.
        let (bronze_rows, dead_letter_rows) = (batch.bronze_rows(), batch.dead_letter_rows());
        let dead_codes = batch.dead_codes();
        let finished = batch.finish()?;
        // Each table the micro-batch has rows for; bronze alone (a commit
        // with only the txn) when it has none, e.g. only empty arrays, so
        // that the log still records the range.
        let mut layers: Vec<Layer> = [Layer::Bronze, Layer::DeadLetters]
            .into_iter()
            .filter(|layer| finished.iter().any(|f| f.layer == *layer))
            .collect();
        if layers.is_empty() {
            layers.push(Layer::Bronze);
        }
        Ok(Work {
            app: source.tag(),
            through: layout::txn_version(&intent),
            input_bytes: batch.input_bytes,
            decode_time: batch.decode_time,
            dead_codes,
            newest_kafka_timestamp_micros: batch.newest_kafka_timestamp_micros,
            backlog: batch.backlog,
            decoder: batch.decoder.clone(),
            intent,
            state,
            bronze_rows,
            dead_letter_rows,
            finished,
            layers,
            lost: false,
        })
    }
}

/// The metrics of one commit of `table`: what the `committed` sources
/// brought, how many sources were `lost` to another writer, and how long
/// each stage took.
fn count_commit(table: &str, committed: &[&Work], lost: usize, stages: &[(&str, f64)]) {
    let metrics = metrics();
    if lost > 0 {
        metrics
            .lost_ownership
            .with_label_values(&[table])
            .inc_by(lost as u64);
    }
    if committed.is_empty() {
        return;
    }
    for (stage, seconds) in stages {
        metrics
            .commit_seconds
            .with_label_values(&[table, stage])
            .observe(*seconds);
    }
    for w in committed {
        metrics.micro_batches.with_label_values(&[table]).inc();
        metrics
            .messages
            .with_label_values(&[table])
            .inc_by(w.intent.messages);
        metrics
            .records
            .with_label_values(&[table, "bronze"])
            .inc_by(w.bronze_rows);
        metrics
            .records
            .with_label_values(&[table, "dead_letter"])
            .inc_by(w.dead_letter_rows);
        for (code, n) in &w.dead_codes {
            metrics
                .dead_letters
                .with_label_values(&[table, code])
                .inc_by(*n);
        }
        if let Some(at) = w.newest_kafka_timestamp_micros {
            metrics.committed_event(table, at);
        }
    }
}

/// The sources in `work` still to commit to `layer`.
fn members<'w>(work: &'w [Work<'_>], layer: Layer) -> Vec<&'w Work<'w>> {
    work.iter()
        .filter(|w| !w.lost && w.layers.contains(&layer))
        .collect()
}

/// The files of one table for a set of sources.
struct Encoding {
    /// The sources (`appId`s) whose rows the files hold.
    sources: Vec<String>,
    files: Vec<Encoded>,
}

impl Encoding {
    /// The `layer` files of the sources in `work` still to commit to it.
    fn of(
        table: &str,
        layer: Layer,
        work: &[Work],
        attempt: &str,
        threads: usize,
    ) -> anyhow::Result<Encoding> {
        let members = members(work, layer);
        let tag = layout::batch_tag(
            &members
                .iter()
                .map(|w| (&w.state.checkpoint.source, &w.intent))
                .collect::<Vec<_>>(),
        );
        let batches: Vec<(&lake::decoder::Decoder, &[write::Finished])> = members
            .iter()
            .map(|w| (w.decoder.as_ref(), w.finished.as_slice()))
            .collect();
        Ok(Encoding {
            sources: members.iter().map(|w| w.app.clone()).collect(),
            files: write::encode(table, layer, &batches, (&tag, attempt), threads)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Lineage;
    use lake::layout::SourceId;
    use lake::position::Range;
    use lake::LakeArgs;

    const EVENT: &str = r#"{"event_id":"0b6f9a3e-2a7c-4c4e-9d8e-5d0b8a1f2c3d","user_id":1,"event_type":"click","event_ts":"2026-11-22T10:00:00Z","page":"/"}"#;

    fn events() -> std::sync::Arc<lake::decoder::Decoder> {
        std::sync::Arc::new(lake::decoder::Decoder::new(
            lake::contract::Contract::events(),
        ))
    }

    async fn committer(dir: &std::path::Path) -> (Committer, Tables) {
        let lake = Lake::open(&LakeArgs {
            lake_url: dir.display().to_string(),
            ..LakeArgs::default()
        })
        .expect("local lake");
        let tables = Tables::open(&lake, &events()).await.expect("tables");
        let committer = Committer {
            lake,
            writer: "test".into(),
            upload_concurrency: 2,
            workers: Workers::new(2),
        };
        (committer, tables)
    }

    fn p0() -> SourceId {
        SourceId::kafka("events", "events", 0)
    }

    /// Offsets `first..first+n` of partition 0: one valid event and one
    /// corrupt batch each.
    fn batch(first: i64, n: i64) -> MicroBatch {
        batch_of(p0(), first, n)
    }

    fn batch_of(source: SourceId, first: i64, n: i64) -> MicroBatch {
        let mut batch = MicroBatch::new(source, events());
        for offset in first..first + n {
            let payload = if offset % 2 == 0 {
                format!("[{EVENT}]")
            } else {
                "[{".to_string()
            };
            batch.add_message(Range::offset(offset), payload.len());
            let lineage = Lineage {
                offset: Some(offset),
                ..Default::default()
            };
            batch.decode(payload.as_bytes(), &lineage, &Default::default());
        }
        batch
    }

    /// Per table: the snapshot's (file, rows) and the source's txn version.
    async fn snapshot(tables: &Tables, layer: Layer) -> (Vec<(String, u64)>, Option<i64>) {
        let mut table = tables.of(layer).lock().await;
        table.refresh().await.expect("refresh");
        let mut files: Vec<(String, u64)> = table
            .files()
            .await
            .expect("files")
            .into_iter()
            .map(|f| (f.path, f.rows))
            .collect();
        files.sort();
        let txn = table.committed_through(&p0().tag()).await.expect("txn");
        (files, txn)
    }

    #[tokio::test]
    async fn commit_adds_one_file_per_table_with_the_ranges_txn() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c, tables) = committer(dir.path()).await;
        let mut state = load_checkpoint(&c.lake, &p0()).await.expect("load");
        assert_eq!(
            c.commit(&tables, vec![(&mut state, batch(0, 4))])
                .await
                .expect("commit")[0],
            Outcome::Committed
        );
        let reread = load_checkpoint(&c.lake, &p0()).await.expect("load");
        assert_eq!(reread.checkpoint.next_offset(), Some(4));
        assert_eq!(reread.checkpoint.intent, None);
        assert_eq!(reread.checkpoint.totals.bronze_rows, 2);
        assert_eq!(reread.checkpoint.totals.dead_letter_rows, 2);
        let (bronze, txn) = snapshot(&tables, Layer::Bronze).await;
        assert_eq!(txn, Some(3), "txn = the range's last offset");
        assert_eq!(bronze.len(), 1);
        assert!(
            bronze[0].0.starts_with(
                "event_date=2026-11-22/kafka-events-p0-00000000000000000000-00000000000000000003-"
            ),
            "{bronze:?}"
        );
        assert_eq!(bronze[0].1, 2);
        let (dead, txn) = snapshot(&tables, Layer::DeadLetters).await;
        assert_eq!((dead.len(), dead[0].1, txn), (1, 2, Some(3)));
        let today = chrono::Utc::now()
            .format("event_date=%Y-%m-%d/")
            .to_string();
        assert!(dead[0].0.starts_with(&today), "{dead:?}");
    }

    #[tokio::test]
    async fn a_replayed_range_is_committed_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c, tables) = committer(dir.path()).await;
        let mut state = load_checkpoint(&c.lake, &p0()).await.expect("load");
        c.commit(&tables, vec![(&mut state, batch(0, 2))])
            .await
            .expect("commit");
        // A crash after the intent of offsets 2..=5 and before its data.
        let range = Range::offset(2).through(Range::offset(5));
        let crashed = checkpoint::write(
            &c.lake,
            &state,
            state.checkpoint.with_intent(range, 4, "c"),
            "crashed",
        )
        .await
        .expect("intent");
        // A replay over a different range is refused: it would duplicate or lose rows.
        let mut wrong = crashed.clone();
        assert!(c
            .finish(&tables, vec![(&mut wrong, batch(2, 3))])
            .await
            .is_err());
        let mut replay = load_checkpoint(&c.lake, &p0()).await.expect("load");
        assert_eq!(
            c.finish(&tables, vec![(&mut replay, batch(2, 4))])
                .await
                .expect("replay")[0],
            Outcome::Committed
        );
        assert_eq!(replay.checkpoint.next_offset(), Some(6));
        let (bronze, txn) = snapshot(&tables, Layer::Bronze).await;
        assert_eq!((bronze.len(), txn), (2, Some(5)));
        // The writer that crashed is a zombie now: its Delta commits find the
        // range in the log, and its checkpoint write is refused.
        let mut zombie = crashed;
        assert_eq!(
            c.finish(&tables, vec![(&mut zombie, batch(2, 4))])
                .await
                .expect("zombie")[0],
            Outcome::Lost
        );
        assert_eq!(snapshot(&tables, Layer::Bronze).await, (bronze, Some(5)));
        let rows: u64 = snapshot(&tables, Layer::DeadLetters)
            .await
            .0
            .iter()
            .map(|(_, rows)| rows)
            .sum();
        assert_eq!(rows, 3, "dead letters of offsets 1, 3 and 5, once each");
        assert_eq!(
            load_checkpoint(&c.lake, &p0())
                .await
                .expect("load")
                .checkpoint
                .next_offset(),
            Some(6)
        );
    }

    /// A crash after the Delta commits and before the checkpoint: the
    /// replay commits nothing more and only moves the checkpoint.
    #[tokio::test]
    async fn a_crash_after_the_delta_commit_is_finished_by_the_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c, tables) = committer(dir.path()).await;
        let mut state = load_checkpoint(&c.lake, &p0()).await.expect("load");
        c.commit(&tables, vec![(&mut state, batch(0, 4))])
            .await
            .expect("commit");
        // Roll the checkpoint back to the intent, as if the crash was just
        // before step 4.
        let mut before = load_checkpoint(&c.lake, &p0()).await.expect("load");
        let mut rolled = Checkpoint::initial(p0());
        rolled.intent = Some(lake::position::Intent {
            seq: 0,
            range: Range::offset(0).through(Range::offset(3)),
            messages: 4,
            contract: None,
        });
        before = checkpoint::write(&c.lake, &before, rolled, "crashed")
            .await
            .expect("roll back");
        let versions = (
            tables.bronze.lock().await.version(),
            tables.dead_letters.lock().await.version(),
        );
        assert_eq!(
            c.finish(&tables, vec![(&mut before, batch(0, 4))])
                .await
                .expect("replay")[0],
            Outcome::Committed
        );
        assert_eq!(
            (
                tables.bronze.lock().await.refresh().await.expect("v"),
                tables.dead_letters.lock().await.refresh().await.expect("v"),
            ),
            versions,
            "no new commit"
        );
        let reread = load_checkpoint(&c.lake, &p0()).await.expect("load");
        assert_eq!(reread.checkpoint.next_offset(), Some(4));
        assert_eq!(reread.checkpoint.totals.bronze_rows, 2);
    }

    /// Two partitions committed together: one Delta version per table with
    /// a txn each and one file per table and date holding both. A stale
    /// process whose group holds a range the log already has (a zombie's
    /// replayed range) commits the other partition alone, and nothing twice.
    #[tokio::test]
    async fn partitions_share_a_commit_and_its_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c, tables) = committer(dir.path()).await;
        let p1 = SourceId::kafka("events", "events", 1);
        let mut s0 = load_checkpoint(&c.lake, &p0()).await.expect("load");
        let mut s1 = load_checkpoint(&c.lake, &p1).await.expect("load");
        let outcomes = c
            .commit(
                &tables,
                vec![
                    (&mut s0, batch(0, 4)),
                    (&mut s1, batch_of(p1.clone(), 0, 2)),
                ],
            )
            .await
            .expect("commit");
        assert_eq!(outcomes, [Outcome::Committed, Outcome::Committed]);
        let history = tables
            .bronze
            .lock()
            .await
            .history(1)
            .await
            .expect("history");
        assert_eq!(
            (
                history[0].version,
                history[0].files_added,
                history[0].rows_added
            ),
            (1, 1, 3)
        );
        assert_eq!(history[0].transactions, [(p0().tag(), 3), (p1.tag(), 1)]);
        let (dead, _) = snapshot(&tables, Layer::DeadLetters).await;
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert_eq!(dead[0].1, 3);
        assert!(
            dead[0].0.contains("/kafka-events-p0-and-1-more-"),
            "{dead:?}"
        );

        // A second process whose snapshot predates p0's next commit.
        let (_, stale) = committer(dir.path()).await;
        for layer in [Layer::Bronze, Layer::DeadLetters] {
            stale
                .of(layer)
                .lock()
                .await
                .committed_through(&p0().tag())
                .await
                .expect("txn");
            stale
                .of(layer)
                .lock()
                .await
                .committed_through(&p1.tag())
                .await
                .expect("txn");
        }
        // A zombie of p0 holding offsets 4..=5 under an intent the owner
        // then commits itself.
        let mut zombie = s0.clone();
        zombie.checkpoint = zombie.checkpoint.with_intent(
            Range::offset(4).through(Range::offset(5)),
            2,
            &events().fingerprint,
        );
        c.commit(&tables, vec![(&mut s0, batch(4, 2))])
            .await
            .expect("p0 alone");
        // The stale process replays p0's range with p1's next one.
        let next = s1
            .checkpoint
            .with_intent(Range::offset(2).through(Range::offset(5)), 4, "c");
        s1 = checkpoint::write(&c.lake, &s1, next, "test")
            .await
            .expect("intent");
        let outcomes = c
            .finish(
                &stale,
                vec![
                    (&mut zombie, batch(4, 2)),
                    (&mut s1, batch_of(p1.clone(), 2, 4)),
                ],
            )
            .await
            .expect("finish");
        assert_eq!(
            outcomes,
            [Outcome::Lost, Outcome::Committed],
            "p0's checkpoint moved on"
        );
        let (bronze, txn) = snapshot(&tables, Layer::Bronze).await;
        let rows: u64 = bronze.iter().map(|(_, rows)| rows).sum();
        assert_eq!(
            (rows, txn),
            (3 + 1 + 2, Some(5)),
            "every valid event once: {bronze:?}"
        );
        let history = tables
            .bronze
            .lock()
            .await
            .history(1)
            .await
            .expect("history");
        assert_eq!(history[0].transactions, [(p1.tag(), 5)]);
    }
}
