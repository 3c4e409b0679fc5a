//! `inspector history TABLE`: the commits of one Delta table of the lake,
//! newest first (docs/DESIGN.md §6), read from its `_delta_log/` alone: the
//! version, when it was committed (UTC), the operation, the rows and files it
//! added, the files it removed and the sources (`txn`) it committed. Printed
//! like a query result, so `--format json` gives one object per commit.

use std::sync::Arc;

use anyhow::{anyhow, Context};
use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use delta::{AsOf, Commit, Table};
use lake::Lake;

use lakedb::snapshot::rfc3339_millis;
use lakedb::tables::is_table_name;
use lakedb::views::Layer;

use crate::output::Output;

/// `bronze.events`, `dead_letters.orders`, `gold.events_per_minute`, or
/// `events` (bronze).
pub fn parse_table(name: &str) -> anyhow::Result<(Layer, String)> {
    let (layer, table) = Layer::parse_view(name.trim()).ok_or_else(|| {
        anyhow!(
            "table {name:?}: expected bronze.<table>, dead_letters.<table>, silver.<table>, \
             gold.<table> or <table>"
        )
    })?;
    anyhow::ensure!(
        is_table_name(table),
        "table {name:?}: {table:?} is not a table name (lower case letters, digits and _)"
    );
    Ok((layer, table.to_string()))
}

/// The newest `limit` commits of the table `name`, as rows.
pub fn history(lake: &Lake, name: &str, limit: usize) -> anyhow::Result<Output> {
    let (layer, table) = parse_table(name)?;
    let view = layer.view(&table);
    let prefix = layer.prefix(&table);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let commits = rt.block_on(async {
        crate::ensure_bucket(lake).await?;
        let delta = Table::open(lake, &prefix, AsOf::Latest)
            .await
            .with_context(|| format!("cannot read the Delta log of {view}"))?
            .ok_or_else(|| {
                anyhow!(
                    "{view} has no Delta log at {}: nothing committed yet",
                    lake.url_of(&prefix)
                )
            })?;
        delta
            .history(limit)
            .await
            .with_context(|| format!("cannot read the history of {view}"))
    })?;
    Ok(rows(&commits))
}

fn rows(commits: &[Commit]) -> Output {
    let schema = Arc::new(Schema::new(vec![
        Field::new("version", DataType::UInt64, false),
        Field::new("time", DataType::Utf8, true),
        Field::new("operation", DataType::Utf8, false),
        Field::new("rows_added", DataType::UInt64, false),
        Field::new("files_added", DataType::UInt64, false),
        Field::new("files_removed", DataType::UInt64, false),
        Field::new("transactions", DataType::Utf8, false),
    ]));
    let numbers = |f: fn(&Commit) -> u64| {
        Arc::new(commits.iter().map(f).collect::<UInt64Array>()) as ArrayRef
    };
    let columns: Vec<ArrayRef> = vec![
        numbers(|c| c.version),
        Arc::new(
            commits
                .iter()
                .map(|c| c.timestamp.map(rfc3339_millis))
                .collect::<StringArray>(),
        ),
        Arc::new(
            commits
                .iter()
                .map(|c| Some(c.operation.clone()))
                .collect::<StringArray>(),
        ),
        numbers(|c| c.rows_added),
        numbers(|c| c.files_added),
        numbers(|c| c.files_removed),
        Arc::new(
            commits
                .iter()
                .map(|c| {
                    let txns: Vec<String> = c
                        .transactions
                        .iter()
                        .map(|(source, through)| format!("{source} through {through}"))
                        .collect();
                    Some(txns.join("; "))
                })
                .collect::<StringArray>(),
        ),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).expect("columns match the schema");
    Output {
        schema,
        batches: vec![batch],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert_eq!(
            parse_table("events").expect("bare"),
            (Layer::Bronze, "events".into())
        );
        assert_eq!(
            parse_table("dead_letters.orders").expect("dead letters"),
            (Layer::DeadLetters, "orders".into())
        );
        assert_eq!(
            parse_table("gold.events_per_minute").expect("gold"),
            (Layer::Gold, "events_per_minute".into())
        );
        assert_eq!(
            parse_table("silver.orders").expect("silver"),
            (Layer::Silver, "orders".into())
        );
        assert!(parse_table("platinum.orders").is_err());
        assert!(parse_table("bronze.Orders").is_err());
        assert!(parse_table("bronze.").is_err());
    }

    #[test]
    fn commits_are_rows() {
        let out = rows(&[Commit {
            version: 2,
            timestamp: Some(1_767_312_005_000),
            operation: "WRITE".into(),
            rows_added: 7,
            files_added: 2,
            files_removed: 0,
            transactions: vec![("kafka-events-p0".into(), 41)],
        }]);
        assert_eq!(out.rows(), 1);
        let mut json = Vec::new();
        crate::output::write(&out, crate::output::Format::Json, &mut json).expect("json");
        let json: serde_json::Value = serde_json::from_slice(&json).expect("valid");
        assert_eq!(
            json,
            serde_json::json!([{
                "version": 2, "time": "2026-01-02T00:00:05.000Z", "operation": "WRITE",
                "rows_added": 7, "files_added": 2, "files_removed": 0,
                "transactions": "kafka-events-p0 through 41",
            }])
        );
    }
}
