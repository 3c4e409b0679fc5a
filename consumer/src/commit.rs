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
use lake::Lake;
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::retry::{retry, Attempts, Transient};
use crate::write::{self, Encoded, Layer, MicroBatch};

/// Settings of the commit step.
#[derive(Debug, Clone)]
pub struct Committer {
    pub lake: Lake,
    /// Names this process in checkpoints.
    pub writer: String,
    pub upload_concurrency: usize,
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
    /// after a crash. All parts' files go into one Delta commit per table,
    /// with a `txn` per source.
    pub async fn finish(
        &self,
        tables: &Tables,
        parts: Vec<Part<'_>>,
    ) -> anyhow::Result<Vec<Outcome>> {
        let encoding = std::time::Instant::now();
        // Random, so two attempts (a zombie's and its replay) never share a name.
        let attempt = uuid::Uuid::new_v4().simple().to_string();
        let mut work = Vec::with_capacity(parts.len());
        for (state, batch) in parts {
            work.push(Work::encode(state, batch, &attempt[..12])?);
        }
        let encode_ms = encoding.elapsed().as_millis() as u64;
        // A replay skips the tables whose log already has its range.
        for layer in [Layer::Bronze, Layer::DeadLetters] {
            let table = tables.of(layer);
            let done = retry("reading a Delta log", Attempts::Forever, || async {
                let mut table = table.lock().await;
                let mut done = Vec::new();
                for w in work.iter().filter(|w| w.layers.contains(&layer)) {
                    let through = table
                        .committed_through(&w.app)
                        .await
                        .map_err(DeltaFailure)?;
                    done.push((w.app.clone(), through.is_some_and(|v| v >= w.through)));
                }
                Ok::<_, DeltaFailure>(done)
            })
            .await?;
            for w in work.iter_mut() {
                if done.iter().any(|(app, done)| *app == w.app && *done) {
                    w.layers.retain(|l| *l != layer);
                }
            }
        }
        let uploads: Vec<&Encoded> = work.iter().flat_map(Work::uploads).collect();
        let files = uploads.len();
        let uploading = std::time::Instant::now();
        retry("upload", Attempts::Forever, || {
            write::upload(&self.lake, &uploads, self.upload_concurrency)
        })
        .await?;
        let upload_ms = uploading.elapsed().as_millis() as u64;
        let committing = std::time::Instant::now();
        let mut versions = Vec::new();
        for layer in [Layer::Bronze, Layer::DeadLetters] {
            let members: Vec<usize> = (0..work.len())
                .filter(|&i| !work[i].lost && work[i].layers.contains(&layer))
                .collect();
            if members.is_empty() {
                continue;
            }
            let added: Vec<Vec<delta::DataFile>> =
                members.iter().map(|&i| work[i].added(layer)).collect();
            let appends: Vec<delta::Append> = members
                .iter()
                .zip(&added)
                .map(|(&i, files)| delta::Append {
                    source: &work[i].app,
                    through: work[i].through,
                    files,
                })
                .collect();
            let table = tables.of(layer);
            let committed = retry("Delta commit", Attempts::Forever, || async {
                table
                    .lock()
                    .await
                    .append_all(&appends)
                    .await
                    .map_err(DeltaFailure)
            })
            .await?;
            for (&i, committed) in members.iter().zip(committed) {
                match committed {
                    delta::Committed::Version(v) => {
                        if !versions.contains(&(layer, v)) {
                            versions.push((layer, v));
                        }
                    }
                    delta::Committed::Already => {}
                    delta::Committed::Lost { committed } => {
                        let w = &mut work[i];
                        warn!(source = %w.state.checkpoint.source, through = w.through, ?committed, "the Delta log holds another range of this source; giving up this source");
                        w.lost = true;
                    }
                }
            }
        }
        let delta_commit_ms = committing.elapsed().as_millis() as u64;
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
        if let Some(first) = committed.first() {
            let version = |layer| versions.iter().find(|(l, _)| *l == layer).map(|(_, v)| *v);
            info!(
                table = first.state.checkpoint.source.table(),
                sources = committed.len(),
                first_source = %first.state.checkpoint.source,
                messages = committed.iter().map(|w| w.messages).sum::<u64>(),
                bronze_rows = committed.iter().map(|w| w.bronze_rows).sum::<u64>(),
                dead_letter_rows = committed.iter().map(|w| w.dead_letter_rows).sum::<u64>(),
                files,
                bronze_version = version(Layer::Bronze),
                dead_letters_version = version(Layer::DeadLetters),
                encode_ms,
                upload_ms,
                delta_commit_ms,
                "micro-batch committed"
            );
        }
        Ok(outcomes)
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

/// One source's micro-batch between encoding and its checkpoint.
struct Work<'a> {
    state: &'a mut Versioned,
    /// The source's `appId` in the Delta log, and the range's end.
    app: String,
    through: i64,
    messages: u64,
    bronze_rows: u64,
    dead_letter_rows: u64,
    files: Vec<Encoded>,
    /// The tables still to commit to.
    layers: Vec<Layer>,
    /// The log holds another range of the source: another writer owns it.
    lost: bool,
}

impl<'a> Work<'a> {
    /// Checks that `batch` is exactly the open intent of `state` and encodes it.
    fn encode(
        state: &'a mut Versioned,
        mut batch: MicroBatch,
        attempt: &str,
    ) -> anyhow::Result<Work<'a>> {
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
        // Counted before encoding, which empties the builders.
        let (bronze_rows, dead_letter_rows) = (batch.bronze_rows(), batch.dead_letter_rows());
        let files = batch.encode(&layout::range_tag(&intent), attempt)?;
        // Each table the micro-batch has rows for; bronze alone (a commit
        // with only the txn) when it has none, e.g. only empty arrays, so
        // that the log still records the range.
        let mut layers: Vec<Layer> = [Layer::Bronze, Layer::DeadLetters]
            .into_iter()
            .filter(|layer| files.iter().any(|f| f.layer == *layer))
            .collect();
        if layers.is_empty() {
            layers.push(Layer::Bronze);
        }
        Ok(Work {
            app: source.tag(),
            through: layout::txn_version(&intent),
            messages: intent.messages,
            state,
            bronze_rows,
            dead_letter_rows,
            files,
            layers,
            lost: false,
        })
    }

    /// The files to upload: those of the tables still to commit to.
    fn uploads(&self) -> impl Iterator<Item = &Encoded> {
        self.files.iter().filter(|f| self.layers.contains(&f.layer))
    }

    /// The files of `layer`, as its Delta commit adds them.
    fn added(&self, layer: Layer) -> Vec<delta::DataFile> {
        self.files
            .iter()
            .filter(|f| f.layer == layer)
            .map(|f| f.file.clone())
            .collect()
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
        };
        (committer, tables)
    }

    fn p0() -> SourceId {
        SourceId::kafka("events", "events", 0)
    }

    /// Offsets `first..first+n`: one valid event and one corrupt batch each.
    fn batch(first: i64, n: i64) -> MicroBatch {
        let mut batch = MicroBatch::new(p0(), events());
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
            .expect("commit")[0];
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
            .expect("commit")[0];
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
}
