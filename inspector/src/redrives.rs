//! `inspector redrives [--table T]`: the re-drives of dead letters recorded
//! in the lake (docs/DESIGN.md §15), one row per intent
//! `_redrives/<table>/<id>.json` ([`lake::redrive`]), ordered by table then
//! id, read from the store alone (no DuckDB): the selection, when it started
//! and finished, and what it did (selected, moved, still failing, rewritten,
//! by code). An intent without a summary is `open` (interrupted or running);
//! an object that does not parse is a row `unreadable` with the reason, not
//! an error. `--format table` prints the by-code outcome in one compact
//! column; `--format json` is an array of row objects with the full
//! `by_code` object.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use lake::redrive::{self, CodeSummary, Intent};
use lake::Lake;

use serde_json::{json, Value};

use lakedb::tables::is_table_name;

use crate::output::{self, Output};

/// The message of an open intent.
pub const OPEN: &str = "open: interrupted or running; the next `consumer redrive` finishes it";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RedrivesFormat {
    Table,
    Json,
}

/// One intent object, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    /// From the key, `_redrives/<table>/<id>.json`.
    pub table: String,
    pub id: String,
    /// `Err`: why the object is not an intent (one line).
    pub intent: Result<Intent, String>,
}

impl Redrive {
    /// `open`, `done` or `unreadable`.
    pub fn state(&self) -> &'static str {
        match &self.intent {
            Ok(intent) if intent.is_open() => "open",
            Ok(_) => "done",
            Err(_) => "unreadable",
        }
    }

    fn message(&self) -> Option<String> {
        match &self.intent {
            Ok(intent) if intent.is_open() => Some(OPEN.to_string()),
            Ok(_) => None,
            Err(e) => Some(e.clone()),
        }
    }
}

/// The re-drives of `table`, or of every table, ordered by table then id.
pub fn redrives(lake: &Lake, table: Option<&str>) -> anyhow::Result<Vec<Redrive>> {
    if let Some(table) = table {
        anyhow::ensure!(
            is_table_name(table),
            "--table {table:?} is not a table name (lower case letters, digits and _)"
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        crate::ensure_bucket(lake).await?;
        list(lake, table).await
    })
}

