//! A local copy of the data files of an S3 lake's Delta snapshots, every
//! table's at once, for when DuckDB cannot load httpfs (docs/DESIGN.md §6).
//! The views read the copies by the snapshot's file list; the tables, their
//! logs and their contracts are read from the lake itself.
//!
//! Each sync is given the keys the snapshots in use hold, lists the lake's
//! `bronze/`, `dead_letters/`, `silver/` and `gold/` through `lake.store`, downloads only the
//! wanted objects that are new or changed (size and ETag differ from the
//! manifest), and deletes every other local file, so the mirror holds
//! exactly those snapshots: never a crashed attempt's leftover, a removed
//! (compacted) file or the log itself. Files are written beside and renamed,
//! so a reader never sees half a Parquet file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use lake::layout::{BRONZE, DEAD_LETTERS, GOLD, SILVER};
use lake::Lake;
use object_store::{ObjectMeta, ObjectStoreExt};
use serde::{Deserialize, Serialize};

/// The lake prefixes the views read.
const PREFIXES: [&str; 4] = [BRONZE, DEAD_LETTERS, SILVER, GOLD];
const MANIFEST: &str = ".manifest.json";
const DOWNLOADS_IN_FLIGHT: usize = 8;

/// What the mirror holds: key → the object version it was copied from.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    objects: BTreeMap<String, Version>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Version {
    size: u64,
    e_tag: Option<String>,
}

#[derive(Debug, Default, PartialEq)]
pub struct SyncStats {
    pub objects: usize,
    pub downloaded: usize,
    pub deleted: usize,
}

#[derive(Debug, Clone)]
pub struct Mirror {
    /// Plays the lake root: `<root>/bronze/events/...`.
    pub root: PathBuf,
}

impl Mirror {
    /// One mirror per bucket and prefix under `base`.
    pub fn new(base: &Path, bucket: &str, prefix: &str) -> Mirror {
        let mut root = base.join(bucket);
        if !prefix.is_empty() {
            root = root.join(prefix);
        }
        Mirror { root }
    }

    /// Makes the mirror hold exactly the objects `wanted` (lake-relative
    /// keys under the layers' prefixes); one the lake does not
    /// have is an error naming it.
    pub async fn sync(&self, lake: &Lake, wanted: &BTreeSet<String>) -> anyhow::Result<SyncStats> {
        std::fs::create_dir_all(&self.root).with_context(|| {
            format!("cannot create the mirror directory {}", self.root.display())
        })?;
        let old = self.read_manifest();
        let listed: Vec<ObjectMeta> = list(lake)
            .await?
            .into_iter()
            .filter(|meta| wanted.contains(meta.location.as_ref()))
            .collect();
        if listed.len() < wanted.len() {
            let found: BTreeSet<&str> = listed.iter().map(|m| m.location.as_ref()).collect();
            let missing = wanted
                .iter()
                .find(|key| !found.contains(key.as_str()))
                .map(String::as_str)
                .unwrap_or_default();
            anyhow::bail!(
                "mirror: {} is in a Delta snapshot but not in the lake ({} such files)",
                lake.url_of(missing),
                wanted.len() - listed.len()
            );
        }
        let (manifest, stale) = self.diff(&old, &listed);
        let downloaded = stale.len();
        self.download_all(lake, stale).await?;
        let deleted = self.prune(&manifest)?;
        self.write_manifest(&manifest)?;
        Ok(SyncStats {
            objects: manifest.objects.len(),
            downloaded,
            deleted,
        })
    }

    fn manifest_path(&self) -> PathBuf {
        self.root.join(MANIFEST)
    }

