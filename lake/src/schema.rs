//! The Arrow schemas of the two tables the consumer writes for each contract.
//! The inspector derives its empty views from them, so there is one
//! definition of each.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::contract::Contract;

fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The column that says under which version of its table's contract a row
/// or dead letter was judged (`"x-lakehouse": {"version": N}`).
pub const CONTRACT_VERSION: &str = "contract_version";

/// Where a row came from, and under which contract: shared by bronze and
/// dead letters.
fn lineage() -> Vec<Field> {
    vec![
        Field::new("source_kind", DataType::Utf8, false),
        Field::new("source_topic", DataType::Utf8, true),
        Field::new("source_partition", DataType::Int32, true),
        Field::new("source_offset", DataType::Int64, true),
        Field::new("source_key", DataType::Utf8, true),
        Field::new("batch_id", DataType::Utf8, true),
        Field::new("record_index", DataType::Int32, true),
        Field::new("kafka_timestamp", utc_micros(), true),
        Field::new("ingested_at", utc_micros(), false),
        Field::new(CONTRACT_VERSION, DataType::Int32, false),
    ]
}

/// Which re-drive wrote a row (docs/DESIGN.md §15): NULL for rows of
/// normal ingestion.
pub const REDRIVE_ID: &str = "redrive_id";
/// When that re-drive started; NULL for rows of normal ingestion.
pub const REDRIVEN_AT: &str = "redriven_at";

/// The lineage columns that say where a record is, in both tables: its
/// message (the first five, compared NULL-safely) and its index in it (NULL
/// for a whole corrupt batch). A re-drive keeps them as they were.
pub const POSITION_COLUMNS: [&str; 6] = [
    "source_kind",
    "source_topic",
    "source_partition",
    "source_offset",
    "source_key",
    "record_index",
];

/// The last columns of both tables: a re-driven row keeps its original
/// lineage and says here which re-drive brought it back. Last, because a
/// table written before re-drives existed gains them at its end.
fn redrive() -> [Field; 2] {
    [
        Field::new(REDRIVE_ID, DataType::Utf8, true),
        Field::new(REDRIVEN_AT, utc_micros(), true),
    ]
}

/// Valid records: the contract's columns, then lineage. `event_date` is not
/// stored: it is the hive partition of the path.
pub fn bronze(contract: &Contract) -> SchemaRef {
    let mut fields = contract.columns();
    fields.extend(lineage());
    fields.extend(redrive());
    Arc::new(Schema::new(fields))
}

/// Corrupt batches (record_index null) and invalid records: the same
/// columns for every table.
pub fn dead_letters() -> SchemaRef {
    let mut fields = lineage();
    fields.extend([
        Field::new("error_kind", DataType::Utf8, false),
        Field::new("error_code", DataType::Utf8, false),
        Field::new("error_message", DataType::Utf8, false),
        // The record's JSON text or the whole batch, byte for byte.
        Field::new("raw_payload", DataType::Binary, false),
    ]);
    fields.extend(redrive());
    Arc::new(Schema::new(fields))
}
