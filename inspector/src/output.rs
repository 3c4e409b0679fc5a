//! Runs SQL and writes the result through DuckDB's Arrow interface: a table
//! (arrow's pretty printer), CSV with a header, or a JSON array of row
//! objects in which numbers stay numbers (`[{"n":123}]`).

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use duckdb::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// A statement's result, ready to print.
pub struct Output {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Output {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Runs `sql` (several statements: all run, the last one's result is kept).
pub fn query(conn: &Connection, sql: &str) -> anyhow::Result<Output> {
    let mut stmt = conn.prepare(sql).map_err(one_line)?;
    // execute + step is `query_arrow` without its iterator, which panics on
    // a fetch error instead of returning it.
    stmt.execute([]).map_err(one_line)?;
    let schema = stmt.schema();
    let mut batches = Vec::new();
    while let Some(chunk) = stmt.step().map_err(one_line)? {
        batches.push(RecordBatch::from(&chunk));
    }
    printable(schema, batches)
}

/// DuckDB errors span lines (a caret under the query); the first says it all.
fn one_line(e: duckdb::Error) -> anyhow::Error {
    anyhow::anyhow!(lakedb::session::first_line(&e.to_string()))
}

pub fn write(output: &Output, format: Format, out: &mut dyn Write) -> anyhow::Result<()> {
    if output.schema.fields().is_empty() {
        return Ok(()); // a statement without a result, such as SET
    }
    // Writers print a header (and `[]`) only for a batch they are given.
    let empty = [RecordBatch::new_empty(output.schema.clone())];
    let batches = if output.batches.is_empty() {
        &empty[..]
    } else {
        &output.batches[..]
    };
    match format {
        Format::Table => {
            let table = arrow::util::pretty::pretty_format_batches(batches)?;
            writeln!(out, "{table}")?;
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            for batch in batches {
                writer.write(batch)?;
            }
        }
        Format::Json => {
            let mut writer = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::JsonArray>(&mut *out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            writeln!(out)?;
        }
    }
    out.flush().context("cannot write the result")?;
    Ok(())
}

/// Arrow can format time zones only as offsets (named zones need chrono-tz),
/// and DuckDB labels TIMESTAMPTZ with its session zone. The values are UTC
/// instants either way, so relabelling them `+00:00` changes no value.
fn printable(schema: SchemaRef, batches: Vec<RecordBatch>) -> anyhow::Result<Output> {
    let utc = |data_type: &DataType| match data_type {
        DataType::Timestamp(unit, Some(tz)) if !tz.starts_with(['+', '-']) => {
            Some(DataType::Timestamp(*unit, Some("+00:00".into())))
        }
        _ => None,
    };
    if !schema.fields().iter().any(|f| utc(f.data_type()).is_some()) {
        return Ok(Output { schema, batches });
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match utc(f.data_type()) {
            Some(t) => f.as_ref().clone().with_data_type(t),
            None => f.as_ref().clone(),
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let mut relabelled = Vec::with_capacity(batches.len());
    for batch in batches {
        let columns = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(column, field)| {
                if column.data_type() == field.data_type() {
                    Ok(column.clone())
                } else {
                    arrow::compute::cast(column, field.data_type())
                }
            })
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        relabelled.push(RecordBatch::try_new(schema.clone(), columns)?);
    }
    Ok(Output {
        schema,
        batches: relabelled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(sql: &str, format: Format) -> String {
        let conn = Connection::open_in_memory().expect("duckdb");
        let output = query(&conn, sql).expect("query");
        let mut out = Vec::new();
        write(&output, format, &mut out).expect("write");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn json_keeps_numbers_and_formats_blobs_and_timestamps() {
        let json = render(
            "SELECT 123::BIGINT AS n, 1.5::DOUBLE AS x, NULL::VARCHAR AS s, 'hi'::BLOB AS b, \
             TIMESTAMPTZ '2026-01-02 03:04:05.123456+00' AS t, DATE '2026-01-02' AS d, sum(7) AS total",
            Format::Json,
        );
        let rows: serde_json::Value = serde_json::from_str(&json).expect(&json);
        let row = &rows[0];
        assert_eq!(row["n"], 123, "{json}");
        assert_eq!(row["x"], 1.5);
        assert_eq!(row["s"], serde_json::Value::Null);
        assert_eq!(row["b"], "6869");
        assert_eq!(row["t"], "2026-01-02T03:04:05.123456Z");
        assert_eq!(row["d"], "2026-01-02");
        assert_eq!(row["total"], 7);
    }

    #[test]
    fn empty_results_keep_their_header() {
        assert_eq!(
            render("SELECT 1 AS a, 'x' AS b WHERE false", Format::Json),
            "[]\n"
        );
        assert_eq!(
            render("SELECT 1 AS a, 'x' AS b WHERE false", Format::Csv),
            "a,b\n"
        );
        let table = render("SELECT 1 AS a WHERE false", Format::Table);
        assert!(table.contains("| a |"), "{table}");
    }

    #[test]
    fn csv_and_table() {
        let csv = render(
            "SELECT * FROM (VALUES (1, 'a,b'), (2, NULL)) t(n, s) ORDER BY n",
            Format::Csv,
        );
        assert_eq!(csv, "n,s\n1,\"a,b\"\n2,\n");
        let table = render(
            "SELECT TIMESTAMPTZ '2026-01-02 03:04:05+00' AS t",
            Format::Table,
        );
        assert!(table.contains("| 2026-01-02T03:04:05Z |"), "{table}");
    }

    #[test]
    fn errors_are_one_line() {
        let conn = Connection::open_in_memory().expect("duckdb");
        let err = query(&conn, "SELECT * FROM nowhere")
            .err()
            .expect("fails")
            .to_string();
        assert!(err.contains("nowhere") && !err.contains('\n'), "{err}");
    }
}
