//! Vacuum: deletes the data files no snapshot inside the retention needs.
//!
//! Which files go is Delta's own rule (`VacuumBuilder` in `Full` mode,
//! planned as a dry run): files removed from the log (tombstones) longer
//! than `retain` ago, and files the log never referenced (a crashed
//! attempt's) last modified longer than `retain` ago. Files the current
//! snapshot references, recent tombstones, and everything whose first path
//! segment starts with `_` or `.` (the log) are kept. The deletion itself is
//! done here, after checking that nothing of the plan is under `_delta_log/`,
//! between a `VACUUM START` and a `VACUUM END` commit, as Delta does.
//!
//! A retention shorter than the table's `deletedFileRetentionDuration`
//! (7 days) is allowed: the caller asked for it. It makes time travel to
//! versions older than `retain` fail, and a `retain` shorter than a
//! micro-batch takes to commit would delete files the consumer has written
//! but not yet committed.

use std::collections::HashMap;
use std::time::Duration;

use deltalake_core::kernel::transaction::CommitProperties;
use deltalake_core::operations::vacuum::VacuumMode;
use deltalake_core::protocol::DeltaOperation;
use deltalake_core::table::config::TablePropertiesExt as _;
use futures::{StreamExt, TryStreamExt};
use lake::Lake;

/// What a vacuum deleted (or, with `dry_run`, would delete).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VacuumReport {
    pub dry_run: bool,
    /// Relative to the table's root, sorted.
    pub files_deleted: Vec<String>,
    /// Their sizes as listed before the vacuum.
    pub bytes_deleted: u64,
}

/// Vacuums the Delta table under `prefix`, keeping every file a snapshot of
/// the last `retain` may need. With `dry_run`, deletes nothing and commits
/// nothing, and reports what it would delete.
pub async fn vacuum(
    lake: &Lake,
    prefix: &str,
    retain: Duration,
    dry_run: bool,
) -> anyhow::Result<VacuumReport> {
    let prefix = prefix.trim_matches('/');
    let mut table = crate::compact::open_existing(lake, prefix).await?;
    let retention = chrono::Duration::from_std(retain)
        .map_err(|_| anyhow::anyhow!("retention {retain:?} is too long"))?;

    // The sizes, listed before Delta plans: every planned file that still
    // exists is in it.
    let root = Lake::path(prefix);
    let sizes: HashMap<String, u64> = lake
        .store
        .list(Some(&root))
        .map_ok(|meta| {
            let relative = meta
                .location
                .prefix_match(&root)
                .map(|parts| parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>())
                .unwrap_or_default()
                .join("/");
            (relative, meta.size)
        })
        .try_collect()
        .await?;

    let (_, planned) = table
        .table
        .clone()
        .vacuum()
        .with_retention_period(retention)
        .with_enforce_retention_duration(false)
        .with_mode(VacuumMode::Full)
        .with_dry_run(true)
        .await?;
    // Expired tombstones are planned whether or not their file is still
    // there; one a previous vacuum deleted is not deleted again.
    let mut files: Vec<String> = planned
        .files_deleted
        .into_iter()
        .filter(|f| sizes.contains_key(f))
        .collect();
    files.sort();
    if let Some(log) = files.iter().find(|f| !deletable(f)) {
        anyhow::bail!("{prefix}: vacuum planned to delete {log}; refusing");
    }
    let bytes: u64 = files.iter().filter_map(|f| sizes.get(f)).sum();
    let mut report = VacuumReport {
        dry_run,
        files_deleted: files,
        bytes_deleted: bytes,
    };
    if dry_run || report.files_deleted.is_empty() {
        return Ok(report);
    }

    let default_retention = table
        .table
        .snapshot()?
        .table_config()
        .deleted_file_retention_duration();
    let start = DeltaOperation::VacuumStart {
        retention_check_enabled: false,
        specified_retention_millis: Some(retention.num_milliseconds()),
        default_retention_millis: default_retention.as_millis() as i64,
    };
    let metrics = serde_json::json!({
        "numFilesToDelete": report.files_deleted.len(),
        "sizeOfDataToDelete": report.bytes_deleted,
    });
    table
        .commit_actions(
            CommitProperties::default().with_metadata([("operationMetrics".into(), metrics)]),
            Vec::new(),
            start,
        )
        .await?;

    let locations = report
        .files_deleted
        .iter()
        .map(|f| Ok(Lake::path(&format!("{prefix}/{f}"))))
        .collect::<Vec<_>>();
    let deleted: Vec<String> = lake
        .store
        .delete_stream(futures::stream::iter(locations).boxed())
        .map(|result| match result {
            Ok(path) => Ok(path.to_string()),
            // Gone already (another vacuum): as good as deleted.
            Err(object_store::Error::NotFound { path, .. }) => Ok(path),
            Err(e) => Err(e),
        })
        .try_collect()
        .await?;

    let metrics = serde_json::json!({
        "numDeletedFiles": deleted.len(),
        "numVacuumedDirectories": 0,
    });
    table
        .commit_actions(
            CommitProperties::default().with_metadata([("operationMetrics".into(), metrics)]),
            Vec::new(),
            DeltaOperation::VacuumEnd {
                status: "COMPLETED".into(),
            },
        )
        .await?;
    report.dry_run = false;
    Ok(report)
}

