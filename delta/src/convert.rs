//! Conversion of a table of the previous layout, plain Parquet files
//! without a log, into a Delta table, in place: no data file is rewritten
//! or moved.
//!
//! * `bronze/<t>/event_date=D/*.parquet`: the partition value is `D`.
//! * `dead_letters/<t>/<source tag>/*.parquet` (the old dead-letter layout,
//!   not partitioned by date): the partition value is the UTC date of the
//!   file's last-modified time. It lives in the log only; the path does not
//!   say it.

use std::collections::HashMap;

use arrow::datatypes::Schema;
use chrono::NaiveDate;
use deltalake_core::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake_core::kernel::{Action, DataType as KernelType, StructType};
use futures::{StreamExt, TryStreamExt};
use lake::Lake;
use object_store::ObjectMeta;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::ParquetObjectReader;

use crate::{add, create, AsOf, DataFile, Table, PARTITION};

/// Footers read at once.
const CONCURRENCY: usize = 16;

/// What a conversion did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConvertReport {
    /// The prefix had a Delta log already: nothing was done.
    pub already_a_table: bool,
    /// The table's version: 0, the one commit of a conversion.
    pub version: u64,
    /// The files committed, by path.
    pub files: Vec<DataFile>,
    pub rows: u64,
    pub bytes: u64,
}

/// Makes the Parquet files under `prefix` a Delta table with `schema`'s
/// columns and `event_date`, as [`Table::open_or_create`] would create it,
/// in one commit (version 0) that creates the table and adds every
/// `.parquet` file under `prefix` (size from the listing, rows from the
/// footer). Files not ending in `.parquet`, and any under a directory whose
/// name starts with `_` or `.` (`_delta_log/`), are ignored. A file with a
/// column `schema` lacks, or of another type, is refused, naming it.
/// Idempotent: a prefix with a log is left alone.
pub async fn convert(lake: &Lake, prefix: &str, schema: &Schema) -> anyhow::Result<ConvertReport> {
    let prefix = prefix.trim_matches('/');
    if let lake::store::Location::Local { root } = &lake.location {
        // Delta looks only at a local table root that exists.
        std::fs::create_dir_all(root.join(prefix))?;
    }
    if let Some(table) = Table::open(lake, prefix, AsOf::Latest).await? {
        return Ok(already(&table));
    }
    let wanted: StructType = schema.try_into_kernel()?;
    let root = Lake::path(prefix);
    let mut objects: Vec<(String, ObjectMeta)> = lake
        .store
        .list(Some(&root))
        .try_filter_map(|meta| {
            let relative = meta
                .location
                .prefix_match(&root)
                .map(|parts| parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>())
                .unwrap_or_default();
            let keep = relative
                .last()
                .is_some_and(|name| name.ends_with(".parquet"))
                && !relative
                    .iter()
                    .any(|part| part.starts_with('_') || part.starts_with('.'));
            futures::future::ready(Ok(keep.then(|| (relative.join("/"), meta))))
        })
        .try_collect()
        .await?;
    objects.sort_by(|a, b| a.0.cmp(&b.0));

    let wanted = &wanted;
    let files: Vec<(DataFile, i64)> = futures::stream::iter(objects)
        .map(|(path, meta)| async move {
            let name = lake.url_of(&format!("{prefix}/{path}"));
            let rows = footer(lake, &meta, wanted)
                .await
                .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            let event_date = match partition_in_path(&path) {
                Some(date) => {
                    NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| {
                        anyhow::anyhow!("{name}: `{PARTITION}={date}` is not a date")
                    })?;
                    date.to_string()
                }
                None => meta.last_modified.format("%Y-%m-%d").to_string(),
            };
            let file = DataFile {
                path,
                event_date: Some(event_date),
                size: meta.size as i64,
                rows,
            };
            anyhow::Ok((file, meta.last_modified.timestamp_millis()))
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;

    let create = create(lake, prefix, wanted)?.with_actions(
        files
            .iter()
            .map(|(file, modified)| Action::Add(add(file, *modified, true))),
    );
    match create.await {
        Ok(table) => {
            let files: Vec<DataFile> = files.into_iter().map(|(file, _)| file).collect();
            Ok(ConvertReport {
                already_a_table: false,
                version: table.version().unwrap_or(0),
                rows: files.iter().map(|f| f.rows).sum(),
                bytes: files.iter().map(|f| f.size as u64).sum(),
                files,
            })
        }
        // Another conversion (or a consumer) created the table first.
        Err(e) => match Table::open(lake, prefix, AsOf::Latest).await {
            Ok(Some(table)) => Ok(already(&table)),
            _ => Err(anyhow::anyhow!("{}: {e}", lake.url_of(prefix))),
        },
    }
}

fn already(table: &Table) -> ConvertReport {
    ConvertReport {
        already_a_table: true,
        version: table.version(),
        ..Default::default()
    }
}

/// The file's rows, after checking its columns are the schema's.
async fn footer(lake: &Lake, meta: &ObjectMeta, wanted: &StructType) -> anyhow::Result<u64> {
    let mut reader = ParquetObjectReader::new(lake.store.clone(), meta.location.clone())
        .with_file_size(meta.size)
        .with_footer_size_hint(64 * 1024);
    let metadata = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new()).await?;
    let types: HashMap<&str, &KernelType> = wanted
        .fields()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    for field in metadata.schema().fields() {
        let name = field.name().as_str();
        let have: KernelType = field.data_type().try_into_kernel()?;
        match types.get(name) {
            Some(want) if **want == have => {}
            Some(want) => anyhow::bail!("column `{name}` is {have} here and {want} in the schema"),
            None if name == PARTITION => {}
            None => anyhow::bail!("column `{name}` is not in the schema"),
        }
    }
    Ok(metadata.metadata().file_metadata().num_rows().max(0) as u64)
}

