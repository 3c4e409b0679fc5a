//! The checkpoint of one source (docs/DESIGN.md §5): human-readable JSON under
//! `_checkpoints/`, replaced only by conditional writes so that a stale or
//! zombie writer is refused instead of overwriting a newer state.
//!
//! S3 uses If-None-Match (first write) and If-Match on the ETag. The local
//! filesystem has no conditional put, so a local lake compares a content hash
//! under an exclusive file lock, which serialises the processes of one machine.

use std::io::Write;

use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::layout::SourceId;
use crate::position::{Intent, Position, Range};
use crate::store::{Lake, Location};

pub const FORMAT: u32 = 1;

/// Progress of one source. Invariant: every record before the position is in
/// bronze or dead letters exactly once; nothing at or after it is, except the
/// objects of an open intent, which a replay rewrites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: u32,
    pub source: SourceId,
    /// Of the same kind as `source` (checked when read).
    #[serde(flatten)]
    pub position: Position,
    /// The micro-batch being written, recorded before any of its data.
    pub intent: Option<Intent>,
    pub totals: Totals,
    pub updated_at: String,
    pub writer: String,
    /// Unique per write: lets a writer recognise its own write when the
    /// response to a successful conditional PUT was lost and the retry got 412.
    pub write_token: String,
}

/// Cumulative counts of committed micro-batches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Also the sequence number of the next micro-batch.
    pub micro_batches: u64,
    pub messages: u64,
    pub bronze_rows: u64,
    pub dead_letter_rows: u64,
}

impl Checkpoint {
    /// The state of a source nothing has been committed for.
    pub fn initial(source: SourceId) -> Checkpoint {
        let position = match &source {
            SourceId::Kafka { .. } => Position::Kafka { next_offset: 0 },
            SourceId::Files { .. } => Position::Files { after_key: None },
        };
        Checkpoint {
            format: FORMAT,
            source,
            position,
            intent: None,
            totals: Totals::default(),
            updated_at: String::new(),
            writer: String::new(),
            write_token: String::new(),
        }
    }

    /// Kafka: the offset the next micro-batch starts at.
    pub fn next_offset(&self) -> Option<i64> {
        match self.position {
            Position::Kafka { next_offset } => Some(next_offset),
            Position::Files { .. } => None,
        }
    }

    /// Files: the last raw key committed.
    pub fn after_key(&self) -> Option<&str> {
        match &self.position {
            Position::Files { after_key } => after_key.as_deref(),
            Position::Kafka { .. } => None,
        }
    }

    /// Step 1 of the protocol: the same state with the next micro-batch's range.
    pub fn with_intent(&self, range: Range, messages: u64, contract: &str) -> Checkpoint {
        let mut next = self.clone();
        next.intent = Some(Intent {
            seq: self.totals.micro_batches,
            range,
            messages,
            contract: Some(contract.to_string()),
        });
        next
    }

    /// Step 3: the intent's range is committed; the position moves past it.
    pub fn committed(&self, bronze_rows: u64, dead_letter_rows: u64) -> Checkpoint {
        let mut next = self.clone();
        if let Some(intent) = next.intent.take() {
            next.position = intent.range.end();
            next.totals.micro_batches += 1;
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
    #[error("checkpoint {key}: {source}")]
    Store {
        key: String,
        #[source]
        source: StoreError,
    },
}

impl CheckpointError {
    fn store(key: &str, source: StoreError) -> Self {
        CheckpointError::Store {
            key: key.to_string(),
            source,
        }
    }

    /// Only store errors may pass on retry: a lost or invalid checkpoint stays so.
    pub fn is_transient(&self) -> bool {
        match self {
            CheckpointError::Store { source, .. } => source.is_transient(),
            CheckpointError::Lost { .. } | CheckpointError::Invalid { .. } => false,
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
                Err(e) => return Err(CheckpointError::store(&key, StoreError::io("reading", e))),
            }
        }
        Location::S3 { .. } => {
            let failed = |e| CheckpointError::store(&key, StoreError::request("reading", e));
            match lake.store.get(&Lake::path(&key)).await {
                Ok(result) => {
                    let etag = result.meta.e_tag.clone();
                    let bytes = result.bytes().await.map_err(failed)?;
                    Some((etag.unwrap_or_default(), bytes.to_vec()))
                }
                Err(object_store::Error::NotFound { .. }) => None,
                Err(e) => return Err(failed(e)),
            }
        }
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
    let invalid = |detail: String| {
        Err(CheckpointError::Invalid {
            key: key.to_string(),
            detail,
        })
    };
    if checkpoint.format != FORMAT {
        return invalid(format!(
            "format {} is not supported (expected {FORMAT})",
            checkpoint.format
        ));
    }
    let kafka = matches!(checkpoint.source, SourceId::Kafka { .. });
    if kafka != matches!(checkpoint.position, Position::Kafka { .. }) {
        return invalid(format!(
            "its position {:?} is not one of {}",
            checkpoint.position, checkpoint.source
        ));
    }
    if let Some(intent) = &checkpoint.intent {
        if kafka != matches!(intent.range, Range::Kafka { .. }) {
            return invalid(format!(
                "its intent covers {}, not a range of {}",
                intent.range, checkpoint.source
            ));
        }
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
    let mut bytes = serde_json::to_vec_pretty(&next).map_err(|e| CheckpointError::Invalid {
        key: key.clone(),
        detail: e.to_string(),
    })?;
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
            .map_err(|e| CheckpointError::store(&key, StoreError::io("writing", e.into())))??
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
                Err(e) => {
                    return Err(CheckpointError::store(
                        &key,
                        StoreError::request("writing", e),
                    ))
                }
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
    let io = |e: std::io::Error| CheckpointError::store(key, StoreError::io("writing", e));
    let dir = path
        .parent()
        .ok_or_else(|| io(std::io::Error::other("no parent directory")))?;
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
            ..LakeArgs::default()
        })
        .expect("local lake opens")
    }