/// Not the log, not a hidden file, not outside the table.
fn deletable(relative: &str) -> bool {
    let first = relative.split('/').next().unwrap_or_default();
    !(first.starts_with('_') || first.starts_with('.') || relative.split('/').any(|p| p == ".."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::tests::{local, put, read_rows, s3, seed, table_rows};
    use crate::{compact, AsOf, CompactOptions, Table, DEFAULT_TARGET_SIZE};
    use object_store::ObjectStoreExt;

    const HOUR: Duration = Duration::from_secs(3600);

    /// Sets the last-modified time of the object at a key.
    type Age = dyn Fn(&str, std::time::SystemTime);

    async fn exists(lake: &Lake, key: &str) -> bool {
        match lake.store.head(&Lake::path(key)).await {
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => panic!("head {key}: {e}"),
        }
    }

    async fn log_objects(lake: &Lake, prefix: &str) -> Vec<String> {
        let mut objects: Vec<String> = lake
            .store
            .list(Some(&Lake::path(&format!("{prefix}/_delta_log"))))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .expect("list");
        objects.sort();
        objects
    }

    /// After a compaction: a long retention keeps the old files (time
    /// travel works), a dry run deletes nothing, retention 0 deletes the
    /// compacted-away files and the orphan and leaves the log and the
    /// current snapshot whole. `aged` sets a file's last-modified time
    /// (local lakes only).
    async fn vacuum_keeps_what_snapshots_need(lake: &Lake, aged: Option<&Age>) {
        let prefix = "bronze/v";
        let date = "2026-11-22";
        let inputs = seed(lake, prefix, &[date], 40, 2, 0, "p0").await;
        let table = Table::open(lake, prefix, AsOf::Latest)
            .await
            .expect("open")
            .expect("table");
        let before_version = table.version();
        let before = table_rows(lake, prefix, &table).await.expect("rows");
        let options = CompactOptions {
            target_size: DEFAULT_TARGET_SIZE,
            min_files: 2,
        };
        let compacted = compact(lake, prefix, options).await.expect("compact");
        assert_eq!(compacted.files_removed, 40);
        // A crashed attempt's file, never committed.
        let orphan = put(
            lake,
            prefix,
            &format!("event_date={date}/crashed.parquet"),
            0..5,
            true,
        )
        .await;

        // Everything is younger than an hour: nothing goes.
        let report = vacuum(lake, prefix, HOUR, false).await.expect("vacuum");
        assert_eq!(report, VacuumReport::default());
        let old = Table::open(lake, prefix, AsOf::Version(before_version))
            .await
            .expect("open")
            .expect("old version");
        let old_files = old.files().await.expect("files");
        assert_eq!(
            read_rows(lake, prefix, &old_files).await.expect("old rows"),
            before
        );

        // An orphan older than the retention goes alone.
        if let Some(aged) = aged {
            let stale = put(
                lake,
                prefix,
                &format!("event_date={date}/stale.parquet"),
                0..5,
                true,
            )
            .await;
            aged(
                &format!("{prefix}/{}", stale.path),
                std::time::SystemTime::now() - 2 * HOUR,
            );
            let report = vacuum(lake, prefix, HOUR, false).await.expect("vacuum");
            assert_eq!(report.files_deleted, std::slice::from_ref(&stale.path));
            assert_eq!(report.bytes_deleted, stale.size as u64);
            assert!(!exists(lake, &format!("{prefix}/{}", stale.path)).await);
        }

        let mut expected: Vec<String> = inputs.iter().map(|f| f.path.clone()).collect();
        expected.push(orphan.path.clone());
        expected.sort();
        let bytes: u64 = inputs.iter().chain([&orphan]).map(|f| f.size as u64).sum();
        let version = Table::open(lake, prefix, AsOf::Latest)
            .await
            .expect("open")
            .expect("table")
            .version();

        // A dry run says what would go, and deletes and commits nothing.
        let dry = vacuum(lake, prefix, Duration::ZERO, true)
            .await
            .expect("dry run");
        assert!(dry.dry_run);
        assert_eq!(dry.files_deleted, expected);
        assert_eq!(dry.bytes_deleted, bytes);
        for path in &expected {
            assert!(exists(lake, &format!("{prefix}/{path}")).await, "{path}");
        }
        let mut table = Table::open(lake, prefix, AsOf::Latest)
            .await
            .expect("open")
            .expect("table");
        assert_eq!(table.version(), version);

        // Retention 0: the compacted-away files and the orphan go.
        let log_before = log_objects(lake, prefix).await;
        let report = vacuum(lake, prefix, Duration::ZERO, false)
            .await
            .expect("vacuum");
        assert!(!report.dry_run);
        assert_eq!(report.files_deleted, expected);
        assert_eq!(report.bytes_deleted, bytes);
        for path in &expected {
            assert!(!exists(lake, &format!("{prefix}/{path}")).await, "{path}");
        }
        // The log is whole (and has the two vacuum commits).
        let log_after = log_objects(lake, prefix).await;
        for object in &log_before {
            assert!(log_after.contains(object), "{object} deleted");
        }
        assert_eq!(table.refresh().await.expect("refresh"), version + 2);
        let history = table.history(2).await.expect("history");
        assert_eq!(history[0].operation, "VACUUM END");
        assert_eq!(history[1].operation, "VACUUM START");
        // The current snapshot still reads every row.
        assert_eq!(
            table_rows(lake, prefix, &table).await.expect("rows"),
            before
        );

        // The old version still opens (its log is there) and lists its
        // files, but they are gone: reading it fails.
        let old = Table::open(lake, prefix, AsOf::Version(before_version))
            .await
            .expect("open")
            .expect("old version");
        let old_files = old.files().await.expect("files");
        assert_eq!(old_files.len(), 40);
        let err = read_rows(lake, prefix, &old_files)
            .await
            .expect_err("files gone");
        assert!(
            matches!(
                err.downcast_ref::<object_store::Error>(),
                Some(object_store::Error::NotFound { .. })
            ),
            "{err:#}"
        );

        // Nothing more to do.
        let again = vacuum(lake, prefix, Duration::ZERO, false)
            .await
            .expect("vacuum");
        assert!(again.files_deleted.is_empty());
        assert_eq!(table.refresh().await.expect("refresh"), version + 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn vacuum_on_a_local_lake() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let aged = move |key: &str, when: std::time::SystemTime| {
            std::fs::File::options()
                .write(true)
                .open(root.join(key))
                .and_then(|f| f.set_modified(when))
                .expect("set mtime");
        };
        vacuum_keeps_what_snapshots_need(&local(dir.path()), Some(&aged)).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn vacuum_on_s3() {
        let moto = testkit::Moto::start();
        vacuum_keeps_what_snapshots_need(&s3(&moto, "vacuum-test").await, None).await;
    }

    #[tokio::test]
    async fn a_prefix_without_a_table_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = vacuum(&local(dir.path()), "bronze/none", HOUR, true)
            .await
            .expect_err("no table");
        assert!(err.to_string().contains("not a Delta table"), "{err}");
    }

    #[test]
    fn the_log_is_never_deletable() {
        assert!(deletable("event_date=2026-11-22/x.parquet"));
        assert!(deletable("kafka-events-p0/x.parquet"));
        assert!(!deletable("_delta_log/00000000000000000000.json"));
        assert!(!deletable(".hidden/x.parquet"));
        assert!(!deletable("a/../_delta_log/x"));
    }
}
