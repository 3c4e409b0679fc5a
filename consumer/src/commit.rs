//! The delivery protocol of docs/DESIGN.md §5 for one micro-batch of one
//! source: intent → data → commit, each checkpoint step a conditional write.
//!
//! Transient failures (S3 errors, timeouts) are retried with backoff
//! ([`crate::retry`]); a refused conditional write means another consumer owns
//! the source now, and is returned as [`Outcome::Lost`] so the caller stops
//! writing for it.

use lake::checkpoint::{self, Checkpoint, CheckpointError, Versioned};
use lake::layout;
use lake::Lake;
use tracing::{info, warn};

use crate::retry::{retry, Attempts};
use crate::write::{self, MicroBatch};

/// Settings of the commit step.
#[derive(Debug, Clone)]
pub struct Committer {
    pub lake: Lake,
    /// Names this process in checkpoints.
    pub writer: String,
    pub upload_concurrency: usize,
}

#[derive(Debug, PartialEq)]
pub enum Outcome {
    Committed,
    /// Another writer changed the checkpoint: this process must stop writing for the source.
    Lost,
}

impl Committer {
    /// Writes `batch` under a new intent and commits it; `state` is the
    /// checkpoint as last read or written, updated in place.
    pub async fn commit(
        &self,
        state: &mut Versioned,
        batch: MicroBatch,
    ) -> anyhow::Result<Outcome> {
        let Some(range) = batch.range.clone() else {
            anyhow::bail!(
                "an empty micro-batch of {} has nothing to commit",
                batch.source
            );
        };
        let next = state
            .checkpoint
            .with_intent(range, batch.messages, &batch.decoder.fingerprint);
        match self.write_checkpoint(state, next).await? {
            Outcome::Committed => {}
            Outcome::Lost => return Ok(Outcome::Lost),
        }
        self.finish(state, batch).await
    }

    /// Steps 2 and 3 for the open intent in `state`, whose exact range `batch`
    /// holds: on a first attempt, and again on a replay after a crash.
    pub async fn finish(
        &self,
        state: &mut Versioned,
        mut batch: MicroBatch,
    ) -> anyhow::Result<Outcome> {
        let Some(intent) = state.checkpoint.intent.clone() else {
            anyhow::bail!("no open intent for {}", state.checkpoint.source);
        };
        let source = state.checkpoint.source.clone();
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
        let files = batch.encode(&layout::range_tag(&intent))?;
        retry("upload", Attempts::Forever, || {
            write::upload(&self.lake, &files, self.upload_concurrency)
        })
        .await?;
        let next = state.checkpoint.committed(bronze_rows, dead_letter_rows);
        let outcome = self.write_checkpoint(state, next).await?;
        if outcome == Outcome::Committed {
            info!(
                source = %source,
                seq = intent.seq,
                messages = intent.messages,
                bronze_rows,
                dead_letter_rows,
                files = files.len(),
                "micro-batch committed"
            );
        }
        Ok(outcome)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Lineage;
    use lake::layout::SourceId;
    use lake::position::Range;
    use lake::LakeArgs;

    const EVENT: &str = r#"{"event_id":"0b6f9a3e-2a7c-4c4e-9d8e-5d0b8a1f2c3d","user_id":1,"event_type":"click","event_ts":"2026-11-22T10:00:00Z","page":"/"}"#;

    fn committer(dir: &std::path::Path) -> Committer {
        let lake = Lake::open(&LakeArgs {
            lake_url: dir.display().to_string(),
            ..LakeArgs::default()
        })
        .expect("local lake");
        Committer {
            lake,
            writer: "test".into(),
            upload_concurrency: 2,
        }
    }

    fn p0() -> SourceId {
        SourceId::kafka("events", "events", 0)
    }

    /// Offsets `first..first+n`: one valid event and one corrupt batch each.
    fn batch(first: i64, n: i64) -> MicroBatch {
        let events = std::sync::Arc::new(lake::decoder::Decoder::new(
            lake::contract::Contract::events(),
        ));
        let mut batch = MicroBatch::new(p0(), events);
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

    fn files(dir: &std::path::Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("read_dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "parquet") {
                    found.push(
                        path.strip_prefix(dir)
                            .expect("prefix")
                            .display()
                            .to_string(),
                    );
                }
            }
        }
        found.sort();
        found
    }

    #[tokio::test]
    async fn commit_advances_the_checkpoint_and_writes_range_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = committer(dir.path());
        let mut state = load_checkpoint(&c.lake, &p0()).await.expect("load");
        assert_eq!(
            c.commit(&mut state, batch(0, 4)).await.expect("commit"),
            Outcome::Committed
        );
        let reread = load_checkpoint(&c.lake, &p0()).await.expect("load");
        assert_eq!(reread.checkpoint.next_offset(), Some(4));
        assert_eq!(reread.checkpoint.intent, None);
        assert_eq!(reread.checkpoint.totals.bronze_rows, 2);
        assert_eq!(reread.checkpoint.totals.dead_letter_rows, 2);
        assert_eq!(
            files(dir.path()),
            [
                "bronze/events/event_date=2026-11-22/kafka-events-p0-00000000000000000000-00000000000000000003.parquet",
                "dead_letters/events/kafka-events-p0/00000000000000000000-00000000000000000003.parquet",
            ]
        );
    }

    #[tokio::test]
    async fn replaying_an_open_intent_rewrites_the_same_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = committer(dir.path());
        let mut state = load_checkpoint(&c.lake, &p0()).await.expect("load");
        c.commit(&mut state, batch(0, 2)).await.expect("commit");
        let before = files(dir.path());
        // A crash after the intent of offsets 2..=5 and before its data.
        let mut crashed = state.clone();
        let range = Range::offset(2).through(Range::offset(5));
        let opened = checkpoint::write(
            &c.lake,
            &crashed,
            crashed.checkpoint.with_intent(range, 4, "c"),
            "crashed",
        )
        .await
        .expect("intent");
        crashed = opened;
        // A replay over a different range is refused: it would duplicate or lose rows.
        let mut wrong = crashed.clone();
        assert!(c.finish(&mut wrong, batch(2, 3)).await.is_err());
        let mut replay = load_checkpoint(&c.lake, &p0()).await.expect("load");
        assert_eq!(
            c.finish(&mut replay, batch(2, 4)).await.expect("replay"),
            Outcome::Committed
        );
        assert_eq!(replay.checkpoint.next_offset(), Some(6));
        assert_eq!(files(dir.path()).len(), before.len() + 2);
        // The writer that crashed is a zombie now: its conditional write is refused.
        assert_eq!(
            c.finish(&mut crashed, batch(2, 4)).await.expect("zombie"),
            Outcome::Lost
        );
        assert_eq!(
            load_checkpoint(&c.lake, &p0())
                .await
                .expect("load")
                .checkpoint
                .next_offset(),
            Some(6)
        );
    }
}
