//! The checkpoint of one source (DESIGN §5): human-readable JSON under
//! `_checkpoints/`, replaced only by conditional writes so that a stale or
//! zombie writer is refused instead of overwriting a newer state.
//!
//! S3 uses If-None-Match (first write) and If-Match on the ETag. The local
//! filesystem has no conditional put, so a local lake compares a content hash
//! under an exclusive file lock, which serialises the processes of one machine.

use std::io::Write;

use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use crate::layout::SourceId;
use crate::store::{Lake, Location};

pub const FORMAT: u32 = 1;

/// Progress of one source. Invariant: every record before the position is in
/// bronze or dead letters exactly once; nothing at or after it is, except the
/// objects of an open intent, which a replay rewrites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: u32,
    pub source: SourceId,
    /// Kafka: the offset the next micro-batch starts at (one past the last committed message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<i64>,
    /// Files source: the last raw object key committed; the next batch starts after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_key: Option<String>,
    /// The micro-batch being written, recorded before any of its data.
    pub intent: Option<Intent>,
    pub totals: Totals,
    pub updated_at: String,
    pub writer: String,
    /// Unique per write: lets a writer recognise its own write when the
    /// response to a successful conditional PUT was lost and the retry got 412.
    pub write_token: String,
}

/// The exact input of one micro-batch, so it can be replayed over the same range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// Sequence number of the micro-batch within its source.
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_offset: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_offset: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_key: Option<String>,
    /// Messages (or raw objects) in the range.
    pub messages: u64,
}

/// Cumulative counts of committed micro-batches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub micro_batches: u64,
    pub messages: u64,
    pub bronze_rows: u64,
    pub dead_letter_rows: u64,
}

impl Checkpoint {
    /// The state of a source nothing has been committed for.
    pub fn initial(source: SourceId) -> Checkpoint {
        let (next_offset, after_key) = match &source {
            SourceId::Kafka { .. } => (Some(0), None),
            SourceId::Files { .. } => (None, None),
        };
        Checkpoint {
            format: FORMAT,
            source,
            next_offset,
            after_key,
            intent: None,
            totals: Totals::default(),
            updated_at: String::new(),
            writer: String::new(),
            write_token: String::new(),
        }
    }

    /// Step 1 of the protocol: the same state with the next micro-batch's range.
    pub fn with_intent(&self, intent: Intent) -> Checkpoint {
        let mut next = self.clone();
        next.intent = Some(intent);
        next
    }

    /// Step 3: the intent's range is committed; the position moves past it.
    pub fn committed(&self, bronze_rows: u64, dead_letter_rows: u64) -> Checkpoint {
        let mut next = self.clone();
        if let Some(intent) = next.intent.take() {
            if let Some(last) = intent.last_offset {
                next.next_offset = Some(last + 1);
            }
            if intent.last_key.is_some() {
                next.after_key = intent.last_key.clone();
            }
            next.totals.micro_batches = intent.seq + 1;
            next.totals.messages += intent.messages;
            next.totals.bronze_rows += bronze_rows;
            next.totals.dead_letter_rows += dead_letter_rows;
        }
        next
    }
}

/// A checkpoint and the version it was read or written at.
#[derive(Debug, Clone)]
pub struct Versioned {
    pub checkpoint: Checkpoint,
    /// ETag on S3, content hash on a local lake; `None`: no object yet.
    pub version: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Someone else wrote the checkpoint since we read it: we no longer own the source.
    #[error("lost ownership of {source_id}: checkpoint {key} was changed by another writer")]
    Lost { source_id: SourceId, key: String },
    #[error("checkpoint {key} is not a valid checkpoint: {detail}")]
    Invalid { key: String, detail: String },
    #[error("checkpoint {key}: {detail}")]
    Store { key: String, detail: String },
}

impl CheckpointError {
    fn store(key: &str, e: impl std::fmt::Display) -> Self {
        CheckpointError::Store {
            key: key.to_string(),
            detail: e.to_string(),
        }
    }
}