/// [`redrives`] without the checks. Only `_redrives/<table>/<id>.json`
/// counts: not a temporary of a local write, nor anything deeper or of
/// another name.
pub async fn list(lake: &Lake, table: Option<&str>) -> anyhow::Result<Vec<Redrive>> {
    let tables = match table {
        Some(table) => vec![table.to_string()],
        None => redrive::tables(lake).await?,
    };
    let mut found = Vec::new();
    for table in tables.into_iter().filter(|t| is_table_name(t)) {
        for id in redrive::ids(lake, &table).await? {
            let intent = redrive::read(lake, &table, &id)
                .await
                .map_err(|e| one_line(&e));
            found.push(Redrive {
                table: table.clone(),
                id,
                intent,
            });
        }
    }
    Ok(found)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `unknown_event_type,bad_amount`, or `all` for every code.
fn codes(intent: &Intent) -> String {
    if intent.selection.codes.is_empty() {
        "all".to_string()
    } else {
        intent.selection.codes.join(",")
    }
}

/// `unknown_event_type: 40 selected, 38 moved, 2 still failing
/// (unknown_event_type 2)`, one such part per code joined by `; `.
pub fn by_code_text(by_code: &std::collections::BTreeMap<String, CodeSummary>) -> String {
    by_code
        .iter()
        .map(|(code, s)| {
            let failing: u64 = s.still_failing.values().sum();
            let mut part = format!(
                "{code}: {} selected, {} moved, {failing} still failing",
                s.selected, s.moved
            );
            if !s.still_failing.is_empty() {
                let now: Vec<String> = s
                    .still_failing
                    .iter()
                    .map(|(now, n)| format!("{now} {n}"))
                    .collect();
                part.push_str(&format!(" ({})", now.join(", ")));
            }
            part
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The rows for `--format table`.
pub fn rows(redrives: &[Redrive]) -> Output {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let number = |name: &str| Field::new(name, DataType::UInt64, true);
    let schema = Arc::new(Schema::new(vec![
        Field::new("table", DataType::Utf8, false),
        Field::new("id", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        text("started_at"),
        text("finished_at"),
        text("codes"),
        text("since"),
        text("until"),
        number("selected"),
        number("moved"),
        number("still_failing"),
        number("rewritten"),
        text("by_code"),
        text("message"),
    ]));
    let strings = |f: &dyn Fn(&Redrive) -> Option<String>| {
        Arc::new(redrives.iter().map(f).collect::<StringArray>()) as ArrayRef
    };
    let numbers = |f: fn(&lake::redrive::Summary) -> u64| {
        Arc::new(
            redrives
                .iter()
                .map(|r| r.intent.as_ref().ok()?.summary.as_ref().map(f))
                .collect::<UInt64Array>(),
        ) as ArrayRef
    };
    let intent =
        |f: fn(&Intent) -> Option<String>| move |r: &Redrive| r.intent.as_ref().ok().and_then(f);
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| Some(r.table.clone())),
        strings(&|r| Some(r.id.clone())),
        strings(&|r| Some(r.state().to_string())),
        strings(&intent(|i| Some(i.started_at.clone()))),
        strings(&intent(|i| Some(i.summary.as_ref()?.finished_at.clone()))),
        strings(&intent(|i| Some(codes(i)))),
        strings(&intent(|i| i.selection.since.clone())),
        strings(&intent(|i| i.selection.until.clone())),
        numbers(|s| s.selected),
        numbers(|s| s.moved),
        numbers(|s| s.still_failing),
        numbers(|s| s.rewritten),
        strings(&intent(|i| {
            Some(by_code_text(&i.summary.as_ref()?.by_code))
        })),
        strings(&Redrive::message),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).expect("columns match the schema");
    Output {
        schema,
        batches: vec![batch],
    }
}

/// The rows for `--format json`: the same fields, `by_code` as an object
/// (code → `{selected, moved, still_failing: {code now → n}}`).
pub fn json(redrives: &[Redrive]) -> Value {
    let rows = redrives.iter().map(|r| {
        let intent = r.intent.as_ref().ok();
        let summary = intent.and_then(|i| i.summary.as_ref());
        json!({
            "table": r.table,
            "id": r.id,
            "state": r.state(),
            "started_at": intent.map(|i| &i.started_at),
            "finished_at": summary.map(|s| &s.finished_at),
            "codes": intent.map(codes),
            "since": intent.and_then(|i| i.selection.since.as_ref()),
            "until": intent.and_then(|i| i.selection.until.as_ref()),
            "selected": summary.map(|s| s.selected),
            "moved": summary.map(|s| s.moved),
            "still_failing": summary.map(|s| s.still_failing),
            "rewritten": summary.map(|s| s.rewritten),
            "by_code": summary.map(|s| &s.by_code),
            "message": r.message(),
        })
    });
    Value::Array(rows.collect())
}

pub fn write(
    redrives: &[Redrive],
    format: RedrivesFormat,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match format {
        RedrivesFormat::Table => output::write(&rows(redrives), output::Format::Table, out),
        RedrivesFormat::Json => {
            writeln!(out, "{}", serde_json::to_string_pretty(&json(redrives))?)?;
            out.flush().context("cannot write the result")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lake::redrive::{intent_key, Selection, Summary};
    use object_store::ObjectStoreExt;
    use object_store::PutPayload;

    fn local_lake(root: &std::path::Path) -> Lake {
        Lake::open(&lake::LakeArgs {
            lake_url: format!("file://{}", root.display()),
            ..Default::default()
        })
        .expect("local lake")
    }

    fn intent(table: &str, id: &str, selection: Selection, summary: Option<Summary>) -> Intent {
        Intent {
            id: id.into(),
            table: table.into(),
            started_at: "2026-12-01T15:00:00.000000Z".into(),
            redriven_at_micros: 1_796_137_200_000_000,
            selection,
            read_dead_letters_version: Some(4),
            read_bronze_version: Some(9),
            contract_fingerprint: "sha256:abc".into(),
            contract_version: 2,
            limits: lake::event::Limits {
                max_message_bytes: 16 << 20,
                max_record_bytes: 1 << 20,
                max_depth: 32,
                max_string_bytes: 64 << 10,
            },
            summary,
        }
    }

    fn done() -> Summary {
        Summary {
            finished_at: "2026-12-01T15:00:03.000000Z".into(),
            selected: 45,
            moved: 43,
            still_failing: 2,
            rewritten: 1,
            by_code: [
                (
                    "bad_amount".to_string(),
                    CodeSummary {
                        selected: 5,
                        moved: 5,
                        still_failing: Default::default(),
                    },
                ),
                (
                    "unknown_event_type".to_string(),
                    CodeSummary {
                        selected: 40,
                        moved: 38,
                        still_failing: [("unknown_event_type".to_string(), 2)].into(),
                    },
                ),
            ]
            .into(),
            bronze_version: Some(10),
            dead_letters_version: Some(5),
        }
    }

    /// Writes `objects` (key → bytes) into the lake.
    fn put(lake: &Lake, objects: Vec<(String, Vec<u8>)>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            for (key, bytes) in objects {
                lake.store
                    .put(&Lake::path(&key), PutPayload::from(bytes))
                    .await
                    .expect("put");
            }
        });
    }

    fn write_intents(lake: &Lake) {
        let open = intent(
            "orders",
            "000001",
            Selection {
                codes: vec![],
                since: None,
                until: None,
            },
            None,
        );
        let finished = intent(
            "events",
            "000002",
            Selection {
                codes: vec!["unknown_event_type".into(), "bad_amount".into()],
                since: Some("2026-11-30T00:00:00Z".into()),
                until: Some("2026-12-01T00:00:00Z".into()),
            },
            Some(done()),
        );
        let json = |i: &Intent| serde_json::to_vec(i).expect("json");
        put(
            lake,
            vec![
                (intent_key("orders", "000001"), json(&open)),
                (intent_key("events", "000002"), json(&finished)),
                (
                    intent_key("events", "000001"),
                    b"{\"id\": \"000001\",\n}".to_vec(),
                ),
                // Not intents: skipped.
                ("_redrives/events/notes.json".into(), b"{}".to_vec()),
                ("_redrives/events/000003.json.tmp".into(), b"{}".to_vec()),
                ("_redrives/README.json".into(), b"{}".to_vec()),
                (
                    "_checkpoints/events/kafka-events-p0.json".into(),
                    b"{}".to_vec(),
                ),
            ],
        );
    }

    fn render(redrives: &[Redrive], format: RedrivesFormat) -> String {
        let mut out = Vec::new();
        write(redrives, format, &mut out).expect("write");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn lists_every_table_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lake = local_lake(dir.path());
        write_intents(&lake);
        let listed = redrives(&lake, None).expect("list");
        let keys: Vec<(&str, &str, &str)> = listed
            .iter()
            .map(|r| (r.table.as_str(), r.id.as_str(), r.state()))
            .collect();
        assert_eq!(
            keys,
            [
                ("events", "000001", "unreadable"),
                ("events", "000002", "done"),
                ("orders", "000001", "open"),
            ]
        );

        let table = render(&listed, RedrivesFormat::Table);
        let lines: Vec<&str> = table.lines().collect();
        let cells = |line: &str| -> Vec<String> {
            line.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        };
        assert_eq!(
            cells(lines[1]),
            [
                "table",
                "id",
                "state",
                "started_at",
                "finished_at",
                "codes",
                "since",
                "until",
                "selected",
                "moved",
                "still_failing",
                "rewritten",
                "by_code",
                "message"
            ]
        );
        assert_eq!(lines.len(), 7, "{table}");
        let message = "not a re-drive intent: trailing comma at line 2 column 1";
        assert_eq!(
            cells(lines[3]),
            [
                "events",
                "000001",
                "unreadable",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                message
            ]
        );
        assert_eq!(
            cells(lines[4]),
            [
                "events",
                "000002",
                "done",
                "2026-12-01T15:00:00.000000Z",
                "2026-12-01T15:00:03.000000Z",
                "unknown_event_type,bad_amount",
                "2026-11-30T00:00:00Z",
                "2026-12-01T00:00:00Z",
                "45",
                "43",
                "2",
                "1",
                "bad_amount: 5 selected, 5 moved, 0 still failing; unknown_event_type: 40 \
                 selected, 38 moved, 2 still failing (unknown_event_type 2)",
                "",
            ]
        );
        assert_eq!(
            cells(lines[5]),
            [
                "orders",
                "000001",
                "open",
                "2026-12-01T15:00:00.000000Z",
                "",
                "all",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                OPEN
            ]
        );

        let json: Value =
            serde_json::from_str(&render(&listed, RedrivesFormat::Json)).expect("valid json");
        assert_eq!(
            json,
            json!([
                {
                    "table": "events", "id": "000001", "state": "unreadable",
                    "started_at": null, "finished_at": null, "codes": null, "since": null,
                    "until": null, "selected": null, "moved": null, "still_failing": null,
                    "rewritten": null, "by_code": null, "message": message,
                },
                {
                    "table": "events", "id": "000002", "state": "done",
                    "started_at": "2026-12-01T15:00:00.000000Z",
                    "finished_at": "2026-12-01T15:00:03.000000Z",
                    "codes": "unknown_event_type,bad_amount",
                    "since": "2026-11-30T00:00:00Z", "until": "2026-12-01T00:00:00Z",
                    "selected": 45, "moved": 43, "still_failing": 2, "rewritten": 1,
                    "by_code": {
                        "bad_amount": {"selected": 5, "moved": 5, "still_failing": {}},
                        "unknown_event_type": {
                            "selected": 40, "moved": 38,
                            "still_failing": {"unknown_event_type": 2},
                        },
                    },
                    "message": null,
                },
                {
                    "table": "orders", "id": "000001", "state": "open",
                    "started_at": "2026-12-01T15:00:00.000000Z", "finished_at": null,
                    "codes": "all", "since": null, "until": null, "selected": null,
                    "moved": null, "still_failing": null, "rewritten": null, "by_code": null,
                    "message": OPEN,
                },
            ])
        );
    }

    #[test]
    fn one_table_and_ids_in_numeric_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lake = local_lake(dir.path());
        write_intents(&lake);
        let later = intent("orders", "1000000", Selection::default(), Some(done()));
        let early = intent("orders", "000002", Selection::default(), None);
        put(
            &lake,
            vec![
                (
                    intent_key("orders", "1000000"),
                    serde_json::to_vec(&later).expect("json"),
                ),
                (
                    intent_key("orders", "000002"),
                    serde_json::to_vec(&early).expect("json"),
                ),
                // Another table whose name starts like it.
                (
                    intent_key("orders_v2", "000001"),
                    serde_json::to_vec(&early).expect("json"),
                ),
            ],
        );
        let listed = redrives(&lake, Some("orders")).expect("list");
        let ids: Vec<(&str, &str)> = listed
            .iter()
            .map(|r| (r.table.as_str(), r.id.as_str()))
            .collect();
        assert_eq!(
            ids,
            [
                ("orders", "000001"),
                ("orders", "000002"),
                ("orders", "1000000")
            ]
        );
        assert_eq!(listed[2].intent.as_ref().expect("readable"), &later);
        assert!(redrives(&lake, Some("Orders")).is_err());
        assert!(redrives(&lake, Some("nothing")).expect("list").is_empty());
    }

    #[test]
    fn an_empty_lake_prints_a_header_or_an_empty_array() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lake = local_lake(dir.path());
        let listed = redrives(&lake, None).expect("list");
        assert!(listed.is_empty());
        assert_eq!(render(&listed, RedrivesFormat::Json), "[]\n");
        let table = render(&listed, RedrivesFormat::Table);
        assert!(
            table.contains("| table | id | state | started_at |"),
            "{table}"
        );
        assert_eq!(table.lines().count(), 4, "{table}");
    }
}
