//! The Arrow schemas of the two tables the consumer writes. The inspector
//! derives its empty views from them, so there is one definition of each.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Where a row came from: shared by bronze and dead letters.
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
    ]
}

/// Valid events. `event_date` is not stored: it is the hive partition of the path.
pub fn bronze() -> SchemaRef {
    let mut fields = vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("user_id", DataType::Int64, false),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("event_ts", utc_micros(), false),
        Field::new("page", DataType::Utf8, false),
        Field::new("country", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        // Unknown fields of the record, as a JSON object text.
        Field::new("extra", DataType::Utf8, true),
    ];
    fields.extend(lineage());
    Arc::new(Schema::new(fields))
}

/// Corrupt batches (record_index null) and invalid records.
pub fn dead_letters() -> SchemaRef {
    let mut fields = lineage();
    fields.extend([
        Field::new("error_kind", DataType::Utf8, false),
        Field::new("error_code", DataType::Utf8, false),
        Field::new("error_message", DataType::Utf8, false),
        // The record's JSON text or the whole batch, byte for byte.
        Field::new("raw_payload", DataType::Binary, false),
    ]);
    Arc::new(Schema::new(fields))
}