    fn p0() -> SourceId {
        SourceId::kafka("events", "events", 0)
    }

    #[test]
    fn transitions_move_the_position_and_totals() {
        let start = Checkpoint::initial(p0());
        let open = start.with_intent(Range::offset(0).through(Range::offset(9)), 10, "c");
        assert_eq!(open.next_offset(), Some(0));
        assert_eq!(open.intent.as_ref().map(|i| i.seq), Some(0));
        let done = open.committed(95, 5);
        assert_eq!(done.next_offset(), Some(10));
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

    /// Checkpoints written before positions and ranges were types of their
    /// own, and before tables, load as they always did (their table is
    /// `events`), and are written back in the same shape with the table named.
    #[test]
    fn format_1_checkpoints_load_and_keep_their_shape() {
        let kafka = r#"{"format":1,"source":{"kind":"kafka","topic":"events","partition":0},
            "next_offset":7,"intent":{"seq":3,"first_offset":7,"last_offset":9,"messages":3},
            "totals":{"micro_batches":3,"messages":7,"bronze_rows":60,"dead_letter_rows":2},
            "updated_at":"2026-11-22T10:00:00.000Z","writer":"h/1","write_token":"t"}"#;
        let checkpoint = parse("k", kafka.as_bytes()).expect("format 1 Kafka checkpoint");
        assert_eq!(checkpoint.next_offset(), Some(7));
        let intent = checkpoint.intent.clone().expect("intent");
        assert_eq!((intent.seq, intent.messages), (3, 3));
        assert_eq!(intent.range, Range::offset(7).through(Range::offset(9)));
        assert_eq!(checkpoint.source, SourceId::kafka("events", "events", 0));
        let written: serde_json::Value = serde_json::to_value(&checkpoint).expect("serialises");
        let mut original: serde_json::Value = serde_json::from_str(kafka).expect("json");
        original["source"]["table"] = "events".into();
        assert_eq!(written, original);

        let files = r#"{"format":1,"source":{"kind":"files","prefix":"raw/events/"},
            "after_key":"raw/events/r/000000004.json",
            "intent":{"seq":1,"first_key":"raw/events/r/000000005.json","last_key":"raw/events/r/000000006.json","messages":2},
            "totals":{"micro_batches":1,"messages":5,"bronze_rows":9,"dead_letter_rows":1},
            "updated_at":"","writer":"","write_token":""}"#;
        let checkpoint = parse("k", files.as_bytes()).expect("format 1 files checkpoint");
        assert_eq!(checkpoint.after_key(), Some("raw/events/r/000000004.json"));
        let done = checkpoint.committed(4, 0);
        assert_eq!(done.after_key(), Some("raw/events/r/000000006.json"));
        assert_eq!(done.totals.micro_batches, 2);
        // A files checkpoint that never committed has no position field at all.
        let fresh = serde_json::to_value(Checkpoint::initial(SourceId::files(
            "events",
            "raw/events/",
        )))
        .expect("json");
        assert!(fresh.get("after_key").is_none() && fresh.get("next_offset").is_none());
        let reread = parse("k", fresh.to_string().as_bytes()).expect("reads back");
        assert_eq!(reread.position, Position::Files { after_key: None });
    }

    #[test]
    fn a_position_of_the_wrong_kind_is_invalid() {
        let wrong = r#"{"format":1,"source":{"kind":"kafka","topic":"events","partition":0},
            "after_key":"raw/events/r/1.json","intent":null,
            "totals":{"micro_batches":0,"messages":0,"bronze_rows":0,"dead_letter_rows":0},
            "updated_at":"","writer":"","write_token":""}"#;
        let err = parse("k", wrong.as_bytes()).expect_err("a Kafka source has offsets");
        assert!(matches!(err, CheckpointError::Invalid { .. }), "{err}");
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
        let mut other = Checkpoint::initial(SourceId::kafka("events", "other", 0));
        other.write_token = "x".into();
        std::fs::write(&path, serde_json::to_vec(&other).expect("json")).expect("write");
        let err = load(&lake, &p0()).await.expect_err("foreign");
        assert!(err.to_string().contains("topic other"), "{err}");
    }
}