/// `event_date=2026-11-22/x.parquet` → `2026-11-22`.
fn partition_in_path(path: &str) -> Option<&str> {
    path.split('/')
        .find_map(|part| part.strip_prefix(&format!("{PARTITION}=")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::tests::{local, log_partitions, put, read_rows, schema, table_rows};
    use crate::{compact, Committed, CompactOptions, DEFAULT_TARGET_SIZE};
    use object_store::{ObjectStoreExt, PutPayload};

    async fn put_text(lake: &Lake, key: &str) {
        lake.store
            .put(
                &Lake::path(key),
                PutPayload::from_static(b"{\"not\": \"data\"}"),
            )
            .await
            .expect("put");
    }

    async fn modified_date(lake: &Lake, key: &str) -> String {
        let meta = lake.store.head(&Lake::path(key)).await.expect("head");
        meta.last_modified.format("%Y-%m-%d").to_string()
    }

    /// Three bronze files in two partitions and two dead-letter files of
    /// the old layout become two Delta tables listing all five; a second
    /// conversion changes nothing.
    #[tokio::test]
    async fn a_lake_of_the_previous_layout_is_converted_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = local(dir.path());
        let (bronze, dead) = ("bronze/t", "dead_letters/t");
        let mut bronze_files = vec![
            put(
                &lake,
                bronze,
                "event_date=2026-11-21/a.parquet",
                0..1,
                false,
            )
            .await,
            put(&lake, bronze, "event_date=2026-11-21/b.parquet", 1..3, true).await,
            put(&lake, bronze, "event_date=2026-11-22/c.parquet", 3..6, true).await,
        ];
        let mut dead_files = vec![
            put(
                &lake,
                dead,
                "kafka-events-p0/00000000000000000000-00000000000000000009.parquet",
                10..14,
                true,
            )
            .await,
            put(
                &lake,
                dead,
                "files-raw-events/000000000001.parquet",
                20..25,
                true,
            )
            .await,
        ];
        // Not data: ignored.
        put_text(&lake, "bronze/t/event_date=2026-11-21/notes.txt").await;
        put_text(&lake, "dead_letters/t/checkpoint.json").await;
        put(&lake, dead, "_attempts/leftover.parquet", 0..1, true).await;
        put(&lake, dead, ".tmp/leftover.parquet", 0..1, true).await;
        let rows_before = read_rows(&lake, bronze, &bronze_files).await.expect("rows");

        let report = convert(&lake, bronze, &schema(true))
            .await
            .expect("convert");
        assert!(!report.already_a_table);
        assert_eq!(report.version, 0);
        assert_eq!(report.files, bronze_files);
        assert_eq!(report.rows, 6);
        assert_eq!(
            report.bytes,
            bronze_files.iter().map(|f| f.size as u64).sum::<u64>()
        );

        let report = convert(&lake, dead, &schema(true)).await.expect("convert");
        assert!(!report.already_a_table);
        assert_eq!(report.rows, 9);
        assert_eq!(report.files.len(), 2);

        // Table::files lists all five with their row counts.
        let table = Table::open(&lake, bronze, AsOf::Latest)
            .await
            .expect("open")
            .expect("a table");
        let mut files = table.files().await.expect("files");
        files.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(files, bronze_files);
        assert_eq!(
            table_rows(&lake, bronze, &table).await.expect("rows"),
            rows_before
        );
        let history = table.history(5).await.expect("history");
        assert_eq!(history.len(), 1);
        assert_eq!(
            (history[0].operation.as_str(), history[0].rows_added),
            ("CREATE TABLE", 6)
        );

        let table = Table::open(&lake, dead, AsOf::Latest)
            .await
            .expect("open")
            .expect("a table");
        let mut files = table.files().await.expect("files");
        files.sort_by(|a, b| a.path.cmp(&b.path));
        dead_files.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(
            files
                .iter()
                .map(|f| (f.path.as_str(), f.rows, f.size))
                .collect::<Vec<_>>(),
            dead_files
                .iter()
                .map(|f| (f.path.as_str(), f.rows, f.size))
                .collect::<Vec<_>>()
        );
        // Their partition value is in the log: the file's last-modified date.
        let mut expected = Vec::new();
        for f in &dead_files {
            let date = modified_date(&lake, &format!("{dead}/{}", f.path)).await;
            expected.push((f.path.clone(), Some(date)));
        }
        assert_eq!(log_partitions(&table).await, expected);

        // Converting again does nothing.
        for prefix in [bronze, dead] {
            let again = convert(&lake, prefix, &schema(true)).await.expect("again");
            assert_eq!(
                again,
                ConvertReport {
                    already_a_table: true,
                    version: 0,
                    ..Default::default()
                }
            );
        }
        let table = Table::open(&lake, bronze, AsOf::Latest)
            .await
            .expect("open")
            .expect("a table");
        assert_eq!(table.version(), 0);
        assert_eq!(table.files().await.expect("files").len(), 3);

        // The consumer carries on on the converted table.
        let mut table = Table::open_or_create(&lake, bronze, &schema(true))
            .await
            .expect("open");
        let d = put(&lake, bronze, "event_date=2026-11-22/d.parquet", 6..8, true).await;
        assert_eq!(
            table
                .append("p0", 0, std::slice::from_ref(&d))
                .await
                .expect("append"),
            Committed::Version(1)
        );
        bronze_files.push(d);
        assert_eq!(table.files().await.expect("files").len(), 4);

        // Compacting the old dead letters puts them under their date.
        let report = compact(
            &lake,
            dead,
            CompactOptions {
                target_size: DEFAULT_TARGET_SIZE,
                min_files: 2,
            },
        )
        .await
        .expect("compact");
        assert_eq!(
            (
                report.files_removed,
                report.files_added,
                report.rows_rewritten
            ),
            (2, 1, 9)
        );
        let table = Table::open(&lake, dead, AsOf::Latest)
            .await
            .expect("open")
            .expect("a table");
        let files = table.files().await.expect("files");
        let date = expected[0].1.clone();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].event_date, date);
        assert_eq!(log_partitions(&table).await[0].1, date);
        let ids: Vec<i64> = table_rows(&lake, dead, &table)
            .await
            .expect("rows")
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(ids, (10..14).chain(20..25).collect::<Vec<_>>());
    }

    /// A file with a column the schema lacks is refused, naming both; so is
    /// a partition directory that is not a date. Nothing is created.
    #[tokio::test]
    async fn files_the_schema_does_not_describe_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = local(dir.path());
        put(
            &lake,
            "bronze/t",
            "event_date=2026-11-21/a.parquet",
            0..1,
            true,
        )
        .await;
        let err = convert(&lake, "bronze/t", &schema(false))
            .await
            .expect_err("extra is not in the schema");
        let message = format!("{err:#}");
        assert!(
            message.contains("column `extra`") && message.contains("a.parquet"),
            "{message}"
        );
        assert!(Table::open(&lake, "bronze/t", AsOf::Latest)
            .await
            .expect("open")
            .is_none());

        put(
            &lake,
            "bronze/u",
            "event_date=someday/a.parquet",
            0..1,
            true,
        )
        .await;
        let err = convert(&lake, "bronze/u", &schema(true))
            .await
            .expect_err("not a date");
        assert!(format!("{err:#}").contains("not a date"), "{err:#}");
    }

    /// An empty prefix becomes an empty table.
    #[tokio::test]
    async fn an_empty_prefix_becomes_an_empty_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = local(dir.path());
        let report = convert(&lake, "bronze/e", &schema(true))
            .await
            .expect("convert");
        assert_eq!(
            (report.already_a_table, report.version, report.files.len()),
            (false, 0, 0)
        );
        let table = Table::open(&lake, "bronze/e", AsOf::Latest)
            .await
            .expect("open")
            .expect("a table");
        assert!(table.files().await.expect("files").is_empty());
    }
}