    /// An unreadable manifest only costs downloads, so it is not an error.
    fn read_manifest(&self) -> Manifest {
        std::fs::read(self.manifest_path())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn write_manifest(&self, manifest: &Manifest) -> anyhow::Result<()> {
        write_whole(
            &self.manifest_path(),
            ".tmp",
            &serde_json::to_vec_pretty(manifest)?,
        )
    }

    /// The manifest of `listed`, and the objects whose local copy is missing
    /// or differs from it.
    fn diff(&self, old: &Manifest, listed: &[ObjectMeta]) -> (Manifest, Vec<ObjectMeta>) {
        let mut manifest = Manifest::default();
        let mut stale = Vec::new();
        for meta in listed {
            let key = meta.location.to_string();
            if key
                .split('/')
                .any(|part| part == ".." || part == "." || part.is_empty())
            {
                continue; // never write outside the mirror
            }
            let version = Version {
                size: meta.size,
                e_tag: meta.e_tag.clone(),
            };
            let local_size = std::fs::metadata(self.root.join(&key))
                .map(|m| m.len())
                .ok();
            if old.objects.get(&key) != Some(&version) || local_size != Some(meta.size) {
                stale.push(meta.clone());
            }
            manifest.objects.insert(key, version);
        }
        (manifest, stale)
    }

    async fn download_all(&self, lake: &Lake, objects: Vec<ObjectMeta>) -> anyhow::Result<()> {
        futures::stream::iter(objects)
            .map(|meta| self.download(lake, meta))
            .buffer_unordered(DOWNLOADS_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn download(&self, lake: &Lake, meta: ObjectMeta) -> anyhow::Result<()> {
        let key = meta.location.to_string();
        let url = lake.url_of(&key);
        let bytes = async { lake.store.get(&meta.location).await?.bytes().await }
            .await
            .with_context(|| format!("mirror: cannot download {url}"))?;
        write_whole(&self.root.join(&key), ".part", &bytes)?;
        tracing::debug!(key = %key, bytes = bytes.len(), "mirrored object");
        Ok(())
    }

    /// Deletes local files the manifest does not have: anything the listing
    /// no longer has is gone from the lake. Returns how many.
    fn prune(&self, manifest: &Manifest) -> anyhow::Result<usize> {
        let mut deleted = 0;
        for prefix in PREFIXES {
            for file in files_under(&self.root.join(prefix)) {
                let key = file
                    .strip_prefix(&self.root)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !manifest.objects.contains_key(&key) {
                    std::fs::remove_file(&file)
                        .with_context(|| format!("mirror: cannot delete {}", file.display()))?;
                    deleted += 1;
                }
            }
            remove_empty_dirs(&self.root.join(prefix));
        }
        Ok(deleted)
    }
}

/// Every object under the prefixes of the tables.
async fn list(lake: &Lake) -> anyhow::Result<Vec<ObjectMeta>> {
    let mut listed = Vec::new();
    for prefix in PREFIXES {
        let objects: Vec<ObjectMeta> = lake
            .store
            .list(Some(&Lake::path(prefix)))
            .try_collect()
            .await
            .with_context(|| format!("mirror: cannot list {}/", lake.url_of(prefix)))?;
        listed.extend(objects);
    }
    Ok(listed)
}

/// Writes `bytes` beside `path` (its name plus `suffix`) and renames, so a
/// reader never sees half a file.
fn write_whole(path: &Path, suffix: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    let tmp = path.with_file_name(name);
    path.parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .and_then(|_| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("mirror: cannot write {}", path.display()))
}

/// Every file below `dir`, recursively; a missing directory has none.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Removes directories left empty by deletions (old partitions), keeping `dir`.
fn remove_empty_dirs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            remove_empty_dirs(&path);
            // Fails, harmlessly, when not empty.
            let _ = std::fs::remove_dir(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::PutPayload;

    fn lake_at(dir: &Path) -> Lake {
        Lake::open(&lake::LakeArgs {
            lake_url: dir.display().to_string(),
            aws_endpoint_url: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_region: "us-east-1".into(),
            ..Default::default()
        })
        .expect("local lake")
    }

    async fn put(lake: &Lake, key: &str, body: &'static [u8]) {
        lake.store
            .put(&Lake::path(key), PutPayload::from_static(body))
            .await
            .expect("put");
    }

    fn keys(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[tokio::test]
    async fn copies_only_changes_and_deletes_what_is_gone() {
        let source = tempfile::tempdir().expect("tempdir");
        let target = tempfile::tempdir().expect("tempdir");
        let lake = lake_at(source.path());
        let mirror = Mirror::new(target.path(), "lake", "some/prefix");
        let a_key = "bronze/events/event_date=2026-01-01/a.parquet";
        let b_key = "dead_letters/events/event_date=2026-01-01/b.parquet";
        let c_key = "bronze/events/event_date=2026-01-02/c.parquet";
        put(&lake, a_key, b"aaa").await;
        put(&lake, b_key, b"bb").await;
        // Not in any snapshot: a crashed attempt's file, the log.
        put(
            &lake,
            "bronze/events/event_date=2026-01-01/orphan.parquet",
            b"o",
        )
        .await;
        put(
            &lake,
            "bronze/events/_delta_log/00000000000000000000.json",
            b"{}",
        )
        .await;
        put(&lake, "_checkpoints/events/files/raw-events.json", b"{}").await;

        let stats = mirror
            .sync(&lake, &keys(&[a_key, b_key]))
            .await
            .expect("sync");
        assert_eq!(
            stats,
            SyncStats {
                objects: 2,
                downloaded: 2,
                deleted: 0
            }
        );
        let a = mirror.root.join(a_key);
        assert_eq!(std::fs::read(&a).expect("mirrored"), b"aaa");
        assert!(mirror
            .root
            .starts_with(target.path().join("lake/some/prefix")));
        assert!(!mirror.root.join("_checkpoints").exists());
        assert!(!mirror.root.join("bronze/events/_delta_log").exists());
        assert!(!mirror
            .root
            .join("bronze/events/event_date=2026-01-01/orphan.parquet")
            .exists());

        // Nothing changed: nothing downloaded.
        let stats = mirror
            .sync(&lake, &keys(&[a_key, b_key]))
            .await
            .expect("sync");
        assert_eq!(
            stats,
            SyncStats {
                objects: 2,
                downloaded: 0,
                deleted: 0
            }
        );

        // One object rewritten, one no longer in the snapshot, one new.
        put(&lake, b_key, b"bbbb").await;
        put(&lake, c_key, b"c").await;
        let stats = mirror
            .sync(&lake, &keys(&[b_key, c_key]))
            .await
            .expect("sync");
        assert_eq!(
            stats,
            SyncStats {
                objects: 2,
                downloaded: 2,
                deleted: 1
            }
        );
        assert!(!a.exists() && !a.parent().expect("dir").exists());
        assert_eq!(
            std::fs::read(mirror.root.join(b_key)).expect("mirrored"),
            b"bbbb"
        );

        // A file of the snapshot that the lake lost: named.
        lake.store.delete(&Lake::path(c_key)).await.expect("delete");
        let err = mirror
            .sync(&lake, &keys(&[b_key, c_key]))
            .await
            .expect_err("missing");
        assert!(
            err.to_string().contains("c.parquet is in a Delta snapshot"),
            "{err}"
        );
    }
}
