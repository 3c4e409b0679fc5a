//! The delivery protocol of DESIGN §5 for one micro-batch of one source:
//! intent → data → commit, each checkpoint step a conditional write.
//!
//! Transient failures (S3 errors, timeouts) are retried with backoff; a
//! refused conditional write means another consumer owns the source now, and
//! is returned as [`Outcome::Lost`] so the caller stops writing for it.

use std::time::Duration;

use lake::checkpoint::{self, CheckpointError, Intent, Versioned};
use lake::layout;
use lake::Lake;
use tracing::{info, warn};

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
        let range = &batch.range;
        let intent = Intent {
            seq: state.checkpoint.totals.micro_batches,
            first_offset: range.first_offset,
            last_offset: range.last_offset,
            first_key: range.first_key.clone(),
            last_key: range.last_key.clone(),
            messages: range.messages,
        };
        let next = state.checkpoint.with_intent(intent);
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
        let expected = (
            intent.first_offset,
            intent.last_offset,
            intent.first_key.as_deref(),
            intent.last_key.as_deref(),
            intent.messages,
        );
        let got = (
            batch.range.first_offset,
            batch.range.last_offset,
            batch.range.first_key.as_deref(),
            batch.range.last_key.as_deref(),
            batch.range.messages,
        );
        // An invariant, not bad data: the replay must cover exactly the intent.
        anyhow::ensure!(
            expected == got,
            "replay of {source} does not match its intent in {}: intent {expected:?}, read {got:?}",
            source.checkpoint_key()
        );
        let range_tag = layout::range_tag(
            &source,
            intent.seq,
            intent.first_offset.unwrap_or_default(),
            intent.last_offset.unwrap_or_default(),
        );
        let files = batch.encode(&range_tag)?;
        let mut attempt = 0u32;
        loop {
            match write::upload(&self.lake, &files, self.upload_concurrency).await {
                Ok(()) => break,
                Err(e) => {
                    attempt += 1;
                    warn!(source = %source, attempt, error = %e, "upload failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        let next = state
            .checkpoint
            .committed(batch.bronze_rows, batch.dead_letter_rows);
        let outcome = self.write_checkpoint(state, next).await?;
        if outcome == Outcome::Committed {
            info!(
                source = %source,
                seq = intent.seq,
                messages = intent.messages,
                bronze_rows = batch.bronze_rows,
                dead_letter_rows = batch.dead_letter_rows,
                files = files.len(),
                "micro-batch committed"
            );
        }
        Ok(outcome)
    }

    /// A conditional checkpoint write, retried while the store fails.
    async fn write_checkpoint(
        &self,
        state: &mut Versioned,
        next: lake::checkpoint::Checkpoint,
    ) -> anyhow::Result<Outcome> {
        let mut next = next;
        next.write_token = checkpoint::new_token();
        let mut attempt = 0u32;
        loop {
            match checkpoint::write(&self.lake, state, next.clone(), &self.writer).await {
                Ok(written) => {
                    *state = written;
                    return Ok(Outcome::Committed);
                }
                Err(CheckpointError::Lost { source_id, key }) => {
                    warn!(source = %source_id, key, "checkpoint changed by another writer; giving up this source");
                    return Ok(Outcome::Lost);
                }
                Err(e @ CheckpointError::Invalid { .. }) => return Err(e.into()),
                Err(e) => {
                    attempt += 1;
                    warn!(attempt, error = %e, "checkpoint write failed; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
    }
}

/// Reads a checkpoint, retrying while the store fails (not when it is invalid).
pub async fn load_checkpoint(lake: &Lake, source: &layout::SourceId) -> anyhow::Result<Versioned> {
    let mut attempt = 0u32;
    loop {
        match checkpoint::load(lake, source).await {
            Ok(v) => return Ok(v),
            Err(e @ CheckpointError::Invalid { .. }) => return Err(e.into()),
            Err(e) => {
                attempt += 1;
                if attempt >= 8 {
                    return Err(e.into());
                }
                warn!(attempt, error = %e, "checkpoint read failed; retrying");
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
}

/// Runs `op` until it succeeds, with backoff: for reads of the source that
/// fail transiently (S3 5xx, timeouts, resets) after the store's own retries.
pub async fn retry<T, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut attempt = 0u32;
    loop {
        match op().await {
            Ok(value) => return value,
            Err(e) => {
                attempt += 1;
                warn!(attempt, error = %format!("{e:#}"), "{what} failed; retrying");
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
}

/// Exponential backoff from 200 ms, capped at 30 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(8))).min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode_batch, Lineage};
    use lake::layout::SourceId;
    use lake::LakeArgs;

    const EVENT: &str = r#"{"event_id":"0b6f9a3e-2a7c-4c4e-9d8e-5d0b8a1f2c3d","user_id":1,"event_type":"click","event_ts":"2026-11-22T10:00:00Z","page":"/"}"#;

    fn committer(dir: &std::path::Path) -> Committer {
        let lake = Lake::open(&LakeArgs {
            lake_url: dir.display().to_string(),
            aws_endpoint_url: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_region: "us-east-1".into(),
        })
        .expect("local lake");
        Committer {
            lake,
            writer: "test".into(),
            upload_concurrency: 2,
        }
    }

    fn p0() -> SourceId {
        SourceId::Kafka {
            topic: "events".into(),
            partition: 0,
        }
    }

    /// Offsets `first..first+n`: one valid event and one corrupt batch each.
    fn batch(first: i64, n: i64) -> MicroBatch {
        let mut batch = MicroBatch::new(p0());
        for offset in first..first + n {
            let payload = if offset % 2 == 0 {
                format!("[{EVENT}]")
            } else {
                "[{".to_string()
            };
            batch.add_message(Some(offset), None, payload.len());
            let lineage = Lineage {
                offset: Some(offset),
                ..Default::default()
            };
            decode_batch(
                payload.as_bytes(),
                &lineage,
                &Default::default(),
                &mut batch,
            );
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
        assert_eq!(reread.checkpoint.next_offset, Some(4));
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
        let intent = Intent {
            seq: 1,
            first_offset: Some(2),
            last_offset: Some(5),
            first_key: None,
            last_key: None,
            messages: 4,
        };
        let opened = checkpoint::write(
            &c.lake,
            &crashed,
            crashed.checkpoint.with_intent(intent),
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
        assert_eq!(replay.checkpoint.next_offset, Some(6));
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
                .next_offset,
            Some(6)
        );
    }
}
