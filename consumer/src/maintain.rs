//! Table maintenance (docs/DESIGN.md §5.9): `consumer compact`, `vacuum` and
//! `convert`, the compaction the continuous consumer runs on its own, and
//! the conversion of a lake of the previous layout on first start.
//!
//! Compaction only rewrites files of the snapshot it read and commits
//! `remove` + `add` with `dataChange=false`; ingestion only appends, so
//! both run at once and readers' counts never change (the Delta log
//! rebases one commit over the other). Vacuum deletes only files no
//! snapshot of the retention window needs.

use std::time::Duration;

use futures::TryStreamExt;
use lake::checkpoint::Checkpoint;
use lake::layout;
use lake::Lake;
use object_store::ObjectStoreExt;
use tracing::{info, warn};

/// The lake tables to maintain: `only`, or every folder under `bronze/`.
async fn tables(lake: &Lake, only: Option<&str>) -> anyhow::Result<Vec<String>> {
    if let Some(table) = only {
        return Ok(vec![table.to_string()]);
    }
    Ok(lake.folders(layout::BRONZE).await?)
}

/// Both Delta tables of `table`, as lake prefixes.
fn prefixes(table: &str) -> [String; 2] {
    [
        layout::bronze_prefix(table),
        layout::dead_letters_prefix(table),
    ]
}

/// The prefixes of the Delta tables to maintain: both of `only`'s, or of
/// every table's, that have a log.
async fn existing(lake: &Lake, only: Option<&str>) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for table in tables(lake, only).await? {
        for prefix in prefixes(&table) {
            if delta::Table::open(lake, &prefix, delta::AsOf::Latest)
                .await?
                .is_some()
            {
                found.push(prefix);
            }
        }
    }
    Ok(found)
}

/// `consumer compact`: one line per table compacted.
pub async fn compact(
    lake: &Lake,
    only: Option<&str>,
    options: delta::CompactOptions,
) -> anyhow::Result<()> {
    for prefix in existing(lake, only).await? {
        let report = delta::compact(lake, &prefix, options).await?;
        println!(
            "{prefix}: {} files in {} partitions rewritten as {} ({} rows){}",
            report.files_removed,
            report.partitions.len(),
            report.files_added,
            report.rows_rewritten,
            report
                .version
                .map_or(" — nothing to do".to_string(), |v| format!(
                    ", version {v}"
                ))
        );
    }
    Ok(())
}

/// `consumer vacuum`: one line per table.
pub async fn vacuum(
    lake: &Lake,
    only: Option<&str>,
    retain: Duration,
    dry_run: bool,
) -> anyhow::Result<()> {
    for prefix in existing(lake, only).await? {
        let report = delta::vacuum(lake, &prefix, retain, dry_run).await?;
        let verb = if dry_run { "would delete" } else { "deleted" };
        println!(
            "{prefix}: {verb} {} files ({} bytes) older than {}",
            report.files_deleted.len(),
            report.bytes_deleted,
            humantime::format_duration(retain)
        );
    }
    Ok(())
}

/// Makes the bronze and dead-letter folders of `table` Delta tables if they
/// hold Parquet files of the previous layout and no log, without rewriting
/// a file. Objects of an intent still open are deleted first: its replay
/// writes them again under new names, and converting them too would count
/// them twice. Returns whether anything was converted.
pub async fn convert_previous_layout(
    lake: &Lake,
    decoder: &lake::decoder::Decoder,
) -> anyhow::Result<bool> {
    let table = &decoder.contract.table.table;
    let mut converted = false;
    for (prefix, schema) in [
        (layout::bronze_prefix(table), decoder.bronze.clone()),
        (
            layout::dead_letters_prefix(table),
            lake::schema::dead_letters(),
        ),
    ] {
        if delta::Table::open(lake, &prefix, delta::AsOf::Latest)
            .await?
            .is_some()
        {
            continue;
        }
        let objects: Vec<String> = lake
            .store
            .list(Some(&Lake::path(&prefix)))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await?;
        if !objects.iter().any(|key| key.ends_with(".parquet")) {
            continue;
        }
        for key in open_intent_objects(lake, table, &objects).await? {
            warn!(key, "deleting an object of an open intent before conversion; its replay writes it again");
            lake.store.delete(&Lake::path(&key)).await?;
        }
        let report = delta::convert(lake, &prefix, &schema).await?;
        info!(
            table = %prefix,
            files = report.files.len(),
            rows = report.rows,
            "converted a table of the previous layout to Delta in place"
        );
        converted = true;
    }
    Ok(converted)
}

/// The previous layout's keys of every open intent of `table`'s sources:
/// `bronze/<t>/event_date=*/<source>-<range>.parquet` and
/// `dead_letters/<t>/<source>/<range>.parquet`.
async fn open_intent_objects(
    lake: &Lake,
    table: &str,
    objects: &[String],
) -> anyhow::Result<Vec<String>> {
    let checkpoints: Vec<String> = lake
        .store
        .list(Some(&Lake::path(&layout::checkpoints_prefix(table))))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await?;
    let mut doomed = Vec::new();
    for key in checkpoints.iter().filter(|k| k.ends_with(".json")) {
        let bytes = lake.store.get(&Lake::path(key)).await?.bytes().await?;
        let Ok(checkpoint) = serde_json::from_slice::<Checkpoint>(&bytes) else {
            continue; // Loading the source reports it, naming the object.
        };
        let Some(intent) = &checkpoint.intent else {
            continue;
        };
        let (tag, range) = (checkpoint.source.tag(), layout::range_tag(intent));
        let bronze_name = format!("/{tag}-{range}.parquet");
        let dead_key = format!(
            "{}/{tag}/{range}.parquet",
            layout::dead_letters_prefix(table)
        );
        doomed.extend(
            objects
                .iter()
                .filter(|k| k.ends_with(&bronze_name) || **k == dead_key)
                .cloned(),
        );
    }
    Ok(doomed)
}

/// The continuous consumer's own compaction of `table`: every `interval`,
/// each of its Delta tables with a partition of at least `min_files` small
/// files is compacted. A failure is logged and tried again next time; it
/// never stops ingestion.
pub async fn compact_continuously(
    lake: Lake,
    table: String,
    options: delta::CompactOptions,
    interval: Duration,
    shutdown: crate::context::Shutdown,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait() => return,
        }
        for prefix in prefixes(&table) {
            match delta::compact(&lake, &prefix, options).await {
                Ok(report) if report.version.is_some() => info!(
                    table = %prefix,
                    files_removed = report.files_removed,
                    files_added = report.files_added,
                    rows = report.rows_rewritten,
                    version = report.version,
                    "compacted small files"
                ),
                Ok(_) => {}
                Err(e) => {
                    warn!(table = %prefix, error = %format!("{e:#}"), "compaction failed; trying again later")
                }
            }
        }
    }
}