/// Reads the checkpoint of `source`; a missing object is the initial state.
pub async fn load(lake: &Lake, source: &SourceId) -> Result<Versioned, CheckpointError> {
    let key = source.checkpoint_key();
    let found = match &lake.location {
        Location::Local { root } => {
            let path = root.join(&key);
            match std::fs::read(&path) {
                Ok(bytes) => Some((content_version(&bytes), bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(CheckpointError::store(&key, e)),
            }
        }
        Location::S3 { .. } => match lake.store.get(&Lake::path(&key)).await {
            Ok(result) => {
                let etag = result.meta.e_tag.clone();
                let bytes = result
                    .bytes()
                    .await
                    .map_err(|e| CheckpointError::store(&key, e))?;
                Some((etag.unwrap_or_default(), bytes.to_vec()))
            }
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(CheckpointError::store(&key, e)),
        },
    };
    match found {
        None => Ok(Versioned {
            checkpoint: Checkpoint::initial(source.clone()),
            version: None,
        }),
        Some((version, bytes)) => {
            let checkpoint = parse(&key, &bytes)?;
            if &checkpoint.source != source {
                return Err(CheckpointError::Invalid {
                    key,
                    detail: format!("it belongs to {}, not {source}", checkpoint.source),
                });
            }
            Ok(Versioned {
                checkpoint,
                version: Some(version),
            })
        }
    }
}

pub fn parse(key: &str, bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let checkpoint: Checkpoint =
        serde_json::from_slice(bytes).map_err(|e| CheckpointError::Invalid {
            key: key.to_string(),
            detail: e.to_string(),
        })?;
    if checkpoint.format != FORMAT {
        return Err(CheckpointError::Invalid {
            key: key.to_string(),
            detail: format!(
                "format {} is not supported (expected {FORMAT})",
                checkpoint.format
            ),
        });
    }
    Ok(checkpoint)
}

/// Replaces `previous` with `next` if nobody wrote since `previous` was read.
/// `writer` names this process in the object, for people reading it.
pub async fn write(
    lake: &Lake,
    previous: &Versioned,
    mut next: Checkpoint,
    writer: &str,
) -> Result<Versioned, CheckpointError> {
    let key = next.source.checkpoint_key();
    next.updated_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    next.writer = writer.to_string();
    // One token per logical write, kept across the caller's retries: a retry
    // whose earlier attempt landed (response lost) then recognises it.
    if next.write_token.is_empty() || next.write_token == previous.checkpoint.write_token {
        next.write_token = new_token();
    }
    let mut bytes =
        serde_json::to_vec_pretty(&next).map_err(|e| CheckpointError::store(&key, e))?;
    bytes.push(b'\n');
    let version = match &lake.location {
        Location::Local { root } => {
            let path = root.join(&key);
            let expected = previous.version.clone();
            let bytes = bytes.clone();
            let source = next.source.clone();
            let key2 = key.clone();
            tokio::task::spawn_blocking(move || {
                write_local(&path, expected.as_deref(), &bytes, &source, &key2)
            })
            .await
            .map_err(|e| CheckpointError::store(&key, e))??
        }
        Location::S3 { .. } => {
            let mode = match &previous.version {
                None => PutMode::Create,
                Some(etag) => PutMode::Update(UpdateVersion {
                    e_tag: Some(etag.clone()),
                    version: None,
                }),
            };
            let options = PutOptions {
                mode,
                ..Default::default()
            };
            match lake
                .store
                .put_opts(&Lake::path(&key), PutPayload::from(bytes.clone()), options)
                .await
            {
                Ok(result) => result.e_tag.unwrap_or_default(),
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {
                    // Our own earlier attempt may have landed with its response lost.
                    let current = load(lake, &next.source).await?;
                    if current.checkpoint.write_token == next.write_token {
                        current.version.unwrap_or_default()
                    } else {
                        return Err(CheckpointError::Lost {
                            source_id: next.source.clone(),
                            key,
                        });
                    }
                }
                Err(e) => return Err(CheckpointError::store(&key, e)),
            }
        }
    };
    Ok(Versioned {
        checkpoint: next,
        version: Some(version),
    })
}

fn write_local(
    path: &std::path::Path,
    expected: Option<&str>,
    bytes: &[u8],
    source: &SourceId,
    key: &str,
) -> Result<String, CheckpointError> {
    let io = |e: std::io::Error| CheckpointError::store(key, e);
    let dir = path
        .parent()
        .ok_or_else(|| CheckpointError::store(key, "no parent directory"))?;
    std::fs::create_dir_all(dir).map_err(io)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path.with_extension("lock"))
        .map_err(io)?;
    lock.lock().map_err(io)?;
    let current = match std::fs::read(path) {
        Ok(b) => Some(content_version(&b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    if current.as_deref() != expected {
        return Err(CheckpointError::Lost {
            source_id: source.clone(),
            key: key.to_string(),
        });
    }
    // Write beside, fsync, rename: a crash leaves the old or the new state, never half.
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(content_version(bytes))
}

/// FNV-1a 64 of the content: the local lake's stand-in for an ETag. Each
/// write carries a fresh token, so two writes never share a version.
fn content_version(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= *b as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

pub fn new_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LakeArgs;

    fn local_lake(dir: &std::path::Path) -> Lake {
        Lake::open(&LakeArgs {
            lake_url: dir.display().to_string(),
            aws_endpoint_url: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_region: "us-east-1".into(),
        })
        .expect("local lake opens")
    }

    fn p0() -> SourceId {
        SourceId::Kafka {
            topic: "events".into(),
            partition: 0,
        }
    }

    #[test]
    fn transitions_move_the_position_and_totals() {
        let start = Checkpoint::initial(p0());
        let intent = Intent {
            seq: 0,
            first_offset: Some(0),
            last_offset: Some(9),
            first_key: None,
            last_key: None,
            messages: 10,
        };
        let open = start.with_intent(intent.clone());
        assert_eq!(open.next_offset, Some(0));
        let done = open.committed(95, 5);
        assert_eq!(done.next_offset, Some(10));
        assert_eq!(done.intent, None);
        assert_eq!(
            done.totals,
            Totals {
                micro_batches: 1,
                messages: 10,
                bronze_rows: 95,
                dead_letter_rows: 5
            }
        );
        // Committing without an intent changes nothing.
        assert_eq!(done.committed(1, 1), done);
    }

    #[tokio::test]
    async fn local_conditional_writes_refuse_stale_writers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = local_lake(dir.path());
        let first = load(&lake, &p0()).await.expect("load");
        assert_eq!(first.version, None);
        let a = write(&lake, &first, first.checkpoint.clone(), "a")
            .await
            .expect("create");
        // A second writer that also read "no checkpoint" must lose.
        let err = write(&lake, &first, first.checkpoint.clone(), "b")
            .await
            .expect_err("stale");
        assert!(matches!(err, CheckpointError::Lost { .. }), "{err}");
        let b = write(&lake, &a, a.checkpoint.committed(0, 0), "a")
            .await
            .expect("update");
        let err = write(&lake, &a, a.checkpoint.clone(), "zombie")
            .await
            .expect_err("stale");
        assert!(matches!(err, CheckpointError::Lost { .. }));
        let reread = load(&lake, &p0()).await.expect("load");
        assert_eq!(reread.version, b.version);
        assert_eq!(reread.checkpoint.writer, "a");
    }

    #[tokio::test]
    async fn rejects_foreign_or_broken_checkpoints() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = local_lake(dir.path());
        let path = dir.path().join(p0().checkpoint_key());
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, b"{not json").expect("write");
        let err = load(&lake, &p0()).await.expect_err("invalid");
        assert!(err.to_string().contains("partition-0.json"), "{err}");
        let mut other = Checkpoint::initial(SourceId::Kafka {
            topic: "other".into(),
            partition: 0,
        });
        other.write_token = "x".into();
        std::fs::write(&path, serde_json::to_vec(&other).expect("json")).expect("write");
        let err = load(&lake, &p0()).await.expect_err("foreign");
        assert!(err.to_string().contains("topic other"), "{err}");
    }
}
